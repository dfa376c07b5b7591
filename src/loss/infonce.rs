//! The InfoNCE family: InfoNCE, NT-Xent, SupCon (`L_out`, `L_in`), and the debiased and
//! hard-negative variants.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::masks::{masked_logsumexp, row_max, softplus, Masks};
use crate::error::{Error, Result};
use crate::pairs::PositiveMap;

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
    if let Some(loss) = crate::kernels::info_nce(&scores, map) {
        return Ok(loss);
    }
    let m = Masks::new(map, &scores.device());
    // -log softmax(s_i)_p = lse_i - s_ip, averaged over the row's positives, with both
    // terms shifted by the row's largest candidate score: a small loss then keeps the
    // precision of ulp(1), not ulp(1 / t)
    let max = row_max(&scores, &m.excluded);
    let s = scores - max;
    let lse = masked_logsumexp(s.clone(), m.excluded);
    let pos = (s * m.pos).sum_dim(1) / m.n_pos;
    Ok((lse - pos).mean().reshape([1]))
}

/// The decoupled contrastive loss (Yeh et al. 2022, eq. 6): InfoNCE with the positive
/// taken out of the denominator,
///
/// `L = mean_i ( -w_i mean_{p in P(i)} s_ip + log sum_{n in N(i)} e^{s_in} )`,
///
/// `N(i)` the candidates that are not positives. DCL has `w_i = 1`; DCLW weighs each
/// anchor by the negative von Mises-Fisher weight `w_i = 2 - A softmax_i(c_i / sigma)`
/// over the `A` anchors, `c_i` the cosine of the anchor with its positives (the score
/// times `temperature`), without gradient. `weight` is `(temperature, sigma)` for DCLW.
/// Under joint pairing of two views this is lightly's `DCLLoss` / `DCLWLoss`.
pub fn decoupled(
    scores: Tensor<2>,
    map: &PositiveMap,
    weight: Option<(f64, f64)>,
) -> Result<Tensor<1>> {
    let [rows, cols] = scores.dims();
    check_map(rows, cols, map)?;
    let m = Masks::new(map, &scores.device());
    let max = row_max(&scores, &m.not_neg);
    let neg = masked_logsumexp(scores.clone() - max.clone(), m.not_neg) + max;
    let pos = (scores * m.pos).sum_dim(1) / m.n_pos;
    let pos = match weight {
        None => pos,
        Some((t, sigma)) => {
            let c = pos.clone().detach().mul_scalar(t / sigma);
            let soft = burn::tensor::activation::softmax(c, 0);
            let w = soft.mul_scalar(-(rows as f64)).add_scalar(2.0);
            pos * w
        }
    };
    Ok((neg - pos).mean().reshape([1]))
}

/// DCLW's setting ([`decoupled`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Dclw {
    /// Scale of the cosines in the von Mises-Fisher weights (lightly's `sigma`).
    pub sigma: f64,
}

impl Default for Dclw {
    /// The paper's and lightly's `DCLWLoss` default, 0.5.
    fn default() -> Self {
        Self { sigma: 0.5 }
    }
}

impl Dclw {
    /// Checks the setting, naming its key.
    pub fn validate(&self) -> Result<()> {
        match self.sigma > 0.0 && self.sigma.is_finite() {
            true => Ok(()),
            false => Err(Error::config(
                "loss.dclw.sigma",
                self.sigma,
                "a finite value > 0",
            )),
        }
    }
}

/// SupCon's `L_in` (Khosla et al. 2020, eq. 3): the mean over positives inside the log,
///
/// `L = mean_i -log( 1/|P(i)| sum_{p in P(i)} exp(s_ip) / sum_{a in A(i)} exp(s_ia) )`.
pub fn supcon_in(scores: Tensor<2>, map: &PositiveMap) -> Result<Tensor<1>> {
    let [rows, cols] = scores.dims();
    check_map(rows, cols, map)?;
    let m = Masks::new(map, &scores.device());
    // both log-sum-exps relative to the row's largest candidate score (see `info_nce`)
    let max = row_max(&scores, &m.excluded);
    let s = scores - max;
    let all = masked_logsumexp(s.clone(), m.excluded);
    let pos = masked_logsumexp(s, m.not_pos) - m.n_pos.log();
    Ok((all - pos).mean().reshape([1]))
}

/// The debiased contrastive loss (Chuang et al. 2020) with hard-negative reweighting
/// (Robinson et al. 2021). For query `i`, positive `p` and its `N` negatives `n`:
///
/// `R_i = sum_n e^{(1+beta) s_in} / mean_n e^{beta s_in}` (the reweighted negatives; `beta = 0`
/// gives `sum_n e^{s_in}`),
/// `Ng_ip = max( (R_i - tau_plus N e^{s_ip}) / (1 - tau_plus), N e^{-1/t} )`,
/// `L = mean_i mean_p -log( e^{s_ip} / (e^{s_ip} + Ng_ip) )`,
///
/// with `tau_plus` the class prior (the chance that a "negative" shares the query's
/// class) and `t` the temperature (`e^{-1/t}` is the smallest `e^s` a cosine score allows).
/// `tau_plus = beta = 0` is InfoNCE.
///
/// Computed in the log domain, so that scores of any size stay finite:
/// `log R = lse_n((1+beta) s) - lse_n(beta s) + log N`, `a = tau_plus N e^{s_p - log R}`,
/// `log Ng = max(log R + log(1 - a) - log(1 - tau_plus), log N - 1/t)` (the first term only
/// where `a < 1`) and `-log(e^s_p / (e^s_p + Ng)) = softplus(log Ng - s_p)`.
pub fn debiased(
    scores: Tensor<2>,
    map: &PositiveMap,
    tau_plus: f64,
    beta: f64,
    temperature: f64,
) -> Result<Tensor<1>> {
    let [rows, cols] = scores.dims();
    check_map(rows, cols, map)?;
    if !(0.0..1.0).contains(&tau_plus) {
        return Err(Error::Invalid(format!(
            "class prior tau_plus = {tau_plus} must be in [0, 1)"
        )));
    }
    if !(beta >= 0.0 && beta.is_finite()) {
        return Err(Error::Invalid(format!(
            "concentration beta = {beta} must be finite and >= 0"
        )));
    }
    let m = Masks::new(map, &scores.device());
    let log_n = m.n_neg.clone().log();
    let log_r = masked_logsumexp(scores.clone().mul_scalar(1.0 + beta), m.not_neg.clone())
        - masked_logsumexp(scores.clone().mul_scalar(beta), m.not_neg)
        + log_n.clone();
    // a >= 1 means the debiasing term exceeds R: the floor applies; the exponent is capped
    // only to keep `a` finite there.
    let a = (scores.clone() - log_r.clone()).clamp_max(80.0).exp() * m.n_neg.mul_scalar(tau_plus);
    let log_raw = log_r + a.neg().add_scalar(1.0).clamp_min(1e-30).log() - (1.0 - tau_plus).ln();
    let log_floor = log_n.sub_scalar(1.0 / temperature);
    let log_ng = (log_raw - log_floor.clone()).clamp_min(0.0) + log_floor;
    let per_pair = softplus(log_ng - scores);
    Ok((per_pair * m.pos / m.n_pos).sum_dim(1).mean().reshape([1]))
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
        if map.positives[i].is_empty() {
            return Err(Error::Invalid(format!(
                "query {i} has no positive among its candidates"
            )));
        }
        if map.negatives(i) == 0 {
            return Err(Error::Invalid(format!(
                "query {i} has no negative among its candidates"
            )));
        }
    }
    Ok(())
}
