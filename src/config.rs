//! The run configuration: a TOML file, `--set a.b=c` overrides, and validation that
//! names the key, the value and what is allowed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::encoder::EncoderConfig;
use crate::error::{Error, Result};
use crate::head::HeadConfig;
use crate::keys::config::{KeyEncoderKind, KeySourceKind, KeysConfig, Pairing};
use crate::loss::LossConfig;
use crate::pairs::Relation;
use crate::views::augment::AugmentConfig;

/// A whole run: the four parts of a contrastive method plus data, optimiser and training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data: DataConfig,
    pub views: ViewsConfig,
    pub encoder: EncoderConfig,
    pub head: HeadConfig,
    pub keys: KeysConfig,
    pub loss: LossConfig,
    pub optim: OptimConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
}

/// One number for every channel, or one per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerChannel {
    One(f32),
    Each(Vec<f32>),
}

impl PerChannel {
    /// The value for each of `channels` channels.
    pub fn expand(&self, key: &str, channels: usize) -> Result<Vec<f32>> {
        match self {
            PerChannel::One(v) => Ok(vec![*v; channels]),
            PerChannel::Each(v) if v.len() == channels => Ok(v.clone()),
            PerChannel::Each(v) => Err(Error::config(
                key,
                format!("{v:?}"),
                format!("one number or {channels} (one per channel)"),
            )),
        }
    }
}

/// Which data, where, and how it is normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Dataset name (see `contrastive data fetch --help`).
    pub dataset: String,
    /// Folder that holds its files.
    pub dir: PathBuf,
    /// Per-channel mean subtracted from pixel values in [0, 1].
    pub mean: PerChannel,
    /// Per-channel standard deviation that pixel values are divided by.
    pub std: PerChannel,
    /// Use only the first N training images (0 = all).
    pub limit: usize,
    /// Fetch the dataset into `dir` when its files are missing.
    pub fetch: bool,
    /// Largest image, in pixels (width x height), an image folder may hold; larger ones
    /// are refused before they are decoded.
    pub max_pixels: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: "fashion-mnist".into(),
            dir: PathBuf::from("data/fashion-mnist"),
            mean: PerChannel::One(0.2860),
            std: PerChannel::One(0.3530),
            limit: 0,
            fetch: true,
            max_pixels: crate::data::MAX_PIXELS,
        }
    }
}

/// The similarity distribution: how views are made and which pairs are positive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ViewsConfig {
    /// `transform`: augmented views of each instance; `modalities`: channel groups as
    /// senses (CMC); `windows`: windows of a time series (sequential coherence, CPC).
    pub kind: String,
    /// Which (query, key) pairs are positives.
    pub relation: Relation,
    /// Views per instance (close windows per sequence for `windows`).
    pub n: usize,
    /// `modalities`: the channels of each sense, e.g. `[[0, 1, 2], [3, 4, 5]]`.
    pub modalities: Vec<Vec<usize>>,
    /// `windows`: window length in time steps.
    pub window: usize,
    /// `windows`: close windows start at most this many steps apart (the temporal
    /// relation's positive radius).
    pub max_gap: usize,
    /// `windows`: extra windows per sequence farther than `max_gap` from the close ones.
    pub distant: usize,
    /// `windows`: when > 0, `n` windows at this stride, in order (CPC).
    pub stride: usize,
    /// `cluster` relation: number of prototypes (k-means centroids).
    pub clusters: usize,
    /// `cluster` relation: steps between re-assignments, from the end of the first epoch.
    pub recluster_every: usize,
    /// Augmentation of every view (unless `per_view` is given).
    pub augment: AugmentConfig,
    /// One augmentation per view, for asymmetric views.
    pub per_view: Vec<AugmentConfig>,
    /// Extra small crops per instance (SwAV's multi-crop): `augment` with `local_scale`
    /// and `local_size`. Their tags have view indices from the number of global views on,
    /// and they form their own group when their size differs.
    pub local_crops: usize,
    /// Side of the local crops in pixels (SwAV: 96 for 224-pixel images).
    pub local_size: usize,
    /// Area fraction range of the local crops.
    pub local_scale: [f32; 2],
}

