//! The trained module: an encoder `e` and a transform head `g`, `z = g(e(x))`.

use burn::prelude::*;

use crate::config::Config;
use crate::encoder::Encoder;
use crate::error::Result;
use crate::head::projection::Projection;
use crate::score::Bilinear;

/// Encoder plus projection head, and the learned matrix of a bilinear score.
#[derive(Module, Debug)]
pub struct Model {
    pub encoder: Encoder,
    pub head: Option<Projection>,
    pub critic: Option<Bilinear>,
}

impl Model {
    /// Builds the model of `cfg` for inputs of shape `[c, h, w]`.
    pub fn new(cfg: &Config, input: [usize; 3], device: &Device) -> Result<Self> {
        let encoder = cfg.encoder.init(input, device)?;
        let head = cfg.head.init(cfg.encoder.output_dim(), device)?;
        let z = if head.is_some() {
            cfg.head.out
        } else {
            cfg.encoder.output_dim()
        };
        let critic = cfg
            .loss
            .needs_bilinear()
            .then(|| Bilinear::new(z, z, device));
        Ok(Self {
            encoder,
            head,
            critic,
        })
    }

    /// Representations `h` and embeddings `z` of `x`.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let h = self.encoder.forward(x);
        let z = match &self.head {
            Some(g) => g.forward(h.clone()),
            None => h.clone(),
        };
        (h, z)
    }
}
