//! How a batch of views becomes queries, keys and their positive map, for the pairings
//! that need more than the encoder's pooled output: context–instance (DIM) and
//! predictive coding (CPC).

use burn::prelude::*;

use crate::error::{Error, Result};
use crate::loss::{LossConfig, LossState};
use crate::model::Model;
use crate::views::{PositiveMap, Relation, Rule, Tag, ViewBatch};

/// DIM/DGI: every local feature of a sample (a feature-map position, a time step) is a
/// query whose one positive is its own sample's global summary; the summaries of the
/// other samples are its negatives.
pub fn context_loss(
    model: &Model,
    loss: &LossConfig,
    state: &mut LossState,
    views: &ViewBatch,
    input: impl Fn(&crate::views::Group) -> Tensor<4>,
) -> Result<(Tensor<1>, PositiveMap)> {
    let mut locals = Vec::new();
    let mut globals = Vec::new();
    let (mut q_tags, mut k_tags) = (Vec::new(), Vec::new());
    for g in &views.groups {
        let (zl, zg, positions) = model.local_global(input(g))?;
        locals.push(zl);
        globals.push(zg);
        for t in &g.tags {
            q_tags.extend((0..positions).map(|p| Tag {
                time: p as u32,
                ..*t
            }));
            k_tags.push(*t);
        }
    }
    let (q, k) = (Tensor::cat(locals, 0), Tensor::cat(globals, 0));
    let map = PositiveMap::build(Relation::Instance, &q_tags, &k_tags, false);
    let value = loss.compute_with(q, k, &map, model.critic.as_ref(), state)?;
    Ok((value, map))
}

/// CPC: the windows of each sequence, in time order, are embedded (`z_t`), summarised
/// causally by the context head (`c_t`), and `W_k c_t` must find `z_{t+k}` among every
/// window of the batch (the same sequence's other steps and all other sequences). The
/// loss is the mean over `k = 1..=steps`. With a quantiser the keys are the quantised
/// embeddings (wav2vec 2.0) and `weight x diversity` is added.
pub fn predictive_loss(
    model: &Model,
    loss: &LossConfig,
    state: &mut LossState,
    views: &ViewBatch,
    input: impl Fn(&crate::views::Group) -> Tensor<4>,
    quantize: QuantizeStep,
) -> Result<(Tensor<1>, PositiveMap)> {
    let context = model
        .context
        .as_ref()
        .ok_or_else(|| Error::Invalid("predictive pairing needs a head.context".into()))?;
    let g = match views.groups.as_slice() {
        [g] => g,
        _ => {
            return Err(Error::Invalid(
                "predictive pairing needs one group of windows".into(),
            ))
        }
    };
    let steps = g.tags.iter().map(|t| t.view as usize).max().unwrap_or(0) + 1;
    let batch = g.tags.len() / steps;
    let (_, z) = model.forward(input(g));
    let d = z.dims()[1];
    let (keys, diversity) = match &model.quantizer {
        Some(qz) => {
            let noise = qz.noise(z.dims()[0], quantize.seed, &z.device());
            let out = qz.forward(z.clone(), noise, quantize.temperature);
            (out.q, Some(out.diversity.mul_scalar(quantize.weight)))
        }
        None => (z.clone(), None),
    };
    // Rows are view-major (all windows 0, then all windows 1, ...): [time, batch, d].
    let seq = z.clone().reshape([steps, batch, d]).swap_dims(0, 1);
    let c = context.summarise(seq);
    let width = c.dims()[2];
    let mut losses = Vec::new();
    let mut first = None;
    for k in 1..=context.steps().min(steps - 1) {
        let ahead = steps - k;
        let pred = context
            .predict(c.clone().slice([0..batch, 0..ahead, 0..width]), k)
            .reshape([batch * ahead, d]);
        // Query (i, t) is scored against the tag of window t + k of sequence i.
        let tags: Vec<Tag> = (0..batch)
            .flat_map(|i| (k..steps).map(move |t| t * batch + i))
            .map(|row| g.tags[row])
            .collect();
        let rule = Rule {
            relation: Relation::Temporal,
            max_gap: 0,
        };
        let map = PositiveMap::build(rule, &tags, &g.tags, false);
        losses.push(loss.compute_with(pred, keys.clone(), &map, model.critic.as_ref(), state)?);
        first.get_or_insert(map);
    }
    let n = losses.len() as f64;
    match (losses.into_iter().reduce(|a, b| a + b), first) {
        (Some(l), Some(map)) => {
            let l = l.div_scalar(n);
            Ok((diversity.map_or(l.clone(), |d| l + d), map))
        }
        _ => Err(Error::Invalid(
            "predictive pairing needs at least two windows".into(),
        )),
    }
}

/// The quantiser's temperature, noise seed and diversity weight at one step.
#[derive(Debug, Clone, Copy)]
pub struct QuantizeStep {
    pub temperature: f64,
    pub seed: u64,
    pub weight: f64,
}

/// The rows of `map` that have a positive, and the map restricted to them: rows without
/// one (e.g. distant windows) stay keys, as negatives, but are not anchors.
pub fn anchors(map: &PositiveMap) -> Option<(Vec<usize>, PositiveMap)> {
    let rows: Vec<usize> = (0..map.rows)
        .filter(|&i| !map.positives[i].is_empty())
        .collect();
    if rows.len() == map.rows {
        return None;
    }
    let sub = PositiveMap {
        rows: rows.len(),
        cols: map.cols,
        positives: rows.iter().map(|&i| map.positives[i].clone()).collect(),
        excluded: rows.iter().map(|&i| map.excluded[i].clone()).collect(),
    };
    Some((rows, sub))
}