impl Default for ViewsConfig {
    fn default() -> Self {
        Self {
            kind: "transform".into(),
            relation: Relation::Instance,
            n: 2,
            modalities: Vec::new(),
            window: 0,
            max_gap: 0,
            distant: 0,
            stride: 0,
            clusters: 10,
            recluster_every: 100,
            augment: AugmentConfig::default(),
            per_view: Vec::new(),
            local_crops: 0,
            local_size: 0,
            local_scale: [0.05, 0.4],
        }
    }
}

impl ViewsConfig {
    /// The encoder's input shape for samples of `shape`: one sense's channels for
    /// multisensory views, the sample's shape otherwise.
    pub fn model_input(&self, shape: [usize; 3]) -> [usize; 3] {
        match self.modalities.first() {
            Some(g) if self.kind == "modalities" => [g.len(), shape[1], shape[2]],
            _ => shape,
        }
    }

    /// The augmentation of each view: the global views, then the local crops.
    pub fn augments(&self) -> Vec<AugmentConfig> {
        let mut views = if self.per_view.is_empty() {
            vec![self.augment.clone(); self.n]
        } else {
            self.per_view.clone()
        };
        let local = AugmentConfig {
            size: self.local_size,
            crop_scale: self.local_scale,
            ..self.augment.clone()
        };
        views.extend(std::iter::repeat_n(local, self.local_crops));
        views
    }

    /// Checks the multi-crop settings; local crops need every view in one joint forward
    /// pass (cross pairing reads the first group only) and an encoder that pools over space.
    fn validate_local(&self, pairing: Pairing, encoder: &str) -> Result<()> {
        if self.local_crops == 0 {
            return Ok(());
        }
        if pairing != Pairing::Joint {
            return Err(Error::config(
                "views.local_crops",
                self.local_crops,
                "0 unless keys.pairing = \"joint\"",
            ));
        }
        if encoder == "mlp" {
            return Err(Error::config(
                "views.local_crops",
                self.local_crops,
                "0 with encoder.kind = \"mlp\" (fixed input size)",
            ));
        }
        if self.local_size == 0 {
            return Err(Error::config(
                "views.local_size",
                0,
                "a side >= 1 when views.local_crops > 0",
            ));
        }
        let [s0, s1] = self.local_scale;
        if !(0.0 < s0 && s0 <= s1 && s1 <= 1.0) {
            return Err(Error::config(
                "views.local_scale",
                format!("{:?}", self.local_scale),
                "0 < min <= max <= 1",
            ));
        }
        Ok(())
    }
}

/// Optimiser and learning-rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// `sgd`, `lars` (SGD with per-tensor trust ratios) or `adam`.
    pub kind: String,
    /// Base learning rate; the rate used is `lr * batch_size / 256` when `scale_lr`.
    pub lr: f64,
    /// Scale `lr` linearly with the batch size (Goyal et al. 2017).
    pub scale_lr: bool,
    /// SGD momentum.
    pub momentum: f64,
    /// L2 weight decay on every parameter.
    pub weight_decay: f64,
    /// `cosine` (decay to 0 over the planned steps) or `constant`.
    pub schedule: String,
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
            kind: "sgd".into(),
            lr: 0.06,
            scale_lr: true,
            momentum: 0.9,
            weight_decay: 5e-4,
            schedule: "cosine".into(),
            warmup_epochs: 0.0,
            trust_coefficient: 1e-3,
            bias_lr_scale: 1.0,
        }
    }
}

/// The training loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
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
        }
    }
}

/// Evaluation of the representation `h`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        }
    }
}

