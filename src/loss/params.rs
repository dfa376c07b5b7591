//! The parameters a loss learns with the model: the bilinear score's `W` and SwAV's
//! prototypes. One module owns them, so checkpoints and the optimiser see them like any
//! other layer and a loss reads them from one place instead of extra arguments.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use super::LossConfig;
use crate::error::{Error, Result};
use crate::score::Bilinear;

/// What a loss learns: `W` when it scores through [`crate::score::Score::Bilinear`], and
/// SwAV's prototypes (`[z, prototypes]`, a linear map without bias).
#[derive(Module, Debug)]
pub struct LossParams {
    pub critic: Option<Bilinear>,
    pub prototypes: Option<Linear>,
}

impl LossParams {
    /// A loss that learns nothing.
    pub fn none() -> Self {
        Self {
            critic: None,
            prototypes: None,
        }
    }

    /// The parameters `cfg` learns over `z`-dimensional embeddings, with `prototypes`
    /// SwAV prototypes (0: none).
    pub fn new(cfg: &LossConfig, z: usize, prototypes: usize, device: &Device) -> Self {
        Self {
            critic: cfg.needs_bilinear().then(|| Bilinear::new(z, z, device)),
            prototypes: (prototypes > 0).then(|| {
                LinearConfig::new(z, prototypes)
                    .with_bias(false)
                    .init(device)
            }),
        }
    }

    /// The prototypes as unit-norm columns, `[z, prototypes]` (SwAV normalises them
    /// before scoring).
    pub fn unit_prototypes(&self) -> Result<Tensor<2>> {
        let p = self
            .prototypes
            .as_ref()
            .ok_or_else(|| Error::Invalid("loss.kind = \"swav\" needs head.prototypes".into()))?;
        let w = p.weight.val();
        Ok(w.clone() / w.powi_scalar(2).sum_dim(0).sqrt().clamp_min(1e-12))
    }
}
