//! How a batch of views becomes queries, keys and their positive map: the four pairings
//! of the review's methods behind one signature, [`loss`].

use burn::prelude::*;
use burn::tensor::TensorData;

use super::keystate::KeyState;
use crate::config::Config;
use crate::dist::Ledger;
use crate::error::{Error, Result};
use crate::keys::{self, Pairing};
use crate::loss::{Loss, LossKind, LossState};
use crate::model::{select, Model};
use crate::pairs::{PositiveMap, Relation, Rule, Tag};
use crate::score::l2_normalise;
use crate::views::transform::mix;
use crate::views::{Group, ViewBatch};

/// What a pairing reads and updates at one step.
pub struct Step<'a> {
    pub cfg: &'a Config,
    pub model: &'a Model,
    pub keys: &'a mut KeyState,
    /// The loss as it applies in this epoch.
    pub loss: &'a Loss,
    pub state: &'a mut LossState,
    /// The autodiff device the model lives on.
    pub device: &'a Device,
    /// The step (from 0) and the run's total.
    pub global: usize,
    pub total: usize,
    /// The rows gathered across ranks this step (empty in one process).
    pub ledger: &'a mut Ledger,
    /// Set by the pairing, when the online probe asks for them (`Some`), to the detached
    /// representations `h` of this rank's first-view rows and their tags.
    pub features: Option<&'a mut Option<(Tensor<2>, Vec<Tag>)>>,
}

/// Whether the ranks split the loss by queries: each computes only its own rows' terms
/// of a loss that is a mean over anchors (the InfoNCE family under joint pairing), so the
/// `B x B` score matrix is shared out instead of computed whole on every rank. Other
/// losses and pairings are computed whole on every rank.
pub fn splits_queries(cfg: &Config) -> bool {
    crate::dist::world().size() > 1
        && cfg.keys.pairing == Pairing::Joint
        && matches!(
            cfg.loss.kind,
            LossKind::NtXent
                | LossKind::InfoNce
                | LossKind::Supcon
                | LossKind::SupconIn
                | LossKind::ProtoNce
        )
}

/// The loss of one batch under the configured pairing, with the positive map it was
/// computed on (for the InfoNCE bound).
///
/// Under data parallelism `views` is this rank's slice of the global batch; the embedded
/// rows are gathered ([`crate::dist::World::gather_rows`]) so that the loss, the positive
/// map and every key structure see the whole batch, as one process would.
pub fn loss(s: Step, views: &ViewBatch) -> Result<(Tensor<1>, PositiveMap)> {
    let ranks = crate::dist::world().size();
    if ranks > 1 && matches!(s.cfg.keys.pairing, Pairing::Context | Pairing::Predictive) {
        return Err(Error::config(
            "keys.pairing",
            crate::error::kind_name(&s.cfg.keys.pairing),
            format!("joint or cross under {ranks} ranks (context and predictive pairings train in one process)"),
        ));
    }
    match s.cfg.keys.pairing {
        Pairing::Joint => joint(s, views),
        Pairing::Cross => cross(s, views),
        Pairing::Context => context(s, views),
        Pairing::Predictive => predictive(s, views),
        Pairing::MultiCrop => multi_crop(s, views),
    }
}

