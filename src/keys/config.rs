//! The key settings of a config (`[keys]`): which encoder computes keys and where they
//! come from; the strategies themselves are in [`crate::keys`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How key embeddings are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KeyEncoderKind {
    /// The query encoder itself, with gradient (end-to-end: SimCLR).
    Shared,
    /// An exponential moving average of the query encoder, no gradient (MoCo, BYOL).
    Momentum,
    /// The query encoder as it was at the end of the previous epoch, frozen.
    Snapshot,
    /// A frozen pre-trained encoder loaded from a checkpoint (distillation, CRD).
    Teacher,
}

/// Where the keys a query is compared against come from, besides the batch's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KeySourceKind {
    /// The batch only.
    Batch,
    /// The batch plus a FIFO queue of earlier keys (MoCo).
    Queue,
    /// A memory bank of one embedding per training instance (InstDisc): the keys are the
    /// bank entries of the batch's instances plus sampled bank entries.
    Bank,
}

/// Which rows of a batch are queries and which are keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Pairing {
    /// Every row is a query and a key, in one forward pass (SimCLR, SupCon).
    Joint,
    /// View 0 rows are queries, view 1 rows keys (MoCo, BYOL, CMC, CRD); `symmetric` adds
    /// the reverse.
    Cross,
    /// Local features (feature-map positions or time steps) are queries, the global
    /// summaries of the samples keys (DIM, DGI): a patch must find its own whole.
    Context,
    /// Ordered windows of a sequence are summarised by the context head; its prediction
    /// of step `t + k` must find that window's embedding (CPC).
    Predictive,
    /// Every crop, global and local, is a query from the online encoder; the keys are the
    /// key encoder's global crops (views `0..views.n`); a query's positives are the other
    /// crops of its image (DINO's multi-crop, one loss over all of them).
    MultiCrop,
}

/// The key strategy of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub encoder: KeyEncoderKind,
    pub source: KeySourceKind,
    pub pairing: Pairing,
    /// With `cross` pairing, also view 1 against view 0; the loss is the mean of both.
    pub symmetric: bool,
    /// Momentum `m` of the key encoder, `k = m k + (1 - m) q`, at the first step.
    pub momentum: f64,
    /// `m` at the last step, reached on a cosine schedule (BYOL); equal to `momentum` keeps
    /// it constant (MoCo).
    pub momentum_end: f64,
    /// Keys held by the queue.
    pub queue_size: usize,
    /// Memory-bank update `b_i = normalise(m b_i + (1 - m) z_i)`: the `m`.
    pub bank_momentum: f64,
    /// Bank entries drawn uniformly as extra negatives per step.
    pub bank_negatives: usize,
    /// The teacher: a run directory or `.ckpt` file of this tool (its architecture comes from
    /// the run's `config.toml` beside the checkpoint), or an `.onnx` file whose first input
    /// takes the normalised views `[n, c, h, w]` and whose first output gives the keys
    /// `[n, dim]` (e.g. exported from PyTorch with `torch.onnx.export`).
    pub teacher: Option<PathBuf>,
    /// With `cross` pairing, each key is replaced by its nearest neighbour (cosine) in a
    /// support set of past keys (NNCLR); the support set holds `support_size` keys.
    pub neighbours: bool,
    /// Keys the NNCLR support set holds (the oldest leave first).
    pub support_size: usize,
    /// With `context` pairing, the local features are the feature map at the end of
    /// encoder stage `local_stage` (1-based), embedded by a head of their own (DIM's local
    /// encoder); 0 takes the last map through the main head (its mean is the summary).
    pub local_stage: usize,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            encoder: KeyEncoderKind::Shared,
            source: KeySourceKind::Batch,
            pairing: Pairing::Joint,
            symmetric: true,
            momentum: 0.99,
            momentum_end: 0.99,
            queue_size: 4096,
            bank_momentum: 0.5,
            bank_negatives: 4096,
            teacher: None,
            neighbours: false,
            support_size: 8192,
            local_stage: 0,
        }
    }
}

impl KeysConfig {
    /// Checks the combination of choices, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        for (key, m) in [
            ("keys.momentum", self.momentum),
            ("keys.momentum_end", self.momentum_end),
            ("keys.bank_momentum", self.bank_momentum),
        ] {
            if !(0.0..=1.0).contains(&m) {
                return Err(Error::config(key, m, "a value in [0, 1]"));
            }
        }
        if !matches!(self.pairing, Pairing::Cross | Pairing::MultiCrop)
            && self.encoder != KeyEncoderKind::Shared
        {
            return Err(Error::config(
                "keys.pairing",
                crate::error::kind_name(&self.pairing),
                format!(
                    "cross or multi-crop: a {:?} key encoder encodes the key view apart from the queries",
                    self.encoder
                )
                .to_lowercase(),
            ));
        }
        if self.source == KeySourceKind::Bank && self.encoder != KeyEncoderKind::Shared {
            return Err(Error::config(
                "keys.encoder",
                format!("{:?}", self.encoder).to_lowercase(),
                "shared: a memory bank's keys are its own entries, no key encoder computes them",
            ));
        }
        if self.neighbours && (self.pairing != Pairing::Cross || self.support_size == 0) {
            return Err(Error::config(
                "keys.neighbours",
                true,
                "nearest-neighbour keys with `keys.pairing = \"cross\"` and support_size >= 1",
            ));
        }
        if self.pairing == Pairing::MultiCrop
            && (self.source != KeySourceKind::Batch || self.neighbours)
        {
            return Err(Error::config(
                "keys.pairing",
                "multi-crop",
                "cross for keys from a queue, a bank or nearest neighbours (multi-crop pairing scores the batch's own global crops)",
            ));
        }
        if self.source == KeySourceKind::Queue && self.queue_size == 0 {
            return Err(Error::config(
                "keys.queue_size",
                0,
                "at least 1 for a queue",
            ));
        }
        if self.source == KeySourceKind::Bank && self.bank_negatives == 0 {
            return Err(Error::config(
                "keys.bank_negatives",
                0,
                "at least 1 for a memory bank",
            ));
        }
        if self.encoder == KeyEncoderKind::Teacher && self.teacher.is_none() {
            return Err(Error::config(
                "keys.teacher",
                "(none)",
                "a run directory, checkpoint or .onnx file for a teacher key encoder",
            ));
        }
        Ok(())
    }

    /// The key encoder's momentum at `step` of `total` (cosine from `momentum` to `momentum_end`).
    pub fn momentum_at(&self, step: usize, total: usize) -> f64 {
        let t = step as f64 / total.max(1) as f64;
        self.momentum_end
            - (self.momentum_end - self.momentum) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
    }
}
