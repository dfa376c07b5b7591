//! Quantisation head: a Gumbel-softmax product quantiser (wav2vec 2.0, Baevski et al.
//! 2020). `G` codebooks of `V` entries each; every group picks one entry, and the
//! quantised vector is the concatenation of the picked entries.

use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::{Distribution, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Codebook sizes, the Gumbel temperature schedule and the diversity weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct QuantizerConfig {
    /// Codebooks `G` (0: no quantiser).
    pub groups: usize,
    /// Entries per codebook `V`.
    pub entries: usize,
    /// Gumbel-softmax temperature at the first and at the last step, annealed
    /// geometrically between them (wav2vec 2.0: 2 to 0.5).
    pub temperature: [f64; 2],
    /// Weight `alpha` of the diversity loss added to the contrastive loss.
    pub diversity_weight: f64,
}

impl Default for QuantizerConfig {
    fn default() -> Self {
        Self {
            groups: 0,
            entries: 64,
            temperature: [2.0, 0.5],
            diversity_weight: 0.1,
        }
    }
}

impl QuantizerConfig {
    pub fn validate(&self, z: usize) -> Result<()> {
        if self.groups == 0 {
            return Ok(());
        }
        if self.entries < 2 || !z.is_multiple_of(self.groups) {
            return Err(Error::config(
                "head.quantizer.groups",
                format!("{} (entries {}, embedding {z})", self.groups, self.entries),
                "groups dividing the embedding size and entries >= 2",
            ));
        }
        let [a, b] = self.temperature;
        if !(a > 0.0 && b > 0.0 && a.is_finite() && b.is_finite()) {
            return Err(Error::config(
                "head.quantizer.temperature",
                format!("[{a}, {b}]"),
                "two finite values > 0",
            ));
        }
        if self.diversity_weight.is_nan() || self.diversity_weight < 0.0 {
            return Err(Error::config(
                "head.quantizer.diversity_weight",
                self.diversity_weight,
                "a value >= 0",
            ));
        }
        Ok(())
    }

    /// The quantiser of embeddings of size `z`, when configured.
    pub fn init(&self, z: usize, device: &Device) -> Option<Quantizer> {
        (self.groups > 0).then(|| {
            let (g, v) = (self.groups, self.entries);
            Quantizer {
                logits: LinearConfig::new(z, g * v).init(device),
                codebook: Param::from_tensor(Tensor::random(
                    [g, v, z / g],
                    Distribution::Uniform(-1.0, 1.0),
                    device,
                )),
            }
        })
    }

    /// The temperature at `step` of `total`: `t0 (t1 / t0)^(step / total)`.
    pub fn temperature_at(&self, step: usize, total: usize) -> f64 {
        let [t0, t1] = self.temperature;
        t0 * (t1 / t0).powf(step as f64 / total.max(1) as f64)
    }
}

/// Logits over the entries of each codebook, and the codebooks `[G, V, d / G]`.
#[derive(Module, Debug)]
pub struct Quantizer {
    pub logits: Linear,
    pub codebook: Param<Tensor<3>>,
}

/// The quantised vectors and the diversity loss of one batch.
#[derive(Debug, Clone)]
pub struct Quantized {
    /// `[n, d]`: per group the one-hot pick times the codebook; the forward value is the
    /// hard pick, the gradient that of the Gumbel softmax (straight-through).
    pub q: Tensor<2>,
    /// `(GV - sum_g exp(H(pbar_g))) / GV`, `pbar_g` the batch mean of
    /// `softmax(logits_g)` without noise: 0 when every entry is used equally.
    pub diversity: Tensor<1>,
}

impl Quantizer {
    /// Quantises `z` (`[n, d]`) with Gumbel noise `noise` (`[n, G V]`) at temperature `tau`.
    pub fn forward(&self, z: Tensor<2>, noise: Tensor<2>, tau: f64) -> Quantized {
        let [g, v, dg] = self.codebook.dims();
        let n = z.dims()[0];
        let logits = self.logits.forward(z).reshape([n, g, v]);
        let soft = softmax(
            (logits.clone() + noise.reshape([n, g, v])).div_scalar(tau),
            2,
        );
        let hard = soft
            .clone()
            .argmax(2)
            .reshape([n, g])
            .one_hot::<3>(v)
            .float();
        let pick = hard - soft.clone().detach() + soft;
        let q = pick
            .swap_dims(0, 1)
            .matmul(self.codebook.val())
            .swap_dims(0, 1)
            .reshape([n, g * dg]);
        let mean = softmax(logits, 2).mean_dim(0).reshape([g, v]);
        let log_mean = mean.clone().clamp_min(1e-12).log();
        let entropy = (mean * log_mean).sum_dim(1).neg().reshape([g]);
        let gv = (g * v) as f64;
        let diversity = entropy.exp().sum().neg().add_scalar(gv).div_scalar(gv);
        Quantized { q, diversity }
    }

    /// Gumbel noise `-log(-log u)` for `n` rows, drawn from `seed` on the host so that a
    /// resumed run draws the same noise.
    pub fn noise(&self, n: usize, seed: u64, device: &Device) -> Tensor<2> {
        let [g, v, _] = self.codebook.dims();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let u: Vec<f32> = (0..n * g * v)
            .map(|_| {
                let u: f32 = rng.random_range(1e-7..1.0);
                -(-u.ln()).ln()
            })
            .collect();
        Tensor::from_data(TensorData::new(u, [n, g * v]), device)
    }
}
