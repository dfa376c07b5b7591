//! ProtoNCE (Li et al. 2021, PCL): besides the instance InfoNCE, every embedding must
//! find the prototype (k-means centroid) of its instance's cluster among all prototypes,
//! each scored at its own concentration `phi`, for several clusterings of different
//! granularity.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, TensorData};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The prototype term of `loss.kind = "proto-nce"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Proto {
    /// Clusters of each k-means clustering of the memory bank (PCL: 25,000, 50,000 and
    /// 100,000 for ImageNet's 1.28 M images).
    pub clusters: Vec<usize>,
    /// `alpha` of the concentration `phi = mean ||v - c|| / ln(Z + alpha)`, which keeps
    /// small clusters from being too concentrated.
    pub alpha: f64,
    /// Weight of the prototype term against the instance term.
    pub weight: f64,
}

impl Default for Proto {
    /// Three clusterings of 25, 50 and 100 prototypes (2.5, 5 and 10 per class of a
    /// 10-class set, PCL's 25-100 per class scaled down to 60,000 images); the paper's
    /// `alpha` 10 and weight 1.
    fn default() -> Self {
        Self {
            clusters: vec![25, 50, 100],
            alpha: 10.0,
            weight: 1.0,
        }
    }
}

impl Proto {
    /// Checks the settings, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        if self.clusters.is_empty() || self.clusters.contains(&0) {
            return Err(Error::config(
                "loss.proto.clusters",
                format!("{:?}", self.clusters),
                "a list of cluster counts, each >= 1",
            ));
        }
        if !(self.alpha > 0.0 && self.alpha.is_finite()) {
            return Err(Error::config(
                "loss.proto.alpha",
                self.alpha,
                "a finite value > 0",
            ));
        }
        if !(self.weight >= 0.0 && self.weight.is_finite()) {
            return Err(Error::config(
                "loss.proto.weight",
                self.weight,
                "a finite value >= 0",
            ));
        }
        Ok(())
    }
}

/// PCL's concentration of each of the `k` clusters of the unit rows `data` (`n x dim`)
/// around unit `centroids` under `assign`, as the authors' code estimates it:
/// `phi_c = mean_{z in c} ||v_z - c|| / ln(Z_c + alpha)` for clusters of two or more
/// members, the largest of those for the others; then clipped to the 10th and 90th
/// percentiles (numpy's linear interpolation) and scaled to mean `temperature`.
pub fn concentration(
    data: &[f32],
    dim: usize,
    centroids: &[f32],
    assign: &[u32],
    alpha: f64,
    temperature: f64,
) -> Vec<f32> {
    let k = centroids.len() / dim;
    let (mut sum, mut count) = (vec![0.0f64; k], vec![0usize; k]);
    for (i, &a) in assign.iter().enumerate() {
        let (v, c) = (
            &data[i * dim..(i + 1) * dim],
            &centroids[a as usize * dim..(a as usize + 1) * dim],
        );
        let d2: f64 = v.iter().zip(c).map(|(x, y)| f64::from(x - y).powi(2)).sum();
        sum[a as usize] += d2.sqrt();
        count[a as usize] += 1;
    }
    let mut phi: Vec<f64> = (0..k)
        .map(|c| match count[c] {
            0 | 1 => f64::NAN,
            z => sum[c] / z as f64 / (z as f64 + alpha).ln(),
        })
        .collect();
    let top = phi
        .iter()
        .copied()
        .filter(|p| !p.is_nan())
        .fold(0.0f64, f64::max);
    phi.iter_mut().filter(|p| p.is_nan()).for_each(|p| *p = top);
    let (lo, hi) = (percentile(&phi, 10.0), percentile(&phi, 90.0));
    phi.iter_mut().for_each(|p| *p = p.clamp(lo, hi));
    let mean = phi.iter().sum::<f64>() / k.max(1) as f64;
    phi.iter()
        .map(|&p| match mean > 0.0 {
            true => (temperature * p / mean) as f32,
            false => temperature as f32,
        })
        .collect()
}

/// numpy's default `percentile` (linear interpolation between the closest ranks).
fn percentile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q / 100.0 * (v.len().saturating_sub(1)) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    match v.get(i + 1) {
        Some(&next) => v[i] + (next - v[i]) * frac,
        None => v.get(i).copied().unwrap_or(0.0),
    }
}

/// One clustering's ProtoNCE term of unit embeddings `v` `[n, d]` whose clusters are
/// `assign`, against unit `centroids` `[k, d]` with concentrations `phi`:
///
/// `L = -1/n sum_i log( exp(v_i · c_{s_i} / phi_{s_i}) / sum_j exp(v_i · c_j / phi_j) )`,
///
/// every other prototype a negative (PCL samples `r` of them when there are tens of
/// thousands; here there are few enough to score them all).
pub fn proto_nce(
    v: Tensor<2>,
    assign: &[u32],
    centroids: Tensor<2>,
    phi: &[f32],
) -> Result<Tensor<1>> {
    let ([n, d], [k, dc]) = (v.dims(), centroids.dims());
    if d != dc || phi.len() != k || assign.len() != n {
        return Err(Error::Invalid(format!(
            "ProtoNCE of {n} embeddings of width {d} against {k} prototypes of width {dc}, {} concentrations and {} assignments",
            phi.len(),
            assign.len()
        )));
    }
    if let Some(&a) = assign.iter().find(|&&a| a as usize >= k) {
        return Err(Error::Invalid(format!(
            "cluster {a} out of range for {k} prototypes"
        )));
    }
    let device = v.device();
    let inv = Tensor::<1>::from_data(
        TensorData::new(phi.iter().map(|p| 1.0 / p).collect::<Vec<f32>>(), [k]),
        &device,
    )
    .reshape([1, k]);
    let log_p = log_softmax(v.matmul(centroids.transpose()) * inv, 1);
    let target = Tensor::<2, Int>::from_data(
        TensorData::new(
            assign.iter().map(|&a| a as i64).collect::<Vec<i64>>(),
            [n, 1],
        ),
        &device,
    );
    Ok(log_p.gather(1, target).mean().neg().reshape([1]))
}
