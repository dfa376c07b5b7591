//! The trained module: an encoder `e` and a transform head `g`, `z = g(e(x))`.

use burn::prelude::*;

use crate::config::Config;
use crate::encoder::Encoder;
use crate::error::Result;
use crate::head::projection::Projection;
use crate::score::Bilinear;

/// Encoder plus projection head, an optional prediction head (query side only) and the
/// learned matrix of a bilinear score.
#[derive(Module, Debug)]
pub struct Model {
    pub encoder: Encoder,
    pub head: Option<Projection>,
    pub predictor: Option<Projection>,
    pub critic: Option<Bilinear>,
}

impl Model {
    /// Builds the model of `cfg` for inputs of shape `[c, h, w]`.
    pub fn new(cfg: &Config, input: [usize; 3], device: &Device) -> Result<Self> {
        let encoder = cfg.encoder.init(input, device)?;
        let head = cfg.head.init(cfg.encoder.output_dim(), device)?;
        let z = cfg.head.output_dim(cfg.encoder.output_dim());
        let predictor = cfg.head.init_predictor(z, device);
        let critic = cfg
            .loss
            .needs_bilinear()
            .then(|| Bilinear::new(z, z, device));
        Ok(Self {
            encoder,
            head,
            predictor,
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

    /// The query-side prediction `p(z)` (the identity without a prediction head).
    pub fn predict(&self, z: Tensor<2>) -> Tensor<2> {
        match &self.predictor {
            Some(p) => p.forward(z),
            None => z,
        }
    }
}