impl Config {
    /// Reads `path` and applies `overrides` (`a.b=c`, the value in TOML syntax or a bare
    /// string), then validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path, overrides)
    }

    /// Parses TOML `text` (named `path` in errors) with `overrides`.
    pub fn parse(text: &str, path: &Path, overrides: &[String]) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| Error::ConfigFile {
            path: path.to_path_buf(),
            msg: one_line(&e.to_string()),
        })?;
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let cfg: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                Error::ConfigFile {
                    path: path.to_path_buf(),
                    msg: format!("key `{key}`: {}", one_line(&e.inner().to_string())),
                }
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the similarity distribution's own values and its fit with the pairing.
    fn validate_views(&self) -> Result<()> {
        let v = &self.views;
        // Each sense's encoder must see a loss: joint pairing reads every view, cross
        // pairing without a bank only views 0 and 1, context pairing only view 0's encoder.
        let read = match self.keys.pairing {
            Pairing::Joint => true,
            Pairing::Cross => v.modalities.len() <= 2 || self.keys.source == KeySourceKind::Bank,
            _ => false,
        };
        if self.encoder.per_view
            && (v.kind != "modalities" || self.keys.encoder != KeyEncoderKind::Shared || !read)
        {
            return Err(Error::config(
                "encoder.per_view",
                true,
                "false unless views.kind = \"modalities\", keys.encoder = \"shared\" and every sense reaches the loss (joint pairing, or cross pairing of two senses)",
            ));
        }
        match v.kind.as_str() {
            "transform" => {}
            "modalities" => {
                let width = v.modalities.first().map_or(0, Vec::len);
                if v.modalities.len() < 2
                    || width == 0
                    || v.modalities.iter().any(|g| g.len() != width)
                {
                    return Err(Error::config(
                        "views.modalities",
                        format!("{:?}", v.modalities),
                        "two or more channel groups of one equal, non-zero size",
                    ));
                }
            }
            "windows" => {
                if v.window == 0 {
                    return Err(Error::config("views.window", 0, "a window length >= 1"));
                }
            }
            other => {
                return Err(Error::config(
                    "views.kind",
                    other,
                    "transform, modalities, windows",
                ))
            }
        }
        if v.relation == Relation::Cluster && (v.clusters < 2 || v.recluster_every == 0) {
            return Err(Error::config(
                "views.clusters",
                format!("{} (recluster_every {})", v.clusters, v.recluster_every),
                "clusters >= 2 and recluster_every >= 1",
            ));
        }
        if self.keys.pairing == Pairing::Predictive
            && (v.kind != "windows" || v.stride == 0 || v.n < 2 || self.head.context.kind == "none")
        {
            return Err(Error::config(
                "keys.pairing",
                "predictive",
                "views.kind = \"windows\" with stride >= 1, n >= 2 and a head.context",
            ));
        }
        if self.keys.pairing == Pairing::Context && self.encoder.kind == "mlp" {
            return Err(Error::config(
                "keys.pairing",
                "context",
                "an encoder with a feature map (convnet, conv1d, resnet*)",
            ));
        }
        let local = self.keys.local_stage;
        if local > 0 {
            if self.keys.pairing != Pairing::Context || self.encoder.stage_output(local).is_none() {
                return Err(Error::config(
                    "keys.local_stage",
                    local,
                    "0, or with keys.pairing = \"context\" a stage of the encoder (1-based)",
                ));
            }
            if self.head.kind == "identity" {
                return Err(Error::config(
                    "head.kind",
                    "identity",
                    "linear or mlp: keys.local_stage embeds the local features by their own head",
                ));
            }
        }
        Ok(())
    }

    /// Checks every value that serde's types alone do not.
    pub fn validate(&self) -> Result<()> {
        self.validate_views()?;
        let min_views = if self.keys.source == KeySourceKind::Bank
            || self.keys.pairing == Pairing::Context
            || self.views.kind != "transform"
        {
            1
        } else {
            2
        };
        if self.views.n < min_views && self.views.per_view.is_empty() {
            return Err(Error::config("views.n", self.views.n, "at least 2 views"));
        }
        if !self.views.per_view.is_empty() && self.views.per_view.len() < 2 {
            return Err(Error::config(
                "views.per_view",
                self.views.per_view.len(),
                "at least 2 views",
            ));
        }
        for (i, a) in std::iter::once(&self.views.augment)
            .chain(&self.views.per_view)
            .enumerate()
        {
            let key = if i == 0 {
                "views.augment".to_string()
            } else {
                format!("views.per_view[{}]", i - 1)
            };
            a.validate(&key)?;
        }
        self.views
            .validate_local(self.keys.pairing, &self.encoder.kind)?;
        self.encoder.validate()?;
        self.keys.validate()?;
        self.head.validate()?;
        self.loss.validate()?;
        if !["sgd", "lars", "adam"].contains(&self.optim.kind.as_str()) {
            return Err(Error::config(
                "optim.kind",
                &self.optim.kind,
                "sgd, lars, adam",
            ));
        }
        for (field, value) in [
            ("optim.trust_coefficient", self.optim.trust_coefficient),
            ("optim.bias_lr_scale", self.optim.bias_lr_scale),
        ] {
            if !(value > 0.0 && value.is_finite()) {
                return Err(Error::config(field, value, "a finite value > 0"));
            }
        }
        if !(self.optim.lr > 0.0 && self.optim.lr.is_finite()) {
            return Err(Error::config(
                "optim.lr",
                self.optim.lr,
                "a finite value > 0",
            ));
        }
        if !(0.0..1.0).contains(&self.optim.momentum) {
            return Err(Error::config(
                "optim.momentum",
                self.optim.momentum,
                "a value in [0, 1)",
            ));
        }
        if !(self.optim.weight_decay >= 0.0 && self.optim.weight_decay.is_finite()) {
            return Err(Error::config(
                "optim.weight_decay",
                self.optim.weight_decay,
                "a finite value >= 0",
            ));
        }
        if !["cosine", "constant"].contains(&self.optim.schedule.as_str()) {
            return Err(Error::config(
                "optim.schedule",
                &self.optim.schedule,
                "cosine, constant",
            ));
        }
        if !(self.optim.warmup_epochs >= 0.0 && self.optim.warmup_epochs.is_finite()) {
            return Err(Error::config(
                "optim.warmup_epochs",
                self.optim.warmup_epochs,
                "a value >= 0",
            ));
        }
        if self.train.epochs == 0 {
            return Err(Error::config("train.epochs", 0, "at least 1"));
        }
        if self.train.batch_size < 2 {
            return Err(Error::config(
                "train.batch_size",
                self.train.batch_size,
                "at least 2",
            ));
        }
        let p = self.train.classes_per_batch;
        if p == 1 || (p > 0 && !self.train.batch_size.is_multiple_of(p)) {
            return Err(Error::config(
                "train.classes_per_batch",
                p,
                format!(
                    "0 (shuffled batches), or at least 2 and a divisor of train.batch_size = {}",
                    self.train.batch_size
                ),
            ));
        }
        if p > 0 {
            // These key states expect every sample once per epoch, which P x K batches
            // do not promise.
            let once = [
                (
                    self.keys.source == KeySourceKind::Bank,
                    "keys.source = \"bank\"",
                ),
                (
                    self.views.relation == Relation::Cluster,
                    "views.relation = \"cluster\"",
                ),
                (self.keys.neighbours, "keys.neighbours = true"),
            ];
            if let Some((_, what)) = once.iter().find(|(on, _)| *on) {
                return Err(Error::config(
                    "train.classes_per_batch",
                    p,
                    format!("0 with {what}, whose state needs every sample once per epoch"),
                ));
            }
        }
        crate::backend::device(&self.train.device)?;
        if self.eval.knn_k == 0 {
            return Err(Error::config("eval.knn_k", 0, "at least 1"));
        }
        if self.eval.knn_temperature.is_nan() || self.eval.knn_temperature <= 0.0 {
            return Err(Error::config(
                "eval.knn_temperature",
                self.eval.knn_temperature,
                "a value > 0",
            ));
        }
        if self.eval.linear_batch == 0 {
            return Err(Error::config("eval.linear_batch", 0, "at least 1"));
        }
        if !(self.eval.linear_lr > 0.0 && self.eval.linear_lr.is_finite()) {
            return Err(Error::config(
                "eval.linear_lr",
                self.eval.linear_lr,
                "a finite value > 0",
            ));
        }
        let finite = match &self.data.mean {
            PerChannel::One(m) => m.is_finite(),
            PerChannel::Each(m) => m.iter().all(|m| m.is_finite()),
        };
        if !finite {
            return Err(Error::config(
                "data.mean",
                format!("{:?}", self.data.mean),
                "finite values",
            ));
        }
        let positive = |s: &f32| s.is_finite() && *s > 0.0;
        let ok = match &self.data.std {
            PerChannel::One(s) => positive(s),
            PerChannel::Each(s) => s.iter().all(positive),
        };
        if !ok {
            return Err(Error::config(
                "data.std",
                format!("{:?}", self.data.std),
                "finite values > 0",
            ));
        }
        Ok(())
    }

    /// The learning rate at the start of the schedule.
    pub fn base_lr(&self) -> f64 {
        if self.optim.scale_lr {
            self.optim.lr * self.train.batch_size as f64 / 256.0
        } else {
            self.optim.lr
        }
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# could not serialise: {e}\n"))
    }
}

