//! The non-contrastive baselines the review discusses: they use positive pairs only.

use burn::prelude::*;
use burn::tensor::{Int, TensorData};

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