/// Every row a query and a key, in one forward pass (SimCLR, SupCon). Rows without any
/// positive (distant windows, singleton classes) stay keys but are not anchors.
fn joint(mut s: Step, views: &ViewBatch) -> Result<(Tensor<1>, PositiveMap)> {
    let world = crate::dist::world();
    let mut z = Vec::with_capacity(views.groups.len());
    let mut tags = Vec::new();
    for g in &views.groups {
        let (h, local) = s.model.forward_views(group_input(g, s.device), &g.views());
        keep_features(&mut s, h, &g.tags);
        let (rows, t) = world.gather_rows(local, &g.tags, s.ledger);
        z.push(rows);
        tags.extend(t);
    }
    let z = Tensor::cat(z, 0);
    let map = positive_map(&s, &tags, &tags, true);
    if s.loss.config().kind == LossKind::Swav {
        return Ok((swav_crops(&s, z, &tags)?, map));
    }
    if let Some(p) = s.keys.prototypes.as_mut() {
        let first: Vec<usize> = (0..tags.len()).filter(|&i| tags[i].view == 0).collect();
        let rows = keys::host(&select(&z, &first));
        let inst: Vec<u32> = first.iter().map(|&i| tags[i].instance).collect();
        p.bank.update(&inst, &rows, s.cfg.keys.bank_momentum as f32);
    }
    let params = &s.model.loss;
    if splits_queries(s.cfg) {
        // this rank's anchors only, weighted so that the ranks' losses sum to the mean
        let all = anchors(&map).map_or_else(|| (0..map.rows).collect(), |(rows, _)| rows);
        let own = s.ledger.own_rows();
        let mine: Vec<usize> = all
            .iter()
            .copied()
            .filter(|r| own.binary_search(r).is_ok())
            .collect();
        let weight = mine.len() as f64 / all.len().max(1) as f64;
        // ProtoNCE's prototype term is a mean over every row: this rank's rows' share
        let own_tags: Vec<Tag> = own.iter().map(|&r| tags[r]).collect();
        let prototypes = match own.is_empty() {
            true => None,
            false => prototype_term(&s, &select(&z, &own), &own_tags)?
                .map(|p| p.mul_scalar(own.len() as f64 / tags.len().max(1) as f64)),
        };
        let loss = match mine.is_empty() {
            true => z.clone().sum().mul_scalar(0.0),
            false => s
                .loss
                .compute_with(
                    select(&z, &mine),
                    z,
                    &restrict(&map, &mine),
                    params,
                    s.state,
                )?
                .mul_scalar(weight),
        };
        return Ok((prototypes.map_or(loss.clone(), |p| loss + p), map));
    }
    let prototypes = prototype_term(&s, &z, &tags)?;
    let (loss, map) = match anchors(&map) {
        None => {
            let loss = s.loss.compute_with(z.clone(), z, &map, params, s.state)?;
            (loss, map)
        }
        Some((rows, sub)) if !rows.is_empty() => {
            let loss = s
                .loss
                .compute_with(select(&z, &rows), z, &sub, params, s.state)?;
            (loss, sub)
        }
        Some(_) => return Err(Error::Invalid("no row of the batch has a positive".into())),
    };
    Ok((prototypes.map_or(loss.clone(), |p| loss + p), map))
}

/// ProtoNCE's prototype term of the batch's embeddings `z` (rows tagged `tags`): `weight`
/// times the mean over the clusterings of [`crate::loss::proto::proto_nce`] of the unit
/// embeddings against their instances' prototypes. `None` for other losses and before
/// the first clustering (PCL's warm-up on the instance term alone).
fn prototype_term(s: &Step, z: &Tensor<2>, tags: &[Tag]) -> Result<Option<Tensor<1>>> {
    let c = s.loss.config();
    let Some(p) = s
        .keys
        .prototypes
        .as_ref()
        .filter(|_| c.kind == LossKind::ProtoNce)
    else {
        return Ok(None);
    };
    let v = l2_normalise(z.clone());
    let d = v.dims()[1];
    let mut terms = Vec::new();
    for set in p.sets.iter().filter(|set| !set.phi.is_empty()) {
        let assign: Vec<u32> = tags
            .iter()
            .map(|t| set.assign[t.instance as usize])
            .collect();
        let k = set.phi.len();
        let centroids =
            Tensor::<2>::from_data(TensorData::new(set.centroids.clone(), [k, d]), s.device);
        terms.push(crate::loss::proto::proto_nce(
            v.clone(),
            &assign,
            centroids,
            &set.phi,
        )?);
    }
    let m = terms.len() as f64;
    Ok(terms
        .into_iter()
        .reduce(|a, b| a + b)
        .map(|t| t.mul_scalar(c.proto.weight / m)))
}

