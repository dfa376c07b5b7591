//! The trained module: an encoder `e` and a transform head `g`, `z = g(e(x))`.

use burn::prelude::*;

use crate::config::Config;
use crate::encoder::Encoder;
use crate::error::Result;
use crate::head::context::Context;
use crate::head::projection::Projection;
use crate::head::quantizer::Quantizer;
use crate::score::Bilinear;

/// Encoder plus projection head, an optional prediction head (query side only) and the
/// learned matrix of a bilinear score.
#[derive(Module, Debug)]
pub struct Model {
    pub encoder: Encoder,
    pub head: Option<Projection>,
    pub predictor: Option<Projection>,
    pub critic: Option<Bilinear>,
    pub context: Option<Context>,
    pub quantizer: Option<Quantizer>,
    /// DIM's local encoder: the head of local features taken from an earlier stage.
    pub local_head: Option<Projection>,
    /// Encoder blocks run before the local features are read (context pairing).
    pub local_after: usize,
}

impl Model {
    /// Builds the model of `cfg` for data samples of shape `[c, h, w]`; the encoder reads
    /// what the views make of them ([`crate::config::ViewsConfig::model_input`]).
    pub fn new(cfg: &Config, sample: [usize; 3], device: &Device) -> Result<Self> {
        let encoder = cfg.encoder.init(cfg.views.model_input(sample), device)?;
        let head = cfg.head.init(cfg.encoder.output_dim(), device)?;
        let z = cfg.head.output_dim(cfg.encoder.output_dim());
        let predictor = cfg.head.init_predictor(z, device);
        let critic = cfg
            .loss
            .needs_bilinear()
            .then(|| Bilinear::new(z, z, device));
        let context = cfg.head.context.init(z, device);
        let quantizer = cfg.head.quantizer.init(z, device);
        let (local_after, local_channels) = cfg
            .encoder
            .stage_output(cfg.keys.local_stage)
            .unwrap_or_default();
        let local_head = if cfg.keys.local_stage > 0 {
            cfg.head.init(local_channels, device)?
        } else {
            None
        };
        Ok(Self {
            encoder,
            head,
            predictor,
            critic,
            context,
            quantizer,
            local_head,
            local_after,
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

    /// Embeddings of the local features of `x` (feature-map positions, time steps) and of
    /// its global summary `g(h)`: `([n * positions, d], [n, d])`. The locals are the last
    /// feature map through the same head, or an earlier stage's map through the local
    /// head (DIM's local encoder).
    pub fn local_global(&self, x: Tensor<4>) -> Result<(Tensor<2>, Tensor<2>, usize)> {
        let (f, last) = self.encoder.features_split(x, self.local_after)?;
        let [n, h, w, c] = f.dims();
        let z_global = self.project(crate::encoder::global_avg_pool(last));
        let local = f.reshape([n * h * w, c]);
        let z_local = match &self.local_head {
            Some(g) => g.forward(local),
            None => self.project(local),
        };
        Ok((z_local, z_global, h * w))
    }

    /// The head applied to representations `h`.
    pub fn project(&self, h: Tensor<2>) -> Tensor<2> {
        match &self.head {
            Some(g) => g.forward(h),
            None => h,
        }
    }

    /// The query-side prediction `p(z)` (the identity without a prediction head).
    pub fn predict(&self, z: Tensor<2>) -> Tensor<2> {
        match &self.predictor {
            Some(p) => p.forward(z),
            None => z,
        }
    }
}
