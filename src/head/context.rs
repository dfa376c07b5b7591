//! Contextualisation heads: summarise a sequence of embeddings causally, `c_t` from
//! `z_1..z_t`, and predict future embeddings from it (CPC).

use burn::nn::gru::{Gru, GruConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which contextualiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ContextKind {
    /// No contextualisation head.
    None,
    /// An autoregressive GRU (CPC).
    Gru,
    /// Causal attention pooling.
    Attention,
    /// Causal mean pooling.
    Mean,
}

/// Which contextualiser, its width and how far ahead it predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ContextConfig {
    pub kind: ContextKind,
    /// Width of the GRU state (`attention` and `mean` keep the embedding width).
    pub dim: usize,
    /// Future steps predicted, `k = 1..=steps`, each by its own linear map `W_k`, so that
    /// the score `z_{t+k}^T W_k c_t` is CPC's bilinear one.
    pub steps: usize,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            kind: ContextKind::None,
            dim: 128,
            steps: 2,
        }
    }
}

impl ContextConfig {
    pub fn validate(&self) -> Result<()> {
        if self.kind != ContextKind::None && (self.dim == 0 || self.steps == 0) {
            return Err(Error::config(
                "head.context.steps",
                format!("{} (dim {})", self.steps, self.dim),
                "steps >= 1 and dim >= 1",
            ));
        }
        Ok(())
    }

    /// The head over embeddings of width `z`; `None` for `none`.
    pub fn init(&self, z: usize, device: &Device) -> Option<Context> {
        let width = if self.kind == ContextKind::Gru {
            self.dim
        } else {
            z
        };
        (self.kind != ContextKind::None).then(|| Context {
            gru: (self.kind == ContextKind::Gru)
                .then(|| GruConfig::new(z, self.dim, true).init(device)),
            attention: (self.kind == ContextKind::Attention)
                .then(|| LinearConfig::new(z, 1).init(device)),
            predictors: (0..self.steps)
                .map(|_| LinearConfig::new(width, z).with_bias(false).init(device))
                .collect(),
        })
    }
}

/// A causal contextualiser (a GRU, attention pooling, or mean pooling when neither is
/// set) and one prediction map per future step.
#[derive(Module, Debug)]
pub struct Context {
    pub gru: Option<Gru>,
    pub attention: Option<Linear>,
    pub predictors: Vec<Linear>,
}

impl Context {
    /// `c_t` for every `t` of `z: [batch, time, dim]`, using `z_1..z_t` only.
    ///
    /// Attention pooling: `c_t = sum_{s<=t} softmax_s(w^T z_s) z_s`; mean pooling:
    /// `c_t = mean_{s<=t} z_s`.
    pub fn summarise(&self, z: Tensor<3>) -> Tensor<3> {
        if let Some(gru) = &self.gru {
            return gru.forward(z, None);
        }
        let [b, t, _] = z.dims();
        let device = z.device();
        let causal: Vec<f32> = (0..t * t)
            .map(|i| {
                if i % t <= i / t {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
            .collect();
        let mask = Tensor::<2>::from_data(TensorData::new(causal, [t, t]), &device)
            .unsqueeze::<3>()
            .expand([b, t, t]);
        let logits = match &self.attention {
            Some(a) => a.forward(z.clone()).reshape([b, 1, t]).expand([b, t, t]) + mask,
            None => mask,
        };
        softmax(logits, 2).matmul(z)
    }

    /// The prediction `W_k c` of the embedding `k` steps ahead, `k >= 1`.
    pub fn predict(&self, c: Tensor<3>, k: usize) -> Tensor<3> {
        self.predictors[k - 1].forward(c)
    }

    /// Steps ahead this head predicts.
    pub fn steps(&self) -> usize {
        self.predictors.len()
    }
}
