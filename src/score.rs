//! Scoring functions `s(q, k)` between query and key embeddings, divided by a temperature.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// How a query and a key are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Score {
    /// `q . k`
    Dot,
    /// `q . k / (|q| |k|)`
    Cosine,
    /// `-|q - k|^2`
    NegSqEuclidean,
}

/// Score kinds, for errors and help.
pub const KINDS: &str = "dot, cosine, neg-sq-euclidean";

/// Rows scaled to unit L2 norm: `x / sqrt(|x|^2 + 1e-12)`.
pub fn l2_normalise(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).add_scalar(1e-12).sqrt();
    x / norm
}

/// The `[q, k]` matrix of `score(q_i, k_j) / temperature`.
pub fn score_matrix(score: Score, q: Tensor<2>, k: Tensor<2>, temperature: f64) -> Tensor<2> {
    let s = match score {
        Score::Dot => q.matmul(k.transpose()),
        Score::Cosine => l2_normalise(q).matmul(l2_normalise(k).transpose()),
        Score::NegSqEuclidean => {
            let qq = q.clone().powi_scalar(2).sum_dim(1);
            let kk = k.clone().powi_scalar(2).sum_dim(1).transpose();
            q.matmul(k.transpose()).mul_scalar(2.0) - qq - kk
        }
    };
    s.div_scalar(temperature)
}