/// SwAV: the normalised embeddings of every crop are scored against the normalised
/// prototypes, and each high-resolution crop's codes are predicted from the other crops
/// of the same instance ([`crate::loss::swav::swav`]). Rows are grouped by view, each
/// view's rows in the same instance order.
fn swav_crops(s: &Step, z: Tensor<2>, tags: &[Tag]) -> Result<Tensor<1>> {
    let scores = l2_normalise(z).matmul(s.model.loss.unit_prototypes()?);
    let views = tags
        .iter()
        .map(|t| t.view)
        .max()
        .map_or(0, |v| v as usize + 1);
    let rows_of = |v: usize| -> Vec<usize> {
        (0..tags.len())
            .filter(|&i| tags[i].view as usize == v)
            .collect()
    };
    let first = rows_of(0);
    let mut crops = Vec::with_capacity(views);
    for v in 0..views {
        let rows = rows_of(v);
        let same = rows.len() == first.len()
            && rows
                .iter()
                .zip(&first)
                .all(|(&a, &b)| tags[a].instance == tags[b].instance);
        if !same {
            return Err(Error::Invalid(format!(
                "SwAV needs every view of every instance in the batch; view {v} differs from view 0"
            )));
        }
        crops.push(select(&scores, &rows));
    }
    let high = match s.cfg.views.per_view.len() {
        0 => s.cfg.views.n,
        n => n,
    };
    let c = s.loss.config();
    crate::loss::swav::swav(&crops, high, c.temperature, &c.swav)
}

/// Queries from one view, keys from the other (or from a memory bank), per direction:
/// MoCo, BYOL, CMC, CRD, NNCLR, InstDisc.
fn cross(mut s: Step, views: &ViewBatch) -> Result<(Tensor<1>, PositiveMap)> {
    let g = views
        .groups
        .first()
        .ok_or_else(|| Error::Invalid("a batch without views".into()))?;
    let world = crate::dist::world();
    let (h, z_local) = s.model.forward_views(group_input(g, s.device), &g.views());
    keep_features(&mut s, h, &g.tags);
    let (z_all, tags) = world.gather_rows(z_local, &g.tags, s.ledger);
    if s.keys.bank.is_some() {
        return bank(s, &tags, z_all);
    }
    let rows_of = |tags: &[Tag], v: u16| -> Vec<usize> {
        (0..tags.len()).filter(|&i| tags[i].view == v).collect()
    };
    let (rows0, rows1) = (rows_of(&tags, 0), rows_of(&tags, 1));
    if rows0.is_empty() || rows1.is_empty() {
        return Err(Error::Invalid(
            "cross pairing needs views 0 and 1 in every batch".into(),
        ));
    }
    let tags_of = |rows: &[usize]| -> Vec<Tag> { rows.iter().map(|&i| tags[i]).collect() };
    let mut directions = vec![(rows0.clone(), rows1.clone())];
    if s.cfg.keys.symmetric {
        directions.push((rows1, rows0));
    }
    let mut losses = Vec::new();
    let mut first_map = None;
    let mut pushed: Vec<(Tensor<2>, Vec<Tag>)> = Vec::new();
    for (qr, kr) in &directions {
        let q = s.model.predict(select(&z_all, qr));
        // a key encoder reads this rank's rows of the key view; their keys are gathered
        let local = rows_of(&g.tags, tags[kr[0]].view);
        let k_own = match encoded_keys(&s, g, &local)? {
            Some(k) => world.gather_detached(k),
            None => select(&z_all, kr),
        };
        let k_tags = tags_of(kr);
        // NNCLR: the positive key is the support set's nearest neighbour of the key.
        let k_batch = match s
            .keys
            .support
            .as_ref()
            .map(|sup| (sup, sup.nearest(&keys::host(&k_own))))
        {
            Some((sup, Some(nn))) => {
                let rows: Vec<f32> = nn
                    .iter()
                    .flat_map(|&j| sup.z[j * sup.dim..(j + 1) * sup.dim].to_vec())
                    .collect();
                keys::device_rows(rows, sup.dim, s.device)
            }
            _ => k_own.clone(),
        };
        let (k, all_tags) = match &s.keys.queue {
            Some(queue) if !queue.tags.is_empty() => {
                let extra = keys::device_rows(queue.z.clone(), queue.dim, s.device);
                let mut t = k_tags.clone();
                t.extend_from_slice(&queue.tags);
                (Tensor::cat(vec![k_batch, extra], 0), t)
            }
            _ => (k_batch, k_tags.clone()),
        };
        let map = positive_map(&s, &tags_of(qr), &all_tags, false);
        losses.push(s.loss.compute_with(q, k, &map, &s.model.loss, s.state)?);
        pushed.push((k_own.detach(), k_tags));
        first_map.get_or_insert(map);
    }
    for held in [s.keys.queue.as_mut(), s.keys.support.as_mut()]
        .into_iter()
        .flatten()
    {
        for (k, t) in &pushed {
            held.push(&keys::host(k), t);
        }
    }
    let n = losses.len() as f64;
    let loss = losses.into_iter().reduce(|a, b| a + b);
    match (loss, first_map) {
        (Some(loss), Some(map)) => Ok((loss.div_scalar(n), map)),
        _ => Err(Error::Invalid("no query/key direction".into())),
    }
}

