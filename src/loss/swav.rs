//! SwAV (Caron et al. 2020): online clustering by swapped prediction. Each high-resolution
//! crop's prototype scores are turned into soft cluster codes by Sinkhorn-Knopp
//! equipartition; every other crop of the same instance must predict those codes.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Sinkhorn-Knopp settings of the codes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Swav {
    /// Alternating normalisations.
    pub iterations: usize,
    /// Entropic regularisation `epsilon`: codes start from `exp(score / epsilon)`.
    pub epsilon: f64,
}

impl Default for Swav {
    /// The paper's and lightly's `SwaVLoss` defaults: 3 iterations, `epsilon` 0.05.
    fn default() -> Self {
        Self {
            iterations: 3,
            epsilon: 0.05,
        }
    }
}

impl Swav {
    /// Checks the settings, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(Error::config(
                "loss.swav.epsilon",
                self.epsilon,
                "a finite value > 0",
            ));
        }
        Ok(())
    }
}

/// Sinkhorn-Knopp codes of `scores` (`rows x cols`: samples by prototypes), as SwAV's
/// Algorithm 1: `Q = exp(Sᵀ / epsilon)` normalised to sum 1, then `iterations` times each
/// prototype's row scaled to sum `1/K` and each sample's column to `1/B`; the codes are
/// `B Q`, one distribution per sample. Computed in `f64` on the host, after subtracting
/// the largest score (which the normalisation cancels), so that `exp` cannot overflow.
pub fn sinkhorn(scores: &[f32], rows: usize, cols: usize, s: &Swav) -> Vec<f32> {
    let top = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut q: Vec<f64> = scores
        .iter()
        .map(|&v| ((f64::from(v) - f64::from(top)) / s.epsilon).exp())
        .collect();
    let total: f64 = q.iter().sum();
    q.iter_mut().for_each(|v| *v /= total);
    let (b, k) = (rows as f64, cols as f64);
    for _ in 0..s.iterations {
        for c in 0..cols {
            let sum: f64 = (0..rows).map(|r| q[r * cols + c]).sum();
            (0..rows).for_each(|r| q[r * cols + c] /= sum * k);
        }
        for r in 0..rows {
            let sum: f64 = q[r * cols..(r + 1) * cols].iter().sum();
            q[r * cols..(r + 1) * cols]
                .iter_mut()
                .for_each(|v| *v /= sum * b);
        }
    }
    q.iter().map(|&v| (v * b) as f32).collect()
}

/// The SwAV loss of `crops`, the prototype scores `[B, K]` of each crop of the same `B`
/// instances (rows in the same instance order), the first `high` at full resolution: with
/// `q_i` the (detached) codes of high crop `i` and `p_v = softmax(z_v / t)`,
///
/// `L = 1/high sum_{i < high} 1/(V - 1) sum_{v != i} -1/B sum_b q_i[b] · log p_v[b]`,
///
/// as lightly's `SwaVLoss` without a queue.
pub fn swav(crops: &[Tensor<2>], high: usize, temperature: f64, s: &Swav) -> Result<Tensor<1>> {
    let v = crops.len();
    if high == 0 || high > v || v < 2 {
        return Err(Error::Invalid(format!(
            "SwAV needs at least two crops, the first 1..={v} of them high-resolution (got {high} of {v})"
        )));
    }
    let [b, k] = crops[0].dims();
    if crops.iter().any(|c| c.dims() != [b, k]) {
        return Err(Error::Invalid(
            "SwAV crops must all score the same instances against the same prototypes".into(),
        ));
    }
    let device = crops[0].device();
    let log_p: Vec<Tensor<2>> = crops
        .iter()
        .map(|z| log_softmax(z.clone().div_scalar(temperature), 1))
        .collect();
    let mut total: Option<Tensor<1>> = None;
    for (i, crop) in crops.iter().enumerate().take(high) {
        let scores: Vec<f32> = crop.clone().detach().into_data().iter::<f32>().collect();
        let codes =
            Tensor::<2>::from_data(TensorData::new(sinkhorn(&scores, b, k, s), [b, k]), &device);
        for (j, lp) in log_p.iter().enumerate() {
            if j == i {
                continue;
            }
            let term = (codes.clone() * lp.clone())
                .sum()
                .div_scalar(-((b * (v - 1) * high) as f64));
            total = Some(match total {
                Some(t) => t + term,
                None => term,
            });
        }
    }
    total
        .map(|t| t.reshape([1]))
        .ok_or_else(|| Error::Invalid("SwAV with no crop pair".into()))
}
