//! The `[optim]` and `[train]` sections: the optimiser with its schedule, and the loop.

use std::path::PathBuf;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, Optimizer};
use serde::{Deserialize, Serialize};

use super::decay::WeightsOnly;
use super::lars::Lars;
use super::sgd::Sgd;
use crate::error::{Error, Result};

/// Which optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OptimKind {
    /// SGD with momentum and L2 weight decay.
    Sgd,
    /// SGD with per-tensor trust ratios (You et al. 2017).
    Lars,
    /// Adam with L2 weight decay.
    Adam,
    /// Adam with decoupled weight decay, `p <- p (1 - lr wd) - lr m / (sqrt(v) + eps)`
    /// (Loshchilov & Hutter 2019), as PyTorch's `torch.optim.AdamW`.
    Adamw,
}

/// The learning rate's course over the planned steps, after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// Half a cosine from the base rate to 0.
    Cosine,
    /// The base rate throughout.
    Constant,
}

/// Arithmetic of the layers' matrix products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// f32 throughout.
    F32,
    /// Convolutions and fully connected layers multiply bf16-rounded operands and sum in
    /// f32 (AVX512-BF16), on the fast kernels; weights, optimiser state, normalisation and
    /// the loss stay f32, as under PyTorch's `torch.autocast(dtype=torch.bfloat16)`. A CPU
    /// without AVX512-BF16 keeps f32 and says so.
    Bf16,
}

/// Optimiser and learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Which optimiser.
    pub kind: OptimKind,
    /// Base learning rate; the rate used is `lr * batch_size / 256` when `scale_lr`.
    pub lr: f64,
    /// Scale `lr` linearly with the batch size (Goyal et al. 2017).
    pub scale_lr: bool,
    /// SGD momentum.
    pub momentum: f64,
    /// Weight decay (L2 for SGD and Adam, decoupled for AdamW) on every parameter, or on
    /// the weights only with `exclude_bias_norm`.
    pub weight_decay: f64,
    /// Leave biases and normalisation parameters out of the weight decay (solo-learn's
    /// `exclude_bias_n_norm_wd`, default off there too); LARS always leaves them out.
    pub exclude_bias_norm: bool,
    /// The learning rate's course over the planned steps.
    pub schedule: Schedule,
    /// Linear warm-up from 0, in epochs.
    pub warmup_epochs: f64,
    /// LARS trust coefficient `eta`: it scales a weight's update `u = g + wd p` by `eta |p| / |u|`.
    pub trust_coefficient: f64,
    /// LARS: learning-rate scale for biases and normalisation parameters, which it neither
    /// decays nor adapts (Barlow Twins: 0.0048 / 0.2 = 0.024).
    pub bias_lr_scale: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            kind: OptimKind::Sgd,
            lr: 0.06,
            scale_lr: true,
            momentum: 0.9,
            weight_decay: 5e-4,
            exclude_bias_norm: false,
            schedule: Schedule::Cosine,
            warmup_epochs: 0.0,
            trust_coefficient: 1e-3,
            bias_lr_scale: 1.0,
        }
    }
}