/// The keys of this rank's rows `local` of `g` from the key encoder (a model of this
/// tool or an ONNX teacher), without gradient and not yet gathered; `None` when the
/// queries' own encoder computes the keys.
fn encoded_keys(s: &Step, g: &Group, local: &[usize]) -> Result<Option<Tensor<2>>> {
    Ok(match (&s.keys.model, &s.keys.onnx) {
        (Some(km), _) => Some(model_keys(km, g, local, s.device)),
        (None, Some(t)) => {
            let z = t.embed(&rows_data(g, local), local.len())?;
            Some(keys::device_rows(z, t.dim, s.device))
        }
        (None, None) => None,
    })
}

/// DINO's multi-crop: every crop of every group (global and local) is a query from the
/// online encoder; the global crops (views `0..n`) are also encoded by the key encoder,
/// and those are the keys. A query's positives are the keys of its image from another
/// view; the key of its own view is no candidate. One loss over all pairs, so a loss
/// that moves a state per step (DINO's centre) moves it once. With prototypes
/// (`head.prototypes`), queries and keys are the scores of their normalised embeddings
/// against each encoder's own unit-norm prototypes.
fn multi_crop(mut s: Step, views: &ViewBatch) -> Result<(Tensor<1>, PositiveMap)> {
    let world = crate::dist::world();
    let global = match s.cfg.views.per_view.len() {
        0 => s.cfg.views.n,
        n => n,
    } as u16;
    let (mut zq, mut q_tags, mut zk, mut k_tags) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for g in &views.groups {
        let (h, local_z) = s.model.forward_views(group_input(g, s.device), &g.views());
        keep_features(&mut s, h, &g.tags);
        let (z, tags) = world.gather_rows(local_z, &g.tags, s.ledger);
        let local: Vec<usize> = (0..g.tags.len())
            .filter(|&i| g.tags[i].view < global)
            .collect();
        if !local.is_empty() {
            // gathered as rows, so that the keys sort by view as the queries do
            let (k, t) = match encoded_keys(&s, g, &local)? {
                Some(k) => {
                    let own: Vec<Tag> = local.iter().map(|&i| g.tags[i]).collect();
                    let (k, t) = world.gather_rows(k, &own, &mut Ledger::default());
                    (k.detach(), t)
                }
                None => {
                    let keyed: Vec<usize> =
                        (0..tags.len()).filter(|&i| tags[i].view < global).collect();
                    (select(&z, &keyed), keyed.iter().map(|&i| tags[i]).collect())
                }
            };
            zk.push(k);
            k_tags.extend(t);
        }
        zq.push(z);
        q_tags.extend(tags);
    }
    if zk.is_empty() {
        return Err(Error::Invalid(
            "multi-crop pairing needs the global crops (views 0..views.n) in every batch".into(),
        ));
    }
    let q = s.model.predict(Tensor::cat(zq, 0));
    let k = Tensor::cat(zk, 0);
    let (q, k) = match &s.model.loss.prototypes {
        Some(_) => {
            let teacher = s.keys.model.as_ref().map_or(&s.model.loss, |km| &km.loss);
            (
                l2_normalise(q).matmul(s.model.loss.unit_prototypes()?),
                l2_normalise(k).matmul(teacher.unit_prototypes()?),
            )
        }
        None => (q, k),
    };
    let built = positive_map(&s, &q_tags, &k_tags, false);
    let same_view = |i: usize| -> Vec<u32> {
        built.positives[i]
            .iter()
            .copied()
            .filter(|&j| {
                let (a, b) = (q_tags[i], k_tags[j as usize]);
                a.view == b.view && a.instance == b.instance
            })
            .collect()
    };
    let excluded = (0..built.rows)
        .map(|i| [built.excluded[i].as_slice(), &same_view(i)].concat())
        .collect();
    let map = PositiveMap::new(built.rows, built.cols, built.positives, excluded)?;
    let loss = s.loss.compute_with(q, k, &map, &s.model.loss, s.state)?;
    Ok((loss, map))
}

