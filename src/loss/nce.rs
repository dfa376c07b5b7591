//! Binary-classification losses: noise-contrastive estimation and negative sampling.

use burn::prelude::*;

use super::infonce::check_map;
use super::masks::{masked_logsumexp, row_max, softplus, Masks};
use crate::error::Result;
use crate::pairs::PositiveMap;

/// Noise-contrastive estimation as InstDisc uses it over a memory bank (Wu et al. 2018,
/// eq. 4-6). With `m` noise samples drawn uniformly from `n` instances, the posterior that
/// key `k` is the data (not noise) is `h = P(k|q) / (P(k|q) + m/n)` with
/// `P(k|q) = e^{s_qk} / Z`, so `h = sigmoid(s_qk - c)`, `c = log Z + log(m/n)`, and
///
/// `L = mean_i [ mean_p softplus(c_i - s_ip) + sum_n softplus(s_in - c_i) ]`
///
/// (`-log h` for the positives, `-log(1 - h)` for the noise). `Z` is estimated as
/// `Z = n mean e^s` (held constant, not differentiated), so `c_i = log(mean e^s) + log m_i`
/// with `m_i` the query's negatives. The mean is over what `held` says:
/// - `None`: over each query's own candidates in this batch, `c_i = log(m_i mean_k e^{s_ik})`;
/// - `Some(l)`: `l = log mean e^s` fixed beforehand, one scalar for every query. InstDisc's
///   own code (lemniscate's `NCEAverage`) takes it over every score of the first batch and
///   holds it for the rest of training ([`log_mean_exp`] computes it).
pub fn nce(scores: Tensor<2>, map: &PositiveMap, held: Option<f64>) -> Result<Tensor<1>> {
    let [rows, cols] = scores.dims();
    check_map(rows, cols, map)?;
    let m = Masks::new(map, &scores.device());
    // x = s - c, formed so that no O(1) term is added to a large one before the large
    // ones cancel: per batch, c_i = max_i + (lse(s_i - max_i) - log n_cand + log m_i);
    // held, c_i = l + log m_i.
    let (shift, offset) = match held {
        Some(l) => (m.n_neg.zeros_like().add_scalar(l), m.n_neg.clone().log()),
        None => {
            let max = row_max(&scores, &m.excluded);
            let n_cand = m.n_pos.clone() + m.n_neg.clone();
            let lse = masked_logsumexp(scores.clone() - max.clone(), m.excluded).detach();
            (max, lse - n_cand.log() + m.n_neg.clone().log())
        }
    };
    let x = (scores - shift) - offset;
    let pos = softplus(x.clone().neg()) * m.pos / m.n_pos;
    let neg = softplus(x) * m.neg;
    Ok((pos + neg).sum_dim(1).mean().reshape([1]))
}

/// `log mean e^s` over every candidate score of the batch: the scalar that InstDisc's NCE
/// fixes `Z` with (`Z = n mean e^s`, lemniscate's `NCEAverage` on its first batch).
pub fn log_mean_exp(scores: &Tensor<2>, map: &PositiveMap) -> Result<f64> {
    let [rows, cols] = scores.dims();
    check_map(rows, cols, map)?;
    let m = Masks::new(map, &scores.device());
    let n = (m.pos.sum() + m.neg.sum()).into_scalar::<f32>();
    let lse = masked_logsumexp(
        scores.clone().detach().reshape([1, rows * cols]),
        m.excluded.reshape([1, rows * cols]),
    );
    Ok(f64::from(lse.into_scalar::<f32>()) - f64::from(n).ln())
}

/// Negative sampling (Mikolov et al. 2013): logistic regression of positives against
/// sampled negatives,
///
/// `L = mean_i [ mean_p -log sigmoid(s_ip) + sum_n -log sigmoid(-s_in) ]`.
pub fn negative_sampling(scores: Tensor<2>, map: &PositiveMap) -> Result<Tensor<1>> {
    let [rows, cols] = scores.dims();
    check_map(rows, cols, map)?;
    let m = Masks::new(map, &scores.device());
    let pos = softplus(scores.clone().neg()) * m.pos / m.n_pos;
    let neg = softplus(scores) * m.neg;
    Ok((pos + neg).sum_dim(1).mean().reshape([1]))
}