impl OptimConfig {
    /// Checks the section's own values.
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("optim.trust_coefficient", self.trust_coefficient),
            ("optim.bias_lr_scale", self.bias_lr_scale),
        ] {
            if !(value > 0.0 && value.is_finite()) {
                return Err(Error::config(field, value, "a finite value > 0"));
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::config("optim.lr", self.lr, "a finite value > 0"));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(Error::config(
                "optim.momentum",
                self.momentum,
                "a value in [0, 1)",
            ));
        }
        if self.exclude_bias_norm && self.kind == OptimKind::Lars {
            return Err(Error::config(
                "optim.exclude_bias_norm",
                true,
                "false with optim.kind = \"lars\" (LARS always leaves biases and norms out)",
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(Error::config(
                "optim.weight_decay",
                self.weight_decay,
                "a finite value >= 0",
            ));
        }
        if !(self.warmup_epochs >= 0.0 && self.warmup_epochs.is_finite()) {
            return Err(Error::config(
                "optim.warmup_epochs",
                self.warmup_epochs,
                "a value >= 0",
            ));
        }
        Ok(())
    }

    /// The optimiser this section describes.
    pub fn init(&self) -> ModuleOptimizer {
        let wd = self.weight_decay as f32;
        let split = self.exclude_bias_norm;
        match self.kind {
            OptimKind::Adam => {
                let with = |wd: f32| {
                    AdamConfig::new()
                        .with_epsilon(1e-8)
                        .with_weight_decay((wd > 0.0).then(|| WeightDecayConfig::new(wd)))
                        .build()
                };
                weights_only(split, with(wd), with(0.0))
            }
            OptimKind::Adamw => {
                let with = |wd: f32| {
                    AdamWConfig::new()
                        .with_epsilon(1e-8)
                        .with_weight_decay(wd)
                        .build()
                };
                weights_only(split, with(wd), with(0.0))
            }
            OptimKind::Lars => ModuleOptimizer::from(Lars {
                momentum: self.momentum as f32,
                weight_decay: wd,
                trust_coefficient: self.trust_coefficient as f32,
                bias_lr_scale: self.bias_lr_scale as f32,
            }),
            OptimKind::Sgd => {
                let with = |weight_decay| Sgd {
                    momentum: self.momentum as f32,
                    weight_decay,
                };
                weights_only(split, with(wd), with(0.0))
            }
        }
    }
}

/// `decayed` on every parameter, or with `split` on the weights and `plain` on biases
/// and normalisation parameters.
fn weights_only<O: Optimizer>(split: bool, decayed: O, plain: O) -> ModuleOptimizer {
    match split {
        true => ModuleOptimizer::from(WeightsOnly { decayed, plain }),
        false => ModuleOptimizer::from(decayed),
    }
}

/// The training loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per step, over all ranks (each sample gives `views.n` views).
    pub batch_size: usize,
    /// Seed of everything random: initialisation, data order, augmentations.
    pub seed: u64,
    /// Drop the last incomplete batch of each epoch (with P x K batches, which are always
    /// full, it only sets their number: `n / batch_size`, or one more without dropping).
    pub drop_last: bool,
    /// P x K batches: `classes_per_batch` classes with `batch_size / classes_per_batch`
    /// samples each (0: shuffled batches). See [`crate::data::loader::Batching`].
    pub classes_per_batch: usize,
    /// Compute device (see `backend`).
    pub device: String,
    /// Checkpoints kept besides the best one.
    pub keep_checkpoints: usize,
    /// Also checkpoint every N steps within an epoch (0: only at the end of each epoch).
    pub checkpoint_every: usize,
    /// Start the encoder from another run's (a run directory or a `.ckpt` file of this
    /// tool, whose `[encoder]` must equal this run's); heads start fresh. Read only when a
    /// run starts, not when it resumes.
    pub init: Option<PathBuf>,
    /// Compute threads of each rank (0: the host's cores divided by the ranks on it).
    pub threads: usize,
    /// Batch-norm statistics over the global batch of every rank, forward and backward
    /// (with it N ranks train exactly as one process; without it each rank normalises
    /// its own slice, as SimCLR and MoCo train). No effect in one process.
    pub sync_bn: bool,
    /// Arithmetic of the layers' products.
    pub precision: Precision,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 256,
            seed: 0,
            drop_last: true,
            classes_per_batch: 0,
            device: "flex".into(),
            keep_checkpoints: 2,
            checkpoint_every: 0,
            init: None,
            threads: 0,
            sync_bn: false,
            precision: Precision::F32,
        }
    }
}

impl TrainConfig {
    /// Checks the section's own values.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::config("train.epochs", 0, "at least 1"));
        }
        if self.batch_size < 2 {
            return Err(Error::config(
                "train.batch_size",
                self.batch_size,
                "at least 2",
            ));
        }
        let p = self.classes_per_batch;
        if p == 1 || (p > 0 && !self.batch_size.is_multiple_of(p)) {
            return Err(Error::config(
                "train.classes_per_batch",
                p,
                format!(
                    "0 (shuffled batches), or at least 2 and a divisor of train.batch_size = {}",
                    self.batch_size
                ),
            ));
        }
        crate::backend::device(&self.device)?;
        Ok(())
    }
}