/// InstDisc: every view is a query against the bank entries of the batch's instances and
/// sampled negatives; the first view's embeddings then move the bank.
fn bank(s: Step, tags: &[Tag], z_all: Tensor<2>) -> Result<(Tensor<1>, PositiveMap)> {
    let Some(bank) = &s.keys.bank else {
        return Err(Error::Invalid("a bank pairing without a bank".into()));
    };
    let q = s.model.predict(z_all.clone());
    let instances: Vec<u32> = tags.iter().map(|t| t.instance).collect();
    let negatives = s.cfg.keys.bank_negatives;
    let idx = bank.candidates(&instances, negatives, s.cfg.train.seed, s.global);
    let (kz, ktags) = bank.gather(&idx);
    let k = keys::device_rows(kz, bank.dim, s.device);
    let map = positive_map(&s, tags, &ktags, false);
    let loss = s.loss.compute_with(q, k, &map, &s.model.loss, s.state)?;
    let first: Vec<usize> = (0..tags.len()).filter(|&i| tags[i].view == 0).collect();
    let rows = keys::host(&select(&z_all, &first));
    let inst: Vec<u32> = first.iter().map(|&i| tags[i].instance).collect();
    if let Some(b) = s.keys.bank.as_mut() {
        b.update(&inst, &rows, s.cfg.keys.bank_momentum as f32);
    }
    Ok((loss, map))
}

