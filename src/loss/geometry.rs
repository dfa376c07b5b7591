//! Alignment and uniformity of embeddings on the hypersphere (Wang & Isola 2020): metrics,
//! and a loss in their own right.

use burn::prelude::*;
use burn::tensor::TensorData;

use super::masks::Masks;
use crate::error::{Error, Result};
use crate::pairs::PositiveMap;
use crate::score::{l2_normalise, sq_distances};

/// `E_{(x, y) positive} |f(x) - f(y)|^alpha` over the positive pairs of `map`, with `f`
/// the L2-normalised embeddings `q` (queries) and `k` (keys).
pub fn alignment(q: Tensor<2>, k: Tensor<2>, map: &PositiveMap, alpha: f64) -> Result<Tensor<1>> {
    let m = Masks::new(map, &q.device());
    let n = m.pos.clone().sum();
    if n.clone().into_scalar::<f32>() == 0.0 {
        return Err(Error::Invalid(
            "alignment needs at least one positive pair".into(),
        ));
    }
    let d2 = sq_distances(l2_normalise(q), l2_normalise(k)).add_scalar(1e-12);
    Ok(((d2.powf_scalar(alpha / 2.0) * m.pos).sum() / n).reshape([1]))
}

/// `log E_{i < j} exp(-t |f(z_i) - f(z_j)|^2)` over all distinct pairs of rows of `z`.
pub fn uniformity(z: Tensor<2>, t: f64) -> Result<Tensor<1>> {
    let n = z.dims()[0];
    if n < 2 {
        return Err(Error::Invalid(
            "uniformity needs at least two embeddings".into(),
        ));
    }
    let zn = l2_normalise(z);
    let d2 = sq_distances(zn.clone(), zn);
    let upper: Vec<f32> = (0..n * n)
        .map(|i| if i % n > i / n { 1.0 } else { 0.0 })
        .collect();
    let upper = Tensor::<2>::from_data(TensorData::new(upper, [n, n]), &d2.device());
    let pairs = (n * (n - 1) / 2) as f64;
    // log-mean-exp with the largest term (0, for coinciding rows) as the shift
    let e = (d2.mul_scalar(-t).exp() * upper).sum().div_scalar(pairs);
    Ok(e.log().reshape([1]))
}
