//! Energy-based margin losses on Euclidean distances: the pair contrastive loss and the
//! triplet loss.

use burn::prelude::*;
use burn::tensor::{Int, TensorData};

use super::infonce::check_map;
use super::masks::{softplus, Masks};
use super::mining::{mine, Mining, Triplet};
use crate::error::{Error, Result};
use crate::pairs::PositiveMap;

fn check_margin(margin: f64) -> Result<()> {
    if margin >= 0.0 && margin.is_finite() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "margin {margin} must be finite and >= 0"
        )))
    }
}

/// The contrastive (pair) loss of Hadsell, Chopra and LeCun (2006) over distances `d`:
///
/// `L = mean over candidate pairs of  y d^2 + (1 - y) max(0, m - d)^2`,
///
/// `y = 1` for positive pairs, 0 for negative ones.
pub fn pair(d: Tensor<2>, map: &PositiveMap, margin: f64) -> Result<Tensor<1>> {
    check_margin(margin)?;
    let [rows, cols] = d.dims();
    check_map(rows, cols, map)?;
    let m = Masks::new(map, &d.device());
    let pos = d.clone().powi_scalar(2) * m.pos.clone();
    let neg = d.neg().add_scalar(margin).clamp_min(0.0).powi_scalar(2) * m.neg.clone();
    Ok(((pos + neg).sum() / (m.pos.sum() + m.neg.sum())).reshape([1]))
}

/// The triplet loss (Schroff et al. 2015, FaceNet) over distances `d`:
///
/// `l(a, p, n) = max(0, d(a, p) - d(a, n) + m)` for `margin = Some(m)`, or Hermans et al.
/// (2017)'s soft margin `l(a, p, n) = ln(1 + exp(d(a, p) - d(a, n)))` for `None`, which
/// keeps pulling where the hinge has gone flat,
///
/// over the triplets `mining` selects. Batch-all and `semi-hard-all` with the hinge average
/// over the triplets with a non-zero loss (Hermans et al. 2017; pytorch-metric-learning's
/// reduction); otherwise every selected triplet counts (a soft-margin loss is never 0).
/// No triplet gives 0.
pub fn triplet(
    d: Tensor<2>,
    map: &PositiveMap,
    margin: Option<f64>,
    mining: Mining,
) -> Result<Tensor<1>> {
    if let Some(m) = margin {
        check_margin(m)?;
    }
    let band = margin.unwrap_or(0.0) as f32;
    let Some((ap, an)) = mined_pairs(&d, map, mining, 1.0, band)? else {
        return Ok(d.sum().mul_scalar(0.0).reshape([1]));
    };
    let loss = match margin {
        None => softplus(ap - an).mean(),
        Some(m) => {
            let l = (ap - an).add_scalar(m).clamp_min(0.0);
            if matches!(mining, Mining::All | Mining::SemiHardAll) {
                let active = values_above_zero(&l);
                l.sum().div_scalar(active.max(1) as f64)
            } else {
                l.mean()
            }
        }
    };
    Ok(loss.reshape([1]))
}

/// Xuan et al. (2020)'s selectively contrastive triplet loss over cosine similarities `s`
/// (unit embeddings), on the triplets `mining` selects:
///
/// `l(a, p, n) = s_an` when `s_an > s_ap`, else `ln(1 + exp((s_an - s_ap) / t))`,
///
/// averaged over the triplets. A triplet whose negative is nearer than its positive only
/// pushes that negative away: pulling the far positive in at the same time is what drives
/// batch-hard training to the collapsed solution ("Hard negative examples are hard, but
/// useful", ECCV 2020, section 3). The paper pairs it with easy positives; with
/// batch-hard's hardest positive nearly every triplet is of the first kind. Mining ranks
/// keys by `-s`, the order of distances between unit vectors. No triplet gives 0.
pub fn selective_triplet(
    s: Tensor<2>,
    map: &PositiveMap,
    mining: Mining,
    temperature: f64,
) -> Result<Tensor<1>> {
    let Some((ap, an)) = mined_pairs(&s, map, mining, -1.0, 0.0)? else {
        return Ok(s.sum().mul_scalar(0.0).reshape([1]));
    };
    let nca = softplus((an.clone() - ap.clone()).div_scalar(temperature));
    Ok(nca
        .mask_where(an.clone().greater(ap), an)
        .mean()
        .reshape([1]))
}

/// The `(anchor, positive)` and `(anchor, negative)` entries of `m` for the triplets
/// `mining` selects, reading `sign * m` as distances (`-1` for similarities); `None` when
/// the batch has no triplet. `band` is [`Mining::SemiHardAll`]'s margin.
fn mined_pairs(
    m: &Tensor<2>,
    map: &PositiveMap,
    mining: Mining,
    sign: f32,
    band: f32,
) -> Result<Option<(Tensor<1>, Tensor<1>)>> {
    let [rows, cols] = m.dims();
    check_map(rows, cols, map)?;
    let d: Vec<f32> = m
        .clone()
        .into_data()
        .iter::<f32>()
        .map(|v| sign * v)
        .collect();
    let triplets = mine(mining, &d, map, band);
    if triplets.is_empty() {
        return Ok(None);
    }
    let device = m.device();
    let index = |pick: fn(&Triplet) -> usize| {
        let v: Vec<i64> = triplets
            .iter()
            .map(|t| (t.0 * cols + pick(t)) as i64)
            .collect();
        Tensor::<1, Int>::from_data(TensorData::new(v, [triplets.len()]), &device)
    };
    let flat = m.clone().reshape([rows * cols]);
    Ok(Some((
        flat.clone().select(0, index(|t| t.1)),
        flat.select(0, index(|t| t.2)),
    )))
}

fn values_above_zero(l: &Tensor<1>) -> usize {
    l.clone()
        .into_data()
        .iter::<f32>()
        .filter(|&v| v > 0.0)
        .count()
}