/// DIM/DGI: every local feature of a sample (a feature-map position, a time step) is a
/// query whose one positive is its own sample's global summary; the summaries of the
/// other samples are its negatives.
fn context(s: Step, views: &ViewBatch) -> Result<(Tensor<1>, PositiveMap)> {
    let mut locals = Vec::new();
    let mut globals = Vec::new();
    let (mut q_tags, mut k_tags) = (Vec::new(), Vec::new());
    for g in &views.groups {
        let (zl, zg, positions) = s.model.local_global(group_input(g, s.device))?;
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
    let value = s.loss.compute_with(q, k, &map, &s.model.loss, s.state)?;
    Ok((value, map))
}

/// CPC: the windows of each sequence, in time order, are embedded (`z_t`), summarised
/// causally by the context head (`c_t`), and `W_k c_t` must find `z_{t+k}` among every
/// window of the batch (the same sequence's other steps and all other sequences). The
/// loss is the mean over `k = 1..=steps`. With a quantiser the keys are the quantised
/// embeddings (wav2vec 2.0) and `weight x diversity` is added.
fn predictive(s: Step, views: &ViewBatch) -> Result<(Tensor<1>, PositiveMap)> {
    let model = s.model;
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
    let (_, z) = model.forward(group_input(g, s.device));
    let d = z.dims()[1];
    let (keys, diversity) = match &model.quantizer {
        Some(qz) => {
            let q = &s.cfg.head.quantizer;
            let seed = mix(s.cfg.train.seed, s.global as u64, 0x9b);
            let noise = qz.noise(z.dims()[0], seed, &z.device());
            let out = qz.forward(z.clone(), noise, q.temperature_at(s.global, s.total));
            (out.q, Some(out.diversity.mul_scalar(q.diversity_weight)))
        }
        None => (z.clone(), None),
    };
    // Rows are view-major (all windows 0, then all windows 1, ...): [time, batch, d].
    let seq = z.reshape([steps, batch, d]).swap_dims(0, 1);
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
        losses.push(
            s.loss
                .compute_with(pred, keys.clone(), &map, &model.loss, s.state)?,
        );
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

/// The positive map of queries and keys under the configured relation, on cluster
/// assignments when the run clusters, less false negatives when asked.
fn positive_map(s: &Step, queries: &[Tag], keys: &[Tag], same_rows: bool) -> PositiveMap {
    let rule = Rule {
        relation: s.cfg.views.relation,
        max_gap: s.cfg.views.max_gap as u32,
    };
    let mut map = match (s.keys.clustered(queries), s.keys.clustered(keys)) {
        (Some(q), Some(k)) => PositiveMap::build(rule, &q, &k, same_rows),
        _ => PositiveMap::build(rule, queries, keys, same_rows),
    };
    if s.cfg.loss.exclude_false_negatives {
        map.exclude_false_negatives(queries, keys);
    }
    map
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
    let sub = restrict(map, &rows);
    Some((rows, sub))
}

/// `map`'s rows `rows`, in that order (the columns stay).
fn restrict(map: &PositiveMap, rows: &[usize]) -> PositiveMap {
    PositiveMap {
        rows: rows.len(),
        cols: map.cols,
        positives: rows.iter().map(|&i| map.positives[i].clone()).collect(),
        excluded: rows.iter().map(|&i| map.excluded[i].clone()).collect(),
    }
}

/// Hands the online probe the detached `h` of the view-0 rows of a group (`tags` its
/// rows), the first group that has any, when it asks.
fn keep_features(s: &mut Step, h: Tensor<2>, tags: &[Tag]) {
    let Some(sink) = s.features.as_mut().filter(|f| f.is_none()) else {
        return;
    };
    let rows: Vec<usize> = (0..tags.len()).filter(|&i| tags[i].view == 0).collect();
    if !rows.is_empty() {
        let kept = rows.iter().map(|&i| tags[i]).collect();
        **sink = Some((select(&h, &rows).detach(), kept));
    }
}

/// The views of `g` as one input tensor on `device`.
pub fn group_input(g: &Group, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(g.data.clone(), g.shape), device)
}

/// The keys of rows `rows` of `g` from key encoder `km`, each row read by its own view's
/// encoder (a per-sense teacher), without gradient.
fn model_keys(km: &Model, g: &Group, rows: &[usize], device: &Device) -> Tensor<2> {
    let views: Vec<u16> = rows.iter().map(|&i| g.tags[i].view).collect();
    km.forward_views(select_rows(g, rows, device), &views)
        .1
        .detach()
}

/// Rows `rows` of a group as an input tensor.
fn select_rows(g: &Group, rows: &[usize], device: &Device) -> Tensor<4> {
    Tensor::from_data(
        TensorData::new(
            rows_data(g, rows),
            [rows.len(), g.shape[1], g.shape[2], g.shape[3]],
        ),
        device,
    )
}

/// The samples `rows` of a group, one after another.
fn rows_data(g: &Group, rows: &[usize]) -> Vec<f32> {
    let len: usize = g.shape[1..].iter().product();
    rows.iter()
        .flat_map(|&r| g.data[r * len..(r + 1) * len].iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A per-sense teacher's key for a row is that row's sense through that sense's
    /// encoder and the head.
    #[test]
    fn a_per_sense_key_encoder_reads_each_row_with_its_senses_encoder() {
        let device = Device::flex();
        let (_, km) = crate::model::tests::per_view_model(&device);
        let g = Group {
            data: (0..4 * 36)
                .map(|i| ((i * 29) % 97) as f32 / 48.0 - 1.0)
                .collect(),
            shape: [4, 1, 6, 6],
            tags: [0u16, 0, 1, 1]
                .iter()
                .enumerate()
                .map(|(i, &v)| Tag::new(i as u32 % 2, 0, v))
                .collect(),
        };
        let got: Vec<f32> = model_keys(&km, &g, &[2, 0, 3], &device)
            .into_data()
            .iter::<f32>()
            .collect();
        let one = |v: usize, r: usize| -> Vec<f32> {
            let x = select_rows(&g, &[r], &device);
            km.for_view(v)
                .forward(x)
                .1
                .into_data()
                .iter::<f32>()
                .collect()
        };
        let want = [one(1, 2), one(0, 0), one(1, 3)].concat();
        assert_eq!(got.len(), want.len());
        assert!(
            got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5),
            "{got:?} vs {want:?}"
        );
        let shared = [one(0, 2), one(0, 0), one(0, 3)].concat();
        assert!(got.iter().zip(&shared).any(|(a, b)| (a - b).abs() > 1e-3));
    }
}
