//! Scoring functions `s(q, k)` between query and key embeddings (the review's "similarity
//! or score functions"), divided by a temperature where one applies.

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;
use burn::tensor::{IndexingUpdateOp, Int, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a query and a key are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// Entries of the product form whose squared distance is at most this fraction of
/// `|q|^2 + |k|^2` are recomputed from differences: there the product form has lost
/// `log10(1 / REFINE)` digits or more to cancellation, the direct sum loses none.
const REFINE: f32 = 1e-2;

/// Squared Euclidean distances `|q_i - k_j|^2`, `[q, k]`, exact for close rows.
///
/// The product form `|q|^2 + |k|^2 - 2 q.k` costs one matrix product but cancels where
/// two rows nearly coincide (two views of one image often do): in f32 it leaves an error of
/// about `1e-7 (|q|^2 + |k|^2)`, so rows `1e-4` apart get a distance of noise and a
/// gradient `(q - k) / d` that explodes. Entries within [`REFINE`] of cancelling are
/// recomputed as `sum_d (q_id - k_jd)^2`, which is exact to rounding and whose gradient is
/// `2 (q_i - k_j)`. PyTorch's `cdist` switches between the same two forms by batch size
/// only (its product form has the same cancellation); here the switch is per entry, so a
/// batch of well-separated rows pays one host read and nothing else.
pub fn sq_distances(q: Tensor<2>, k: Tensor<2>) -> Tensor<2> {
    let ([rows, _], [cols, _]) = (q.dims(), k.dims());
    // Distances do not change when every row moves by one vector: measured from the rows'
    // mean, the norms are of the spread, not of the position, so a batch whose rows sit
    // close together (a collapsed embedding) keeps its digits and needs few recomputed
    // entries. The mean is a constant (detached); the gradient is still 2 (q_i - k_j).
    // The recomputed entries take differences of the rows as given, exact where rows
    // nearly coincide (centred copies would carry the centring's rounding).
    let centre = Tensor::cat(vec![q.clone(), k.clone()], 0)
        .mean_dim(0)
        .detach();
    let (qc, kc) = (q.clone() - centre.clone(), k.clone() - centre);
    let qq = qc.clone().powi_scalar(2).sum_dim(1);
    let kk = kc.clone().powi_scalar(2).sum_dim(1).transpose();
    let scale = (qq.clone() + kk.clone()).mul_scalar(REFINE);
    let d2 = (qq + kk - qc.matmul(kc.transpose()).mul_scalar(2.0)).clamp_min(0.0);
    let mask = d2.clone().lower_equal(scale).reshape([rows * cols]);
    let close: Vec<usize> = mask
        .clone()
        .into_data()
        .iter::<bool>()
        .enumerate()
        .filter_map(|(e, c)| c.then_some(e))
        .collect();
    if close.is_empty() {
        return d2;
    }
    let device = q.device();
    let ints =
        |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v.clone(), [v.len()]), &device);
    let (qi, kj) = (
        ints(close.iter().map(|&e| (e / cols) as i64).collect()),
        ints(close.iter().map(|&e| (e % cols) as i64).collect()),
    );
    let exact = (q.select(0, qi) - k.select(0, kj))
        .powi_scalar(2)
        .sum_dim(1)
        .reshape([close.len()]);
    let flat = ints(close.iter().map(|&e| e as i64).collect());
    d2.reshape([rows * cols])
        .mask_fill(mask, 0.0)
        .scatter(0, flat, exact, IndexingUpdateOp::Add)
        .reshape([rows, cols])
}

/// Euclidean distances `|q_i - k_j|` from [`sq_distances`], with the subgradient 0 where
/// two rows coincide (`sqrt` has no derivative at 0; below `f32::MIN_POSITIVE` the square
/// is clamped, which stops the gradient there).
pub fn distances(q: Tensor<2>, k: Tensor<2>) -> Tensor<2> {
    sq_distances(q, k).clamp_min(f32::MIN_POSITIVE).sqrt()
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
