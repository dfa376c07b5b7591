//! Mutual-information estimators over critic scores (Deep InfoMax, Hjelm et al. 2019):
//! positives are samples of the joint, negatives of the product of marginals.

use burn::prelude::*;

use super::infonce::check_map;
use super::masks::{masked_logsumexp, softplus, Masks};
use crate::error::Result;
use crate::pairs::PositiveMap;

/// The Jensen-Shannon estimator, as a loss to minimise (DIM eq. 4, negated):
///
/// `L = E_pos[softplus(-T)] + E_neg[softplus(T)]`,
///
/// each expectation the mean over all positive (negative) pairs of the map.
pub fn jensen_shannon(scores: Tensor<2>, map: &PositiveMap) -> Result<Tensor<1>> {
    let [rows, cols] = scores.dims();
    check_map(rows, cols, map)?;
    let m = Masks::new(map, &scores.device());
    let pos = (softplus(scores.clone().neg()) * m.pos.clone()).sum() / m.pos.sum();
    let neg = (softplus(scores) * m.neg.clone()).sum() / m.neg.sum();
    Ok((pos + neg).reshape([1]))
}

/// The Donsker-Varadhan estimator of the KL divergence, as a loss (DIM eq. 2, negated):
///
/// `L = -( E_pos[T] - log E_neg[e^T] )`.
pub fn donsker_varadhan(scores: Tensor<2>, map: &PositiveMap) -> Result<Tensor<1>> {
    let [rows, cols] = scores.dims();
    check_map(rows, cols, map)?;
    let m = Masks::new(map, &scores.device());
    let pos = (scores.clone() * m.pos.clone()).sum() / m.pos.sum();
    let n_neg = m.neg.clone().sum();
    let flat_lse = masked_logsumexp(
        scores.reshape([1, rows * cols]),
        m.not_neg.reshape([1, rows * cols]),
    );
    let log_mean_exp = flat_lse.reshape([1]) - n_neg.log();
    Ok((log_mean_exp - pos).reshape([1]))
}

/// The InfoNCE lower bound on mutual information, `I >= log N - L`, with `N` the mean
/// number of candidates per query: a metric to report beside an InfoNCE loss `loss`.
pub fn info_nce_bound(loss: f64, map: &PositiveMap) -> f64 {
    map.mean_candidates().ln() - loss
}