/// The most parts a `--set` key may have: the deepest key of a config has four, and each
/// part nests a table (60,000 of them overflowed the stack when serialised).
const MAX_KEY_PARTS: usize = 8;

/// The first key (dotted, in sorted order) whose value differs between `a` and `b`, with
/// both values as TOML (`(absent)` where a table lacks the key).
pub fn first_difference(a: &toml::Table, b: &toml::Table) -> Option<(String, String, String)> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let show = |v: Option<&toml::Value>| v.map_or("(absent)".to_string(), |v| v.to_string());
    for k in keys {
        let (x, y) = (a.get(k), b.get(k));
        if x == y {
            continue;
        }
        if let (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) = (x, y) {
            if let Some((sub, old, new)) = first_difference(x, y) {
                return Some((format!("{k}.{sub}"), old, new));
            }
            continue;
        }
        return Some((k.clone(), show(x), show(y)));
    }
    None
}

/// Sets `a.b.c=value` in `table`; the value is parsed as TOML, else taken as a string.
fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let Some((key, raw)) = assignment.split_once('=') else {
        return Err(Error::config(
            "--set",
            assignment,
            "key=value, e.g. train.epochs=3",
        ));
    };
    let key = key.trim();
    let raw = raw.trim();
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) || parts.len() > MAX_KEY_PARTS {
        return Err(Error::config(
            "--set",
            one_line(&assignment.chars().take(80).collect::<String>()),
            format!("a dotted key such as train.epochs, of at most {MAX_KEY_PARTS} parts"),
        ));
    }
    let mut t = table;
    for p in &parts[..parts.len() - 1] {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| Error::config(key, raw, format!("`{p}` to be a table")))?;
    }
    t.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_difference_is_named_with_both_values() {
        let a: toml::Table = "[optim]\nlr = 0.06\nkind = \"sgd\"\n[train]\nseed = 0\n"
            .parse()
            .unwrap();
        let b: toml::Table = "[optim]\nlr = 0.1\nkind = \"sgd\"\n[train]\nseed = 1\n"
            .parse()
            .unwrap();
        assert_eq!(
            first_difference(&a, &b),
            Some(("optim.lr".into(), "0.06".into(), "0.1".into()))
        );
        assert_eq!(first_difference(&a, &a), None);
    }

    /// Issue 18, item 12: values that were accepted and gave silently wrong results.
    #[test]
    fn non_finite_means_and_probe_rates_are_refused() {
        for (set, key) in [
            ("data.mean=nan", "data.mean"),
            ("data.mean=[0.1, inf, 0.2]", "data.mean"),
            ("eval.linear_lr=0", "eval.linear_lr"),
            ("eval.linear_lr=nan", "eval.linear_lr"),
            ("eval.linear_lr=-1", "eval.linear_lr"),
        ] {
            let e = Config::parse("", Path::new("x.toml"), &[set.into()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{set}: {e}");
        }
    }

    /// Issue 18, item 10: a key of 60,000 dotted parts overflowed the stack.
    #[test]
    fn a_key_of_too_many_parts_is_refused() {
        let key = vec!["a"; 60_000].join(".");
        let e = Config::parse("", Path::new("x.toml"), &[format!("{key}=1")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 8 parts") && e.len() < 300, "{e}");
    }

    #[test]
    fn override_sets_nested_and_typed_values() {
        let c = Config::parse(
            "",
            Path::new("x.toml"),
            &["train.epochs=3".into(), "data.dataset=mnist".into()],
        )
        .unwrap();
        assert_eq!(c.train.epochs, 3);
        assert_eq!(c.data.dataset, "mnist");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::parse("[train]\nepoch = 3\n", Path::new("x.toml"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.toml") && e.contains("train.epoch") && e.contains("epochs"),
            "{e}"
        );
    }

    #[test]
    fn invalid_value_names_key_value_and_range() {
        let e = Config::parse("", Path::new("x.toml"), &["loss.temperature=0".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config key `loss.temperature` = 0: expected a finite value > 0"
        );
    }

    #[test]
    fn lars_fields_are_checked() {
        let err = |set: &str| {
            Config::parse("", Path::new("x.toml"), &[set.into()])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("optim.kind=lamb"),
            "config key `optim.kind` = lamb: expected sgd, lars, adam"
        );
        assert_eq!(
            err("optim.trust_coefficient=0"),
            "config key `optim.trust_coefficient` = 0: expected a finite value > 0"
        );
        assert_eq!(
            err("optim.bias_lr_scale=-1"),
            "config key `optim.bias_lr_scale` = -1: expected a finite value > 0"
        );
        let sets = ["optim.kind=lars", "optim.bias_lr_scale=0.024"].map(String::from);
        assert!(Config::parse("", Path::new("x.toml"), &sets).is_ok());
    }

    #[test]
    fn local_stage_needs_context_pairing_a_stage_and_a_head() {
        let err = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            Config::parse("[views]\nn = 1\n", Path::new("x"), &sets)
                .unwrap_err()
                .to_string()
        };
        let stage = "config key `keys.local_stage` =";
        assert!(err(&["keys.local_stage=2"]).starts_with(stage));
        let context = "keys.pairing=context";
        assert!(err(&[context, "keys.local_stage=5"]).starts_with(stage));
        assert!(err(&[context, "keys.local_stage=2", "head.kind=identity"])
            .starts_with("config key `head.kind` = identity"));
        let ok = ["keys.pairing=context", "keys.local_stage=4"].map(String::from);
        assert!(Config::parse("[views]\nn = 1\n", Path::new("x"), &ok).is_ok());
    }

    #[test]
    fn classes_per_batch_divides_the_batch_and_needs_no_once_per_epoch_state() {
        let parse = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            Config::parse("[train]\nbatch_size = 32\n", Path::new("x"), &sets)
        };
        let err = |sets: &[&str]| parse(sets).unwrap_err().to_string();
        let key = "config key `train.classes_per_batch` =";
        for p in ["1", "3"] {
            let e = err(&[&format!("train.classes_per_batch={p}")]);
            assert!(e.starts_with(&format!("{key} {p}: expected 0 (shuffled batches), or at least 2 and a divisor of train.batch_size = 32")), "{e}");
        }
        for (sets, what) in [
            (&["keys.source=bank"][..], "keys.source = \"bank\""),
            (&["views.relation=cluster"], "views.relation = \"cluster\""),
            (
                &["keys.neighbours=true", "keys.pairing=cross"],
                "keys.neighbours = true",
            ),
        ] {
            let e = err(&[&["train.classes_per_batch=4"], sets].concat());
            assert!(
                e.starts_with(&format!("{key} 4: expected 0 with {what}")),
                "{e}"
            );
        }
        assert!(parse(&["train.classes_per_batch=4"]).is_ok());
    }

    #[test]
    fn per_view_encoders_need_modalities_and_a_shared_key_encoder() {
        let modal = "[views]\nkind = \"modalities\"\nmodalities = [[0], [1]]\n[keys]\npairing = \"cross\"\n";
        let parse = |text: &str, sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            Config::parse(text, Path::new("x"), &sets)
        };
        let want = "config key `encoder.per_view` = true: expected false unless views.kind = \"modalities\", keys.encoder = \"shared\" and every sense reaches the loss (joint pairing, or cross pairing of two senses)";
        let e = parse("", &["encoder.per_view=true"])
            .unwrap_err()
            .to_string();
        assert_eq!(e, want);
        let e = parse(modal, &["encoder.per_view=true", "keys.encoder=momentum"])
            .unwrap_err()
            .to_string();
        assert_eq!(e, want);
        let three = ["encoder.per_view=true", "views.modalities=[[0], [1], [0]]"];
        assert_eq!(parse(modal, &three).unwrap_err().to_string(), want);
        let e = parse(modal, &["encoder.per_view=true", "keys.pairing=context"]).unwrap_err();
        assert_eq!(e.to_string(), want);
        assert!(parse(modal, &[&three[..], &["keys.pairing=joint"]].concat()).is_ok());
        assert!(parse(modal, &["encoder.per_view=true"]).is_ok());
    }

    #[test]
    fn scalar_or_list_per_channel() {
        let c = Config::parse("[data]\nmean = [0.1, 0.2, 0.3]\n", Path::new("x"), &[]).unwrap();
        assert_eq!(
            c.data.mean.expand("data.mean", 3).unwrap(),
            vec![0.1, 0.2, 0.3]
        );
        assert!(c.data.mean.expand("data.mean", 1).is_err());
    }
}
