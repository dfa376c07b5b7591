//! Binary-classification losses: noise-contrastive estimation and negative sampling.

use burn::prelude::*;

use super::infonce::check_map;
use super::masks::{softplus, Masks};
use crate::error::Result;
use crate::views::PositiveMap;

/// Noise-contrastive estimation as InstDisc uses it over a memory bank (Wu et al. 2018,
/// eq. 4-6). With `m` noise samples drawn uniformly from `n` instances, the posterior that
/// key `k` is the data (not noise) is `h = P(k|q) / (P(k|q) + m/n)` with
/// `P(k|q) = e^{s_qk} / Z`, so `h = sigmoid(s_qk - c)`, `c = log Z + log(m/n)`, and
///
/// `L = mean_i [ mean_p softplus(c_i - s_ip) + sum_n softplus(s_in - c_i) ]`
///
/// (`-log h` for the positives, `-log(1 - h)` for the noise). `Z` is estimated from the
/// batch as InstDisc does, `Z = n mean_k e^{s_qk}` (held constant, not differentiated), so
/// `c_i = log(m_i mean_k e^{s_ik})` with `m_i` the query's negatives.
pub fn nce(scores: Tensor<2>, map: &PositiveMap) -> Result<Tensor<1>> {
    let [rows, cols] = scores.dims();
    check_map(rows, cols, map)?;
    let m = Masks::new(map, &scores.device());
    let n_cand = m.n_pos.clone() + m.n_neg.clone();
    let lse = super::masks::masked_logsumexp(scores.clone(), m.excluded).detach();
    let c = lse - n_cand.log() + m.n_neg.log();
    let pos = softplus(c.clone() - scores.clone()) * m.pos / m.n_pos;
    let neg = softplus(scores - c) * m.neg;
    Ok((pos + neg).sum_dim(1).mean().reshape([1]))
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
