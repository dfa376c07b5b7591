//! The non-contrastive baselines the review discusses: they use positive pairs only.

use burn::prelude::*;
use burn::tensor::{Int, TensorData};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::pairs::PositiveMap;
use crate::score::l2_normalise;

/// Each query row paired with its first positive key.
fn pairs(map: &PositiveMap) -> Result<Vec<i64>> {
    map.positives
        .iter()
        .enumerate()
        .map(|(i, p)| {
            p.first()
                .map(|&j| i64::from(j))
                .ok_or_else(|| Error::Invalid(format!("query {i} has no positive")))
        })
        .collect()
}

fn paired_keys(k: Tensor<2>, map: &PositiveMap) -> Result<Tensor<2>> {
    let idx = pairs(map)?;
    let n = idx.len();
    let device = k.device();
    Ok(k.select(
        0,
        Tensor::<1, Int>::from_data(TensorData::new(idx, [n]), &device),
    ))
}

/// BYOL's regression loss (Grill et al. 2020, eq. 2): for each query (the online
/// prediction) and its positive key (the target projection),
///
/// `L = mean_i  2 - 2 <q_i / |q_i|, k_i / |k_i|>`.
pub fn byol(q: Tensor<2>, k: Tensor<2>, map: &PositiveMap) -> Result<Tensor<1>> {
    let k = paired_keys(k, map)?;
    let cos = (l2_normalise(q) * l2_normalise(k)).sum_dim(1);
    Ok(cos.mul_scalar(-2.0).add_scalar(2.0).mean().reshape([1]))
}

/// SimSiam's loss (Chen & He 2021, eq. 1), the negative cosine of each query (the
/// prediction) with its positive key (the projection, without gradient under a key
/// encoder): `L = -mean_i <q_i / |q_i|, k_i / |k_i|>`. It is BYOL's `(L - 2) / 2`; as
/// lightly's `NegativeCosineSimilarity`.
pub fn negative_cosine(q: Tensor<2>, k: Tensor<2>, map: &PositiveMap) -> Result<Tensor<1>> {
    let k = paired_keys(k, map)?;
    let cos = (l2_normalise(q) * l2_normalise(k)).sum_dim(1);
    Ok(cos.mean().neg().reshape([1]))
}

/// Barlow Twins (Zbontar et al. 2021, eq. 1-2): with `a`, `b` the queries and their
/// positive keys, each dimension standardised over the batch (biased variance, as the
/// reference's `BatchNorm1d(affine=False)`), `C = aᵀ b / N` and
///
/// `L = sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2`.
pub fn barlow_twins(
    q: Tensor<2>,
    k: Tensor<2>,
    map: &PositiveMap,
    lambda: f64,
) -> Result<Tensor<1>> {
    let b = paired_keys(k, map)?;
    let n = q.dims()[0];
    if n < 2 {
        return Err(Error::Invalid(
            "Barlow Twins needs at least two pairs to standardise".into(),
        ));
    }
    let standardise = |x: Tensor<2>| {
        let mean = x.clone().mean_dim(0);
        let centred = x - mean;
        let var = centred.clone().powi_scalar(2).mean_dim(0);
        centred / var.add_scalar(1e-5).sqrt()
    };
    let c = standardise(q)
        .transpose()
        .matmul(standardise(b))
        .div_scalar(n as f64);
    let d = c.dims()[0];
    let eye = Tensor::<2>::eye(d, &c.device());
    let on = (c.clone() * eye.clone())
        .sum_dim(1)
        .neg()
        .add_scalar(1.0)
        .powi_scalar(2)
        .sum();
    let off = (c.powi_scalar(2) * eye.neg().add_scalar(1.0)).sum();
    Ok((on + off.mul_scalar(lambda)).reshape([1]))
}

/// VICReg's weights (Bardes et al. 2022): invariance `lambda`, variance `mu`, covariance
/// `nu`, and the `eps` inside the standard deviation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Vicreg {
    /// Weight of the invariance term, the mean squared distance between the two views.
    pub invariance: f64,
    /// Weight of the variance term, the hinge `max(0, 1 - std)` on each dimension.
    pub variance: f64,
    /// Weight of the covariance term, the squared off-diagonal covariances.
    pub covariance: f64,
    /// Added to the variance before its square root.
    pub eps: f64,
}

impl Default for Vicreg {
    /// The paper's and lightly's `VICRegLoss` defaults: 25, 25, 1, 1e-4.
    fn default() -> Self {
        Self {
            invariance: 25.0,
            variance: 25.0,
            covariance: 1.0,
            eps: 1e-4,
        }
    }
}

impl Vicreg {
    /// Checks the weights, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        for (key, v) in [
            ("loss.vicreg.invariance", self.invariance),
            ("loss.vicreg.variance", self.variance),
            ("loss.vicreg.covariance", self.covariance),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::config(key, v, "a finite value >= 0"));
            }
        }
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(Error::config(
                "loss.vicreg.eps",
                self.eps,
                "a finite value > 0",
            ));
        }
        Ok(())
    }
}

/// VICReg (Bardes et al. 2022, eq. 1-6), with `a` the queries and `b` their positive keys,
/// `n` pairs of dimension `d`:
///
/// `L = lambda mean_ij (a_ij - b_ij)^2 + mu (v(a) + v(b)) / 2 + nu (c(a) + c(b))`, where
/// `v(x) = mean_j relu(1 - sqrt(Var_j(x) + eps))` and `c(x) = sum_{j != k} C_jk(x)^2 / d`,
/// with the unbiased variance and covariance `C = (x - x̄)ᵀ (x - x̄) / (n - 1)` (as lightly's
/// `VICRegLoss`: the variance terms are averaged, the covariance terms added).
pub fn vicreg(q: Tensor<2>, k: Tensor<2>, map: &PositiveMap, w: &Vicreg) -> Result<Tensor<1>> {
    let b = paired_keys(k, map)?;
    let [n, d] = q.dims();
    if n < 2 {
        return Err(Error::Invalid(
            "VICReg needs at least two pairs for its variance".into(),
        ));
    }
    let invariance = (q.clone() - b.clone()).powi_scalar(2).mean();
    let eye = Tensor::<2>::eye(d, &q.device());
    let terms = |x: Tensor<2>| {
        let centred = x.clone() - x.mean_dim(0);
        let var = centred
            .clone()
            .powi_scalar(2)
            .sum_dim(0)
            .div_scalar((n - 1) as f64);
        let std = var.add_scalar(w.eps).sqrt();
        let variance = std.neg().add_scalar(1.0).clamp_min(0.0).mean();
        let cov = centred
            .clone()
            .transpose()
            .matmul(centred)
            .div_scalar((n - 1) as f64);
        let off = (cov.powi_scalar(2) * eye.clone().neg().add_scalar(1.0))
            .sum()
            .div_scalar(d as f64);
        (variance, off)
    };
    let (va, ca) = terms(q);
    let (vb, cb) = terms(b);
    let loss = invariance.mul_scalar(w.invariance)
        + (va + vb).mul_scalar(w.variance / 2.0)
        + (ca + cb).mul_scalar(w.covariance);
    Ok(loss.reshape([1]))
}
