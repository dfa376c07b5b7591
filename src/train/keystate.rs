//! What a method keeps beside the model it trains: the key encoder (momentum, snapshot or
//! teacher), the queue of past keys, the memory bank, NNCLR's support set and the cluster
//! prototypes. One type with one lifecycle: built from the config, updated after each
//! optimiser step and at the end of each epoch, written to and read from checkpoints.

use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;

use super::checkpoint::{bytes_f32, bytes_tags, bytes_u32, f32_bytes, tag_bytes, u32_bytes};
use super::checkpoint::{Checkpoint, Sections};
use super::init;
use crate::config::Config;
use crate::encoder::onnx::OnnxEncoder;
use crate::error::Result;
use crate::keys::{self, Bank, KeyEncoderKind, KeySourceKind, Queue};
use crate::loss::LossKind;
use crate::model::Model;
use crate::pairs::{Relation, Tag};
use crate::views::cluster::{Clustering, Prototypes};
use crate::views::transform::mix;

/// The key side of a run; the default holds nothing (end-to-end, keys from the batch).
#[derive(Default)]
pub struct KeyState {
    /// A key encoder of our own: the momentum copy, last epoch's snapshot or a teacher run.
    pub model: Option<Model>,
    /// A teacher read from an ONNX file (`keys.teacher = "*.onnx"`).
    pub onnx: Option<OnnxEncoder>,
    /// MoCo's FIFO queue of earlier keys.
    pub queue: Option<Queue>,
    /// InstDisc's memory bank, one embedding per training instance.
    pub bank: Option<Bank>,
    /// NNCLR's support set of past keys.
    pub support: Option<Queue>,
    /// Cluster assignments for the `cluster` relation.
    pub prototypes: Option<Prototypes>,
}

impl KeyState {
    /// The key state `cfg` asks for, beside `model` (whose copy a momentum or snapshot
    /// encoder starts as), for inputs of `shape` and training `labels`.
    pub fn build(
        cfg: &Config,
        model: &Model,
        shape: [usize; 3],
        labels: &[u32],
        device: &Device,
    ) -> Result<Self> {
        let z_dim = cfg.head.output_dim(cfg.encoder.output_dim());
        let (key_model, onnx) = match cfg.keys.encoder {
            KeyEncoderKind::Shared => (None, None),
            KeyEncoderKind::Momentum | KeyEncoderKind::Snapshot => (
                Some(keys::frozen_copy(model, Model::new(cfg, shape, device)?)),
                None,
            ),
            KeyEncoderKind::Teacher => match cfg.keys.teacher.as_deref() {
                Some(p) if init::is_onnx(p) => {
                    let t = OnnxEncoder::open(p, shape)?;
                    init::same_width(t.dim, z_dim)?;
                    (None, Some(t))
                }
                _ => (Some(init::load_teacher(cfg, shape, device)?), None),
            },
        };
        let queue = |capacity| Queue {
            dim: z_dim,
            capacity,
            ..Queue::default()
        };
        let bank = || Bank::new(z_dim, labels.to_vec(), cfg.train.seed);
        Ok(Self {
            model: key_model,
            onnx,
            queue: (cfg.keys.source == KeySourceKind::Queue).then(|| queue(cfg.keys.queue_size)),
            bank: (cfg.keys.source == KeySourceKind::Bank).then(bank),
            support: cfg.keys.neighbours.then(|| queue(cfg.keys.support_size)),
            prototypes: prototypes(cfg, bank),
        })
    }

    /// Before step `global` (from 0) of `steps` per epoch: the prototypes re-cluster every
    /// `views.recluster_every` steps from the second epoch on (the bank is filled by then).
    pub fn before_step(&mut self, cfg: &Config, global: usize, steps: usize) {
        if let Some(p) = self.prototypes.as_mut() {
            let every = cfg.views.recluster_every;
            if global >= steps && (global - steps).is_multiple_of(every) {
                p.recluster(mix(cfg.train.seed, global as u64, 0xc1));
            }
        }
    }

    /// After the optimiser step `global` (from 0) of `total`: the momentum encoder moves
    /// towards `model`, `key = m key + (1 - m) model` with `m` on its schedule.
    pub fn after_step(&mut self, cfg: &Config, model: &Model, global: usize, total: usize) {
        if cfg.keys.encoder == KeyEncoderKind::Momentum {
            let m = cfg.keys.momentum_at(global + 1, total);
            if let Some(k) = self.model.take() {
                self.model = Some(keys::ema(k, model, m));
            }
        }
    }

    /// At the end of an epoch: a snapshot encoder becomes a frozen copy of `model`.
    pub fn end_of_epoch(
        &mut self,
        cfg: &Config,
        model: &Model,
        shape: [usize; 3],
        device: &Device,
    ) -> Result<()> {
        if cfg.keys.encoder == KeyEncoderKind::Snapshot {
            let fresh = Model::new(cfg, shape, device)?;
            self.model = Some(keys::frozen_copy(model, fresh));
        }
        Ok(())
    }

    /// `tags` with each instance's cluster, when the run clusters.
    pub fn clustered(&self, tags: &[Tag]) -> Option<Vec<Tag>> {
        let p = self.prototypes.as_ref()?;
        Some(
            tags.iter()
                .map(|t| Tag {
                    cluster: p.assign()[t.instance as usize],
                    ..*t
                })
                .collect(),
        )
    }

