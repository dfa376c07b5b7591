//! The `[eval]` section: how the representation is evaluated.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which output the evaluation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// The encoder's representation `h`, as methods are compared.
    H,
    /// The head's embedding `z = g(h)`, the space the loss shapes.
    Z,
}

/// Evaluation of the representation `h`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Neighbours of the weighted kNN classifier.
    pub knn_k: usize,
    /// Temperature of the kNN vote weights `exp(sim / t)`.
    pub knn_temperature: f32,
    /// Linear-probe epochs (0 skips the probe).
    pub linear_epochs: usize,
    /// Linear-probe Adam learning rate.
    pub linear_lr: f64,
    /// Linear-probe batch size.
    pub linear_batch: usize,
    /// Also evaluate raw inputs with the same evaluator, as a baseline.
    pub baseline: bool,
    /// Also evaluate a randomly initialised encoder of the same architecture with the same
    /// evaluator, as the second baseline.
    pub random_init: bool,
    /// Online kNN accuracy every N epochs during training (0: only at the end); the best
    /// epoch's checkpoint is kept as `best.ckpt`.
    pub every: usize,
    /// Use only the first N test samples for evaluation (0: all).
    pub test_limit: usize,
    /// The output evaluated by kNN, the linear probe and the report: `h` or `z` (the
    /// heads study compares them).
    pub layer: Layer,
    /// With `layer = "h"`: evaluate instead the output of encoder stage `stage` (1-based,
    /// a conv block or a ResNet stage), averaged over positions; 0: `h` itself.
    pub stage: usize,
    /// Train a linear classifier on the detached `h` of each batch's first view during
    /// training (solo-learn's online classifier) and report its accuracy every epoch:
    /// `online_probe_train_top1` on the training batches, `online_probe_top1` on the test
    /// set. Joint, cross and multi-crop pairings.
    pub online_probe: bool,
    /// SGD learning rate of the online probe (momentum 0.9, no weight decay).
    pub online_probe_lr: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            knn_k: 200,
            knn_temperature: 0.1,
            linear_epochs: 30,
            linear_lr: 1e-3,
            linear_batch: 512,
            baseline: false,
            random_init: false,
            every: 0,
            test_limit: 0,
            layer: Layer::H,
            stage: 0,
            online_probe: false,
            online_probe_lr: 0.1,
        }
    }
}

impl EvalConfig {
    /// Checks the section's own values.
    pub fn validate(&self) -> Result<()> {
        if self.knn_k == 0 {
            return Err(Error::config("eval.knn_k", 0, "at least 1"));
        }
        if self.knn_temperature.is_nan() || self.knn_temperature <= 0.0 {
            return Err(Error::config(
                "eval.knn_temperature",
                self.knn_temperature,
                "a value > 0",
            ));
        }
        if !(self.online_probe_lr > 0.0 && self.online_probe_lr.is_finite()) {
            return Err(Error::config(
                "eval.online_probe_lr",
                self.online_probe_lr,
                "a finite value > 0",
            ));
        }
        if self.linear_batch == 0 {
            return Err(Error::config("eval.linear_batch", 0, "at least 1"));
        }
        if !(self.linear_lr > 0.0 && self.linear_lr.is_finite()) {
            return Err(Error::config(
                "eval.linear_lr",
                self.linear_lr,
                "a finite value > 0",
            ));
        }
        Ok(())
    }
}
