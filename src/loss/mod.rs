//! Contrastive losses over score matrices and positive maps.

pub mod infonce;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::score::{score_matrix, Score};
use crate::views::PositiveMap;

/// Which loss, with which score and temperature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    /// `nt-xent` / `info-nce` / `supcon` (the same multi-positive InfoNCE).
    pub kind: String,
    pub score: Score,
    pub temperature: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            kind: "nt-xent".into(),
            score: Score::Cosine,
            temperature: 0.2,
        }
    }
}

/// Loss kinds, for errors and help.
pub const KINDS: &str = "nt-xent, info-nce, supcon";

impl LossConfig {
    /// Checks the loss's values.
    pub fn validate(&self) -> Result<()> {
        if !KINDS.split(", ").any(|k| k == self.kind) {
            return Err(Error::config("loss.kind", &self.kind, KINDS));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(Error::config(
                "loss.temperature",
                self.temperature,
                "a finite value > 0",
            ));
        }
        Ok(())
    }

    /// The loss of queries `q` against keys `k` under `map`.
    pub fn compute(&self, q: Tensor<2>, k: Tensor<2>, map: &PositiveMap) -> Result<Tensor<1>> {
        if matches!(self.score, Score::Cosine | Score::Dot) {
            infonce::check_map(q.dims()[0], k.dims()[0], map)?;
            let fused = crate::kernels::contrastive(
                &q,
                &k,
                self.temperature,
                self.score == Score::Cosine,
                || map.loss_code(),
            );
            if let Some(loss) = fused {
                return Ok(loss);
            }
        }
        let s = score_matrix(self.score, q, k, self.temperature);
        infonce::info_nce(s, map)
    }
}