    /// The sections a checkpoint holds for this state.
    pub fn write(&self, out: &mut Sections) -> std::result::Result<(), String> {
        if let Some(k) = &self.model {
            let bytes = k.clone().into_record().into_bytes();
            out.push((
                "key_model".into(),
                bytes.map_err(|e| e.to_string())?.to_vec(),
            ));
        }
        if let Some(q) = &self.queue {
            out.push(("queue_z".into(), f32_bytes(&q.z)));
            out.push(("queue_tags".into(), tag_bytes(&q.tags)));
        }
        if let Some(b) = &self.bank {
            out.push(("bank".into(), f32_bytes(&b.z)));
        }
        if let Some(s) = &self.support {
            out.push(("support_z".into(), f32_bytes(&s.z)));
            out.push(("support_tags".into(), tag_bytes(&s.tags)));
        }
        if let Some(p) = &self.prototypes {
            out.push(("prototype_bank".into(), f32_bytes(&p.bank.z)));
            let all = |f: fn(&Clustering) -> &[u32]| {
                p.sets.iter().flat_map(f).copied().collect::<Vec<u32>>()
            };
            out.push(("prototype_assign".into(), u32_bytes(&all(|c| &c.assign))));
            let sizes: Vec<u32> = p.sets.iter().map(|c| c.phi.len() as u32).collect();
            out.push(("prototype_sizes".into(), u32_bytes(&sizes)));
            let centroids: Vec<f32> = p
                .sets
                .iter()
                .flat_map(|c| c.centroids.iter().copied())
                .collect();
            out.push(("prototype_centroids".into(), f32_bytes(&centroids)));
            let phi: Vec<f32> = p.sets.iter().flat_map(|c| c.phi.iter().copied()).collect();
            out.push(("prototype_phi".into(), f32_bytes(&phi)));
        }
        Ok(())
    }

    /// Restores the state from checkpoint `c`; the error says what is missing or wrong.
    pub fn read(&mut self, c: &Checkpoint) -> std::result::Result<(), String> {
        let get = |name: &str| c.section(name).ok_or(format!("has no `{name}` section"));
        if let Some(k) = self.model.take() {
            let record =
                ModuleRecord::from_bytes(Bytes::from_bytes_vec(get("key_model")?.to_vec()))
                    .map_err(|e| e.to_string())?;
            self.model = Some(
                k.try_load_record(record)
                    .map_err(|e| e.to_string())?
                    .no_grad(),
            );
        }
        if let Some(q) = self.queue.as_mut() {
            q.z = bytes_f32(get("queue_z")?);
            q.tags = bytes_tags(get("queue_tags")?).ok_or("corrupt queue tags")?;
        }
        if let Some(b) = self.bank.as_mut() {
            let z = bytes_f32(get("bank")?);
            if z.len() != b.z.len() {
                return Err(format!(
                    "memory bank of {} values, expected {}",
                    z.len(),
                    b.z.len()
                ));
            }
            b.z = z;
        }
        if let Some(s) = self.support.as_mut() {
            s.z = bytes_f32(get("support_z")?);
            s.tags = bytes_tags(get("support_tags")?).ok_or("corrupt support-set tags")?;
        }
        if let Some(p) = self.prototypes.as_mut() {
            let z = bytes_f32(get("prototype_bank")?);
            let assign = bytes_u32(get("prototype_assign")?);
            let n = p.bank.labels.len();
            if z.len() != p.bank.z.len() || assign.len() != n * p.sets.len() {
                return Err("prototype bank of another size".into());
            }
            p.bank.z = z;
            // checkpoints of one clustering written before centroids were kept hold none
            let sizes = c
                .section("prototype_sizes")
                .map(bytes_u32)
                .unwrap_or_default();
            let centroids = c
                .section("prototype_centroids")
                .map(bytes_f32)
                .unwrap_or_default();
            let phi = c
                .section("prototype_phi")
                .map(bytes_f32)
                .unwrap_or_default();
            let dim = p.bank.dim;
            let (mut at, mut total) = (0, 0);
            for (m, set) in p.sets.iter_mut().enumerate() {
                set.assign = assign[m * n..(m + 1) * n].to_vec();
                let k = sizes.get(m).copied().unwrap_or(0) as usize;
                if centroids.len() < (at + k) * dim || phi.len() < total + k {
                    return Err("prototype centroids of another size".into());
                }
                set.centroids = centroids[at * dim..(at + k) * dim].to_vec();
                set.phi = phi[total..total + k].to_vec();
                (at, total) = (at + k, total + k);
            }
        }
        Ok(())
    }
}

/// The clusterings a run keeps: one of `views.clusters` for the `cluster` relation, those
/// of `loss.proto.clusters` for ProtoNCE.
fn prototypes(cfg: &Config, bank: impl Fn() -> Bank) -> Option<Prototypes> {
    let (alpha, t) = (cfg.loss.proto.alpha, cfg.loss.temperature);
    if cfg.views.relation == Relation::Cluster {
        return Some(Prototypes::new(bank(), &[cfg.views.clusters], alpha, t));
    }
    (cfg.loss.kind == LossKind::ProtoNce)
        .then(|| Prototypes::new(bank(), &cfg.loss.proto.clusters, alpha, t))
}
