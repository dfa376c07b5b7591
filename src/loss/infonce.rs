//! InfoNCE and its forms: NT-Xent (SimCLR) and multi-positive SupCon.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, TensorData};

use crate::error::{Error, Result};
use crate::views::PositiveMap;

/// Value that stands for minus infinity in masked logits; finite so that `0 * it` is 0.
const MASKED: f32 = -1e9;

/// Multi-positive InfoNCE (SupCon's `L_out`, Khosla et al. 2020, eq. 2):
///
/// `L = mean_i  -1/|P(i)| sum_{p in P(i)} log( exp(s_ip) / sum_{a in A(i)} exp(s_ia) )`
///
/// with `s` the temperature-scaled scores, `A(i)` the candidates of query `i` and `P(i)`
/// its positives from `map`. With one positive per query and all other rows of the 2N
/// views as candidates this is NT-Xent (Chen et al. 2020); with one positive and K
/// negatives, InfoNCE (van den Oord et al. 2018).
pub fn info_nce(scores: Tensor<2>, map: &PositiveMap) -> Result<Tensor<1>> {
    let [rows, cols] = scores.dims();
    check_map(rows, cols, map)?;
    if let Some(loss) = crate::kernels::info_nce(&scores, || map.loss_code()) {
        return Ok(loss);
    }
    let device = scores.device();
    let excluded: Vec<bool> = map.candidate.iter().map(|&c| c == 0.0).collect();
    let excluded = Tensor::<2, Bool>::from_data(TensorData::new(excluded, [rows, cols]), &device);
    let logp = log_softmax(scores.mask_fill(excluded, MASKED), 1);
    let weights: Vec<f32> = (0..rows)
        .flat_map(|i| {
            let row = &map.positive[i * cols..(i + 1) * cols];
            let n: f32 = row.iter().sum();
            row.iter().map(move |&p| p / n / rows as f32)
        })
        .collect();
    let weights = Tensor::<2>::from_data(TensorData::new(weights, [rows, cols]), &device);
    Ok((logp * weights).sum().neg().reshape([1]))
}

/// Checks that `map` fits a `rows x cols` score matrix and that every query has a
/// positive and a negative among its candidates.
pub fn check_map(rows: usize, cols: usize, map: &PositiveMap) -> Result<()> {
    if map.rows != rows || map.cols != cols {
        return Err(Error::Invalid(format!(
            "positive map is {}x{} but the scores are {rows}x{cols}",
            map.rows, map.cols
        )));
    }
    for i in 0..rows {
        let row = i * cols..(i + 1) * cols;
        let pos = &map.positive[row.clone()];
        let cand = &map.candidate[row];
        if !pos.iter().zip(cand).any(|(&p, &c)| p > 0.0 && c > 0.0) {
            return Err(Error::Invalid(format!(
                "query {i} has no positive among its candidates"
            )));
        }
        if !pos.iter().zip(cand).any(|(&p, &c)| p == 0.0 && c > 0.0) {
            return Err(Error::Invalid(format!(
                "query {i} has no negative among its candidates"
            )));
        }
    }
    Ok(())
}
