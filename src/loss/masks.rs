//! The positive map as tensors: 0/1 masks and per-row counts, shared by every loss.

use burn::prelude::*;
use burn::tensor::{Bool, TensorData};

use crate::pairs::PositiveMap;

/// Masks of one map on one device.
pub struct Masks {
    /// 1 on (query, key) pairs that are positives and candidates.
    pub pos: Tensor<2>,
    /// 1 on candidates that are not positives.
    pub neg: Tensor<2>,
    /// True where a key is not a candidate of the row's query.
    pub excluded: Tensor<2, Bool>,
    /// True where a pair is not a positive candidate.
    pub not_pos: Tensor<2, Bool>,
    /// True where a pair is not a negative candidate.
    pub not_neg: Tensor<2, Bool>,
    /// Positives and negatives per query, `[rows, 1]`.
    pub n_pos: Tensor<2>,
    pub n_neg: Tensor<2>,
}

impl Masks {
    /// The masks of `map` on `device`.
    pub fn new(map: &PositiveMap, device: &Device) -> Self {
        let shape = [map.rows, map.cols];
        let (pos, cand) = map.dense();
        let neg: Vec<f32> = pos.iter().zip(&cand).map(|(p, c)| (1.0 - p) * c).collect();
        let bools = |v: Vec<bool>| Tensor::<2, Bool>::from_data(TensorData::new(v, shape), device);
        let excluded = bools(cand.iter().map(|&c| c == 0.0).collect());
        let not_pos = bools(pos.iter().map(|&p| p == 0.0).collect());
        let not_neg = bools(neg.iter().map(|&n| n == 0.0).collect());
        let counts = |m: &[f32]| -> Tensor<2> {
            let v: Vec<f32> = m.chunks(map.cols).map(|r| r.iter().sum()).collect();
            Tensor::from_data(TensorData::new(v, [map.rows, 1]), device)
        };
        let (n_pos, n_neg) = (counts(&pos), counts(&neg));
        let floats = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, shape), device);
        Self {
            pos: floats(pos),
            neg: floats(neg),
            excluded,
            not_pos,
            not_neg,
            n_pos,
            n_neg,
        }
    }
}

/// `log sum_j exp(x_ij)` over the entries of each row not masked by `masked`, `[rows, 1]`.
///
/// Masked entries are `-inf`, not a finite stand-in: a sentinel such as `-1e9` wins the
/// sum as soon as every real score of the row lies below it (distance scores of large
/// embeddings do). A row with every entry masked sums nothing and gives `-inf`, with a
/// zero gradient (its sum is taken as 1 before the log, then the result is replaced).
pub fn masked_logsumexp(x: Tensor<2>, masked: Tensor<2, Bool>) -> Tensor<2> {
    let empty = masked.clone().all_dim(1);
    let x = x.mask_fill(masked, f32::NEG_INFINITY);
    let m = x.clone().max_dim(1).detach().mask_fill(empty.clone(), 0.0);
    let sum = (x - m.clone()).exp().sum_dim(1) + empty.clone().float();
    (sum.log() + m).mask_fill(empty, f32::NEG_INFINITY)
}

/// The largest score of each row among the entries `excluded` does not mask, `[rows, 1]`,
/// without gradient: the shift that keeps a log-sum-exp and the terms beside it at the
/// precision of their difference, not of their size.
pub fn row_max(scores: &Tensor<2>, excluded: &Tensor<2, Bool>) -> Tensor<2> {
    scores
        .clone()
        .mask_fill(excluded.clone(), f32::NEG_INFINITY)
        .max_dim(1)
        .detach()
}

/// `log(1 + exp(x))`, computed as `-log_sigmoid(-x)` (stable for large `|x|`).
pub fn softplus<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    burn::tensor::activation::log_sigmoid(x.neg()).neg()
}
