//! Scoring functions `s(q, k)` between query and key embeddings (the review's "similarity
//! or score functions"), divided by a temperature where one applies.

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a query and a key are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Score {
    /// `q . k`
    Dot,
    /// `q . k / (|q| |k|)`
    Cosine,
    /// `q^T W k` with a learned `W` (CPC, DGI).
    Bilinear,
    /// `-|q - k|^2`
    NegSqEuclidean,
    /// `-|q - k|`
    NegEuclidean,
}

/// Score kinds, for errors and help.
pub const KINDS: &str = "dot, cosine, bilinear, neg-sq-euclidean, neg-euclidean";

/// The learned matrix of the bilinear score, `[d_q, d_k]`, initialised to the identity
/// (plus small noise when the dimensions differ) so training starts from the dot product.
#[derive(Module, Debug)]
pub struct Bilinear {
    pub w: Param<Tensor<2>>,
}

impl Bilinear {
    /// A `d_q x d_k` bilinear form.
    pub fn new(d_q: usize, d_k: usize, device: &Device) -> Self {
        let w = if d_q == d_k {
            Param::from_tensor(Tensor::eye(d_q, device))
        } else {
            Initializer::XavierUniform { gain: 1.0 }.init([d_q, d_k], device)
        };
        Self { w }
    }
}

/// Rows scaled to unit L2 norm: `x / sqrt(|x|^2 + 1e-12)`.
pub fn l2_normalise(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).add_scalar(1e-12).sqrt();
    x / norm
}

/// Squared Euclidean distances `|q_i - k_j|^2`, `[q, k]`, clamped at 0 against rounding.
pub fn sq_distances(q: Tensor<2>, k: Tensor<2>) -> Tensor<2> {
    let qq = q.clone().powi_scalar(2).sum_dim(1);
    let kk = k.clone().powi_scalar(2).sum_dim(1).transpose();
    (qq + kk - q.matmul(k.transpose()).mul_scalar(2.0)).clamp_min(0.0)
}

/// Euclidean distances `sqrt(|q_i - k_j|^2 + 1e-12)` (the offset keeps the gradient
/// finite where two embeddings coincide).
pub fn distances(q: Tensor<2>, k: Tensor<2>) -> Tensor<2> {
    sq_distances(q, k).add_scalar(1e-12).sqrt()
}

/// The `[q, k]` matrix of `score(q_i, k_j) / temperature`. `bilinear` holds `W` for
/// [`Score::Bilinear`] and is ignored otherwise.
pub fn score_matrix(
    score: Score,
    q: Tensor<2>,
    k: Tensor<2>,
    temperature: f64,
    bilinear: Option<&Bilinear>,
) -> Result<Tensor<2>> {
    let (dq, dk) = (q.dims()[1], k.dims()[1]);
    if score != Score::Bilinear && dq != dk {
        return Err(Error::Invalid(format!(
            "queries have {dq} dimensions but keys have {dk}"
        )));
    }
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(Error::Invalid(format!(
            "temperature {temperature} must be finite and > 0"
        )));
    }
    let s = match score {
        Score::Dot => q.matmul(k.transpose()),
        Score::Cosine => l2_normalise(q).matmul(l2_normalise(k).transpose()),
        Score::NegSqEuclidean => sq_distances(q, k).neg(),
        Score::NegEuclidean => distances(q, k).neg(),
        Score::Bilinear => {
            let w = bilinear
                .ok_or_else(|| Error::Invalid("the bilinear score needs its matrix W".into()))?;
            let [wq, wk] = w.w.dims();
            if [wq, wk] != [dq, dk] {
                return Err(Error::Invalid(format!(
                    "bilinear W is {wq}x{wk} but queries and keys are {dq}- and {dk}-dimensional"
                )));
            }
            q.matmul(w.w.val()).matmul(k.transpose())
        }
    };
    Ok(s.div_scalar(temperature))
}
