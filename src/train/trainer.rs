//! The one training loop every method runs through, with exact resume.
//!
//! All randomness is counter-based: data order from `(seed, epoch)`, views from `(seed,
//! epoch, step)`, bank negatives from `(seed, step)`. A checkpoint therefore only needs
//! the position, the model, the optimiser and the key state to continue exactly.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::checkpoint::Checkpoint;
use super::lars::Lars;
use super::metrics::MetricsLog;
use super::pairing;
use super::rundir::{self, atomic_write, list_checkpoints, prune, Fresh, RunLock};
use super::saved::SavedRun;
use super::schedule::learning_rate;
use super::sgd::Sgd;
use crate::config::Config;
use crate::data::loader::{steps_per_epoch, Batching, EpochLoader};
use crate::data::{self, Dataset, Split};
use crate::encoder::onnx::OnnxEncoder;
use crate::error::{Error, Result};
use crate::eval::geometry::Geometry;
use crate::eval::knn::Features;
use crate::eval::{self, Evaluation, Scores};
use crate::keys::{self, Bank, KeyEncoderKind, KeySourceKind, Pairing, Queue};
use crate::loss::mutual_info::info_nce_bound;
use crate::loss::{LossConfig, LossState};
use crate::model::{select, Model};
use crate::views::cluster::Prototypes;
use crate::views::modalities::ModalityViews;
use crate::views::sequence::WindowViews;
use crate::views::transform::{mix, TransformViews};
use crate::views::{Group, PositiveMap, Relation, Rule, Sampler, Tag, ViewBatch};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar (epoch, step, loss, images/s, ETA) on stderr.
    Bar,
    /// One line per epoch on stderr.
    Lines,
    /// Nothing.
    Quiet,
}

impl Progress {
    /// A bar when stderr is a terminal, else lines.
    pub fn auto() -> Self {
        if std::io::stderr().is_terminal() {
            Progress::Bar
        } else {
            Progress::Lines
        }
    }
}

/// Options of a run that are not part of the method.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub progress: Progress,
    /// A fresh run empties an existing run directory instead of refusing it.
    pub overwrite: bool,
    /// Set to a signal's number (by the CLI's handler) to stop: the run finishes its step,
    /// writes a checkpoint there and returns [`Error::Interrupted`].
    pub stop: Option<Arc<AtomicUsize>>,
}

impl TrainOptions {
    /// Options with `progress`, no overwrite and no stop flag.
    pub fn new(progress: Progress) -> Self {
        Self {
            progress,
            overwrite: false,
            stop: None,
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub dir: PathBuf,
    pub scores: Scores,
    pub baseline: Option<Scores>,
    /// The same evaluation of an untrained encoder (`eval.random_init`).
    pub random_init: Option<Scores>,
    /// Training images (instances, not views) per second over this process's steps.
    pub images_per_s: f64,
    /// Why the classifiers did not run, when they did not (unlabelled data).
    pub unlabelled: Option<String>,
    /// The loss of the last step this process ran (`None` when it ran none: a resumed
    /// run that had already finished).
    pub final_loss: Option<f32>,
}

/// Trains `cfg` into run directory `dir` from scratch, evaluates, and returns the scores.
pub fn run(cfg: &Config, dir: &Path, opts: &TrainOptions) -> Result<Outcome> {
    Trainer::new(cfg.clone(), dir, opts.clone())?.run()
}

/// Continues the run in `dir` from its last readable checkpoint.
pub fn resume(dir: &Path, opts: &TrainOptions) -> Result<Outcome> {
    Trainer::resume(dir, opts.clone())?.run()
}

/// Where the loop stands: the next step to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    epoch: usize,
    step: usize,
}

/// A training run in progress.
pub struct Trainer {
    cfg: Config,
    dir: PathBuf,
    opts: TrainOptions,
    device: Device,
    ad: Device,
    ds: Dataset,
    train: Arc<Split>,
    mean: Vec<f32>,
    std: Vec<f32>,
    sampler: Arc<dyn Sampler>,
    /// How the epoch's samples are cut into batches.
    batching: Batching,
    model: Model,
    optim: ModuleOptimizer,
    key_model: Option<Model>,
    /// A teacher read from an ONNX file (`keys.teacher = "*.onnx"`).
    onnx_teacher: Option<OnnxEncoder>,
    queue: Option<Queue>,
    bank: Option<Bank>,
    /// NNCLR's support set of past keys.
    support: Option<Queue>,
    /// Cluster assignments for the `cluster` relation.
    prototypes: Option<Prototypes>,
    pos: Position,
    /// The loss as it applies in the current epoch ([`LossConfig::for_epoch`]).
    loss: LossConfig,
    /// Values the loss holds across steps (NCE's first-batch `Z`).
    loss_state: LossState,
    log: MetricsLog,
    metrics_lines: usize,
    best_knn: Option<f64>,
    steps: usize,
    /// Sums over the current epoch's steps so far (loss, InfoNCE bound) and their count,
    /// kept in checkpoints so that a resumed epoch reports the same means.
    epoch_sums: (f64, f64, usize),
    /// The run directory's lock, held for the trainer's life.
    _lock: RunLock,
}

impl Trainer {
    /// A fresh run of `cfg` in `dir`: created, or an empty directory (a directory holding
    /// anything is refused unless `opts.overwrite` and it holds a run). A start that fails
    /// leaves no directory it created behind.
    pub fn new(cfg: Config, dir: &Path, opts: TrainOptions) -> Result<Self> {
        if let (Some(init), Ok(out)) = (&cfg.train.init, dir.canonicalize()) {
            if init.canonicalize().is_ok_and(|i| i.starts_with(&out)) {
                return Err(Error::config(
                    "train.init",
                    init.display(),
                    "a run outside this run's output directory, which a fresh run overwrites",
                ));
            }
        }
        let (lock, how) = rundir::prepare_fresh(dir, opts.overwrite)?;
        let started = Self::start_fresh(cfg, dir, opts, lock);
        if started.is_err() {
            match how {
                Fresh::Created => {
                    let _ = std::fs::remove_dir_all(dir);
                }
                Fresh::Reused => {
                    for made in ["config.toml", "metrics.jsonl", "checkpoints"] {
                        let p = dir.join(made);
                        let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
                    }
                }
            }
        }
        started
    }

    /// Writes the config first: from then on the directory is a run that `--resume`
    /// continues (from its beginning while it has no checkpoint), whenever it is stopped.
    fn start_fresh(cfg: Config, dir: &Path, opts: TrainOptions, lock: RunLock) -> Result<Self> {
        atomic_write(&dir.join("config.toml"), cfg.to_toml().as_bytes())?;
        let ckpt_dir = dir.join("checkpoints");
        std::fs::create_dir_all(&ckpt_dir).map_err(|e| Error::io(&ckpt_dir, e))?;
        atomic_write(&dir.join("metrics.jsonl"), b"")?;
        Self::build(cfg, dir, opts, true, lock)
    }

    /// The run in `dir`, restored from its newest checkpoint that reads back intact (a
    /// corrupt or truncated one is reported and skipped). A run with no checkpoint yet
    /// (stopped before its first) starts again from its beginning, which is exactly where
    /// it stood. The checkpoint must have been written under the config in `dir`.
    pub fn resume(dir: &Path, opts: TrainOptions) -> Result<Self> {
        if !dir.join("config.toml").is_file() {
            return Err(Error::RunDir {
                path: dir.to_path_buf(),
                msg: "holds no run to resume (no config.toml)".into(),
            });
        }
        let lock = RunLock::acquire(dir)?;
        rundir::remove_stale_tmp(dir)?;
        let ckpt_dir = dir.join("checkpoints");
        rundir::remove_stale_tmp(&ckpt_dir)?;
        let cfg = Config::load(&dir.join("config.toml"), &[])?;
        let mut ckpts = list_checkpoints(&ckpt_dir)?;
        ckpts.reverse();
        // with no checkpoint the run starts over as a fresh one (its train.init too)
        let mut t = Self::build(cfg, dir, opts, ckpts.is_empty(), lock)?;
        if ckpts.is_empty() {
            t.say("no checkpoint yet: starting the run from its beginning");
            atomic_write(&dir.join("metrics.jsonl"), b"")?;
            t.log = MetricsLog::open(&dir.join("metrics.jsonl"))?;
            return Ok(t);
        }
        let mut reasons = Vec::new();
        for path in ckpts {
            let c = match Checkpoint::load(&path) {
                Ok(c) => c,
                Err(e) => {
                    t.say(&format!("skipping {e}"));
                    reasons.push(e.to_string());
                    continue;
                }
            };
            same_config(&c, &t.cfg, &path, dir)?;
            match t.restore(&c, &path) {
                Ok(()) => {
                    t.say(&format!(
                        "resuming from {} (epoch {}, step {})",
                        path.display(),
                        t.pos.epoch + 1,
                        t.pos.step
                    ));
                    return Ok(t);
                }
                Err(e) => {
                    t.say(&format!("skipping {e}"));
                    reasons.push(e.to_string());
                }
            }
        }
        Err(Error::Checkpoint {
            path: ckpt_dir,
            msg: reasons.join("; "),
        })
    }

    /// The model being trained.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The key encoder (momentum, snapshot or teacher), if the run has one.
    pub fn key_model(&self) -> Option<&Model> {
        self.key_model.as_ref()
    }

    /// The trainer of `cfg`; a `fresh` run starts its encoder from `train.init` (a resumed
    /// one restores it from its own checkpoint, so the init run may be gone by then).
    fn build(
        cfg: Config,
        dir: &Path,
        opts: TrainOptions,
        fresh: bool,
        lock: RunLock,
    ) -> Result<Self> {
        let log = MetricsLog::open(&dir.join("metrics.jsonl"))?;
        let ds = load_data(&cfg, opts.progress)?;
        let train = Arc::new(ds.train.clone().truncate(cfg.data.limit));
        let channels = train.shape[0];
        let mean = cfg.data.mean.expand("data.mean", channels)?;
        let std = cfg.data.std.expand("data.std", channels)?;
        let sampler = make_sampler(&cfg, train.shape, &mean, &std)?;
        let device = crate::backend::device(&cfg.train.device)?;
        device.seed(cfg.train.seed);
        let ad = device.clone().autodiff();
        crate::memory::check(&cfg, train.shape)?;
        let mut model = Model::new(&cfg, train.shape, &ad)?;
        if let (true, Some(path)) = (fresh, &cfg.train.init) {
            let init = init_encoders(&cfg, path, train.shape, &ad)?;
            (model.encoder, model.view_encoders) = (init.encoder, init.view_encoders);
        }
        let optim = optimizer(&cfg);
        let batch = cfg.train.batch_size;
        if train.len() < batch {
            return Err(Error::config(
                "train.batch_size",
                batch,
                format!("at most the {} training samples", train.len()),
            ));
        }
        if cfg.views.relation == Relation::Cluster && cfg.views.clusters > train.len() {
            return Err(Error::config(
                "views.clusters",
                cfg.views.clusters,
                format!("at most the {} training samples", train.len()),
            ));
        }
        let steps = steps_per_epoch(train.len(), batch, cfg.train.drop_last);
        let batching = Batching::new(cfg.train.classes_per_batch, batch, &train.labels)?;
        let z_dim = cfg.head.output_dim(cfg.encoder.output_dim());
        let (key_model, onnx_teacher) = match cfg.keys.encoder {
            KeyEncoderKind::Shared => (None, None),
            KeyEncoderKind::Momentum | KeyEncoderKind::Snapshot => (
                Some(keys::frozen_copy(
                    &model,
                    Model::new(&cfg, train.shape, &ad)?,
                )),
                None,
            ),
            KeyEncoderKind::Teacher => match cfg.keys.teacher.as_deref() {
                Some(p) if is_onnx(p) => {
                    let t = OnnxEncoder::open(p, train.shape)?;
                    same_width(t.dim, z_dim)?;
                    (None, Some(t))
                }
                _ => (Some(load_teacher(&cfg, train.shape, &ad)?), None),
            },
        };
        let queue = (cfg.keys.source == KeySourceKind::Queue).then(|| Queue {
            dim: z_dim,
            capacity: cfg.keys.queue_size,
            ..Queue::default()
        });
        let bank = (cfg.keys.source == KeySourceKind::Bank)
            .then(|| Bank::new(z_dim, train.labels.clone(), cfg.train.seed));
        let support = cfg.keys.neighbours.then(|| Queue {
            dim: z_dim,
            capacity: cfg.keys.support_size,
            ..Queue::default()
        });
        let prototypes = (cfg.views.relation == Relation::Cluster).then(|| {
            Prototypes::new(
                Bank::new(z_dim, train.labels.clone(), cfg.train.seed),
                cfg.views.clusters,
            )
        });
        let loss = cfg.loss.for_epoch(0);
        let t = Self {
            cfg,
            dir: dir.to_path_buf(),
            opts,
            device,
            ad,
            ds,
            train,
            mean,
            std,
            sampler,
            batching,
            model,
            optim,
            key_model,
            onnx_teacher,
            queue,
            bank,
            support,
            prototypes,
            pos: Position { epoch: 0, step: 0 },
            loss,
            loss_state: LossState::default(),
            log,
            metrics_lines: 0,
            best_knn: None,
            steps,
            epoch_sums: (0.0, 0.0, 0),
            _lock: lock,
        };
        if let Batching::Balanced {
            left_out: n @ 1..,
            per_class,
            ..
        } = t.batching
        {
            t.say(&format!(
                "P x K batches leave out {n} classes with fewer than {per_class} training samples"
            ));
        }
        Ok(t)
    }

    /// The signal that asked the run to stop, if one did.
    fn stop_requested(&self) -> Option<i32> {
        let s = self.opts.stop.as_ref()?.load(Ordering::SeqCst);
        (s != 0).then_some(s as i32)
    }

    /// The error that reports a stop at the current position (a checkpoint of which has
    /// just been written).
    fn interrupted(&self, signal: i32) -> Error {
        Error::Interrupted {
            signal,
            epoch: self.pos.epoch + usize::from(self.pos.step > 0),
            step: self.pos.epoch * self.steps + self.pos.step,
            dir: self.dir.clone(),
        }
    }

    fn say(&self, msg: &str) {
        if self.opts.progress != Progress::Quiet {
            eprintln!("{msg}");
        }
    }

    fn total_steps(&self) -> usize {
        self.steps * self.cfg.train.epochs
    }

    fn lr(&self, global: usize) -> f64 {
        let warmup = (self.cfg.optim.warmup_epochs * self.steps as f64).round() as usize;
        learning_rate(
            self.cfg.base_lr(),
            self.cfg.optim.schedule == "cosine",
            global,
            self.total_steps(),
            warmup,
        )
    }

    fn write(&mut self, record: serde_json::Value) -> Result<()> {
        self.log.write(&record)?;
        self.metrics_lines += 1;
        Ok(())
    }

    /// Trains to the configured number of epochs, then evaluates.
    pub fn run(mut self) -> Result<Outcome> {
        let batch = self.cfg.train.batch_size;
        let started = Instant::now();
        let mut trained = 0usize;
        let mut final_loss = None;
        while self.pos.epoch < self.cfg.train.epochs {
            let epoch = self.pos.epoch;
            self.loss = self.cfg.loss.for_epoch(epoch);
            let bar = progress_bar(self.opts.progress, self.steps, epoch, self.cfg.train.epochs);
            let t0 = Instant::now();
            let mut ran = 0usize;
            let order = self.batching.order(
                self.train.len(),
                batch,
                self.steps,
                self.cfg.train.seed,
                epoch,
            );
            let loader = EpochLoader::new(
                self.train.clone(),
                self.sampler.clone(),
                order,
                batch,
                self.cfg.train.seed,
                epoch,
                self.pos.step,
            );
            for (s, views) in loader {
                let global = epoch * self.steps + s;
                let lr = self.lr(global);
                let (loss, bound) = self.train_step(global, lr, &views)?;
                final_loss = Some(loss);
                self.epoch_sums.0 += f64::from(loss);
                self.epoch_sums.1 += bound.unwrap_or(0.0);
                self.epoch_sums.2 += 1;
                ran += 1;
                trained += batch;
                self.pos = Position { epoch, step: s + 1 };
                self.write(
                    json!({"epoch": epoch + 1, "step": global + 1, "loss": loss, "lr": lr}),
                )?;
                if let Some(b) = &bar {
                    b.set_position(s as u64 + 1);
                    let rate = (ran * batch) as f64 / t0.elapsed().as_secs_f64();
                    b.set_message(format!("loss {loss:.4}  {rate:.0} img/s"));
                }
                if let Some(signal) = self.stop_requested() {
                    if let Some(b) = &bar {
                        b.finish_and_clear();
                    }
                    if s + 1 < self.steps {
                        self.save()?;
                        return Err(self.interrupted(signal));
                    }
                    break;
                }
                let every = self.cfg.train.checkpoint_every;
                if every > 0 && (global + 1).is_multiple_of(every) && s + 1 < self.steps {
                    self.save()?;
                }
            }
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let secs = t0.elapsed().as_secs_f64();
            let (loss_sum, bound_sum, n) = std::mem::take(&mut self.epoch_sums);
            let mean_loss = loss_sum / n.max(1) as f64;
            let rate = (ran * batch) as f64 / secs;
            self.say(&format!(
                "epoch {}/{}  loss {mean_loss:.4}  {rate:.0} img/s  {secs:.1}s",
                epoch + 1,
                self.cfg.train.epochs
            ));
            let mut record = json!({
                "epoch": epoch + 1, "step": (epoch + 1) * self.steps, "loss": mean_loss,
                "lr": self.lr((epoch + 1) * self.steps - 1), "epoch_seconds": secs, "images_per_s": rate,
            });
            if self.cfg.loss.contrastive() && n > 0 {
                record["mi_bound"] = json!(bound_sum / n as f64);
            }
            self.write(record)?;
            if self.cfg.keys.encoder == KeyEncoderKind::Snapshot {
                let fresh = Model::new(&self.cfg, self.train.shape, &self.ad)?;
                self.key_model = Some(keys::frozen_copy(&self.model, fresh));
            }
            self.pos = Position {
                epoch: epoch + 1,
                step: 0,
            };
            let every = self.cfg.eval.every;
            let online =
                every > 0 && (epoch + 1).is_multiple_of(every) && epoch + 1 < self.cfg.train.epochs;
            if online {
                let knn = self.online_knn();
                if let Some(knn) = knn {
                    self.write(
                        json!({"epoch": epoch + 1, "step": (epoch + 1) * self.steps, "knn_top1": knn}),
                    )?;
                }
                self.save()?;
                if let Some(knn) = knn.filter(|&k| self.best_knn.is_none_or(|b| k > b)) {
                    self.best_knn = Some(knn);
                    self.save_as("best.ckpt")?;
                }
            } else {
                self.save()?;
            }
            if let Some(signal) = self.stop_requested() {
                return Err(self.interrupted(signal));
            }
        }
        let images_per_s = trained as f64 / started.elapsed().as_secs_f64().max(1e-9);
        let (evaluation, geometry, baseline, random_init) = self.evaluate()?;
        let scores = evaluation.scores;
        let mut record = json!({
            "epoch": self.cfg.train.epochs, "step": self.total_steps(), "knn_top1": scores.knn_top1,
            "linear_top1": scores.linear_top1, "images_per_s": images_per_s,
            "knn_per_class": evaluation.knn.as_ref().map(|k| &k.per_class),
            "knn_confusion": evaluation.knn.as_ref().map(|k| &k.confusion),
            "linear_per_class": evaluation.linear.map(|l| l.per_class),
            "alignment": geometry.as_ref().map(|g| g.alignment),
            "uniformity": geometry.as_ref().map(|g| g.uniformity),
        });
        if let Some(b) = &baseline {
            record["baseline_knn_top1"] = json!(b.knn_top1);
            record["baseline_linear_top1"] = json!(b.linear_top1);
        }
        if let Some(r) = &random_init {
            record["random_init_knn_top1"] = json!(r.knn_top1);
            record["random_init_linear_top1"] = json!(r.linear_top1);
        }
        self.write(record)?;
        Ok(Outcome {
            dir: self.dir.clone(),
            unlabelled: evaluation.unlabelled,
            scores,
            baseline,
            random_init,
            images_per_s,
            final_loss,
        })
    }

    /// Representations of `split` under `model`, as the evaluation reads them.
    fn features(&self, model: &Model, split: &Split) -> Features {
        eval::extract(&self.cfg, model, split, &self.mean, &self.std, &self.device)
    }

    /// The test split used for evaluation.
    fn test_split(&self) -> Split {
        self.ds.test.clone().truncate(self.cfg.eval.test_limit)
    }

    /// kNN accuracy of the current representation (online evaluation), on the labelled
    /// samples; `None` when either split has none.
    fn online_knn(&self) -> Option<f64> {
        let classes = self.ds.classes;
        let test = self.test_split();
        let ftr = self.features(&self.model, &self.train).labelled(classes);
        let fte = self.features(&self.model, &test).labelled(classes);
        if ftr.is_empty() || fte.is_empty() {
            return None;
        }
        let (k, t) = (self.cfg.eval.knn_k, self.cfg.eval.knn_temperature);
        let pred = eval::knn::predict(&ftr, &fte, k, t, classes, &self.device);
        Some(eval::knn::accuracy(&pred, &fte.labels))
    }

    /// kNN and linear probe on the representation (with per-class scores, and alignment
    /// and uniformity for augmented views), on raw inputs and on a random-init encoder
    /// when configured.
    fn evaluate(&self) -> Result<Evaluated> {
        let test = self.test_split();
        let t0 = Instant::now();
        let ftr = self.features(&self.model, &self.train);
        let fte = self.features(&self.model, &test);
        let secs = t0.elapsed().as_secs_f64();
        let (cfg, seed) = (&self.cfg.eval, self.cfg.train.seed);
        let evaluation = eval::evaluate(&ftr, &fte, self.ds.classes, cfg, seed, &self.device);
        let geometry = eval::geometry::measure(
            &self.model,
            &test,
            &fte,
            &self.cfg.views,
            (&self.mean, &self.std),
            seed,
            &self.device,
        )?;
        self.say(&format!(
            "evaluated: features {secs:.1}s, kNN {:.1}s, linear probe {:.1}s",
            evaluation.scores.knn_seconds, evaluation.scores.linear_seconds
        ));
        if let Some(why) = &evaluation.unlabelled {
            self.say(why);
        }
        let baseline = cfg.baseline.then(|| {
            let (rtr, rte) = (
                eval::raw(&self.train, &self.mean, &self.std),
                eval::raw(&test, &self.mean, &self.std),
            );
            eval::evaluate(&rtr, &rte, self.ds.classes, cfg, seed, &self.device).scores
        });
        let random_init = if cfg.random_init {
            let fresh = Model::new(&self.cfg, self.train.shape, &self.ad)?;
            let (rtr, rte) = (
                self.features(&fresh, &self.train),
                self.features(&fresh, &test),
            );
            Some(eval::evaluate(&rtr, &rte, self.ds.classes, cfg, seed, &self.device).scores)
        } else {
            None
        };
        Ok((evaluation, geometry, baseline, random_init))
    }

    /// One optimisation step; returns the loss and, for the InfoNCE family, `log N - L`.
    fn train_step(
        &mut self,
        global: usize,
        lr: f64,
        views: &ViewBatch,
    ) -> Result<(f32, Option<f64>)> {
        let epoch = global / self.steps;
        if let Some(p) = self.prototypes.as_mut() {
            let every = self.cfg.views.recluster_every;
            if global >= self.steps && (global - self.steps).is_multiple_of(every) {
                p.recluster(mix(self.cfg.train.seed, global as u64, 0xc1));
            }
        }
        let (loss, map) = match self.cfg.keys.pairing {
            Pairing::Joint => self.joint_loss(views)?,
            Pairing::Cross => self.cross_loss(views, global)?,
            Pairing::Context => {
                let input = |g: &Group| group_input(g, &self.ad);
                let state = &mut self.loss_state;
                pairing::context_loss(&self.model, &self.loss, state, views, input)?
            }
            Pairing::Predictive => {
                let q = &self.cfg.head.quantizer;
                let step = pairing::QuantizeStep {
                    temperature: q.temperature_at(global, self.total_steps()),
                    seed: mix(self.cfg.train.seed, global as u64, 0x9b),
                    weight: q.diversity_weight,
                };
                let input = |g: &Group| group_input(g, &self.ad);
                let state = &mut self.loss_state;
                pairing::predictive_loss(&self.model, &self.loss, state, views, input, step)?
            }
        };
        let value = loss.clone().into_scalar::<f32>();
        if !value.is_finite() {
            return Err(Error::NonFinite {
                step: global + 1,
                epoch: epoch + 1,
                loss: value,
                kept: list_checkpoints(&self.dir.join("checkpoints"))?.pop(),
            });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optim.step(lr, self.model.clone(), grads);
        if self.cfg.keys.encoder == KeyEncoderKind::Momentum {
            let m = self.cfg.keys.momentum_at(global + 1, self.total_steps());
            if let Some(k) = self.key_model.take() {
                self.key_model = Some(keys::ema(k, &self.model, m));
            }
        }
        let bound = self
            .cfg
            .loss
            .contrastive()
            .then(|| info_nce_bound(f64::from(value), &map));
        Ok((value, bound))
    }

    /// Every row a query and a key, in one forward pass (SimCLR, SupCon).
    /// Rows without any positive (distant windows, singleton classes) stay keys but are
    /// not anchors.
    fn joint_loss(&mut self, views: &ViewBatch) -> Result<(Tensor<1>, PositiveMap)> {
        let z: Vec<Tensor<2>> = views
            .groups
            .iter()
            .map(|g| self.model.forward_views(self.input(g), &g.views()).1)
            .collect();
        let z = Tensor::cat(z, 0);
        let tags = views.tags();
        let map = self.map(&tags, &tags, true);
        if self.prototypes.is_some() {
            let first: Vec<usize> = (0..tags.len()).filter(|&i| tags[i].view == 0).collect();
            let rows = keys::host(&select(&z, &first));
            let inst: Vec<u32> = first.iter().map(|&i| tags[i].instance).collect();
            let m = self.cfg.keys.bank_momentum as f32;
            if let Some(p) = self.prototypes.as_mut() {
                p.bank.update(&inst, &rows, m);
            }
        }
        let critic = self.model.critic.as_ref();
        let loss = match pairing::anchors(&map) {
            None => {
                let state = &mut self.loss_state;
                self.loss.compute_with(z.clone(), z, &map, critic, state)?
            }
            Some((rows, sub)) if !rows.is_empty() => {
                let (q, state) = (select(&z, &rows), &mut self.loss_state);
                let loss = self.loss.compute_with(q, z, &sub, critic, state)?;
                return Ok((loss, sub));
            }
            Some(_) => return Err(Error::Invalid("no row of the batch has a positive".into())),
        };
        Ok((loss, map))
    }

    /// Queries from one view, keys from the other (or from a memory bank), per direction.
    fn cross_loss(&mut self, views: &ViewBatch, global: usize) -> Result<(Tensor<1>, PositiveMap)> {
        let g = views
            .groups
            .first()
            .ok_or_else(|| Error::Invalid("a batch without views".into()))?;
        let (_, z_all) = self.model.forward_views(self.input(g), &g.views());
        if let Some(bank) = &self.bank {
            // InstDisc: every view is a query against the bank entries of the batch's
            // instances and sampled negatives.
            let q = self.model.predict(z_all.clone());
            let instances: Vec<u32> = g.tags.iter().map(|t| t.instance).collect();
            let idx = bank.candidates(
                &instances,
                self.cfg.keys.bank_negatives,
                self.cfg.train.seed,
                global,
            );
            let (kz, ktags) = bank.gather(&idx);
            let k = keys::device_rows(kz, bank.dim, &self.ad);
            let map = self.map(&g.tags, &ktags, false);
            let critic = self.model.critic.as_ref();
            let loss = self
                .loss
                .compute_with(q, k, &map, critic, &mut self.loss_state)?;
            let first: Vec<usize> = (0..g.tags.len()).filter(|&i| g.tags[i].view == 0).collect();
            let rows = keys::host(&select(&z_all, &first));
            let inst: Vec<u32> = first.iter().map(|&i| g.tags[i].instance).collect();
            let m = self.cfg.keys.bank_momentum as f32;
            if let Some(b) = self.bank.as_mut() {
                b.update(&inst, &rows, m);
            }
            return Ok((loss, map));
        }
        let view_rows =
            |v: u16| -> Vec<usize> { (0..g.tags.len()).filter(|&i| g.tags[i].view == v).collect() };
        let (rows0, rows1) = (view_rows(0), view_rows(1));
        if rows0.is_empty() || rows1.is_empty() {
            return Err(Error::Invalid(
                "cross pairing needs views 0 and 1 in every batch".into(),
            ));
        }
        let keys_of = |rows: &[usize]| -> Result<Tensor<2>> {
            Ok(match (&self.key_model, &self.onnx_teacher) {
                (Some(km), _) => model_keys(km, g, rows, &self.ad),
                (None, Some(t)) => {
                    let z = t.embed(&rows_data(g, rows), rows.len())?;
                    keys::device_rows(z, t.dim, &self.ad)
                }
                (None, None) => select(&z_all, rows),
            })
        };
        let tags_of = |rows: &[usize]| -> Vec<Tag> { rows.iter().map(|&i| g.tags[i]).collect() };
        let mut directions = vec![(rows0.clone(), rows1.clone())];
        if self.cfg.keys.symmetric {
            directions.push((rows1.clone(), rows0.clone()));
        }
        let mut losses = Vec::new();
        let mut first_map = None;
        let mut pushed: Vec<(Tensor<2>, Vec<Tag>)> = Vec::new();
        for (qr, kr) in &directions {
            let q = self.model.predict(select(&z_all, qr));
            let (k_own, k_tags) = (keys_of(kr)?, tags_of(kr));
            // NNCLR: the positive key is the support set's nearest neighbour of the key.
            let k_batch = match self
                .support
                .as_ref()
                .map(|s| (s, s.nearest(&keys::host(&k_own))))
            {
                Some((s, Some(nn))) => {
                    let rows: Vec<f32> = nn
                        .iter()
                        .flat_map(|&j| s.z[j * s.dim..(j + 1) * s.dim].to_vec())
                        .collect();
                    keys::device_rows(rows, s.dim, &self.ad)
                }
                _ => k_own.clone(),
            };
            let (k, all_tags) = match &self.queue {
                Some(queue) if !queue.tags.is_empty() => {
                    let extra = keys::device_rows(queue.z.clone(), queue.dim, &self.ad);
                    let mut t = k_tags.clone();
                    t.extend_from_slice(&queue.tags);
                    (Tensor::cat(vec![k_batch.clone(), extra], 0), t)
                }
                _ => (k_batch.clone(), k_tags.clone()),
            };
            let map = self.map(&tags_of(qr), &all_tags, false);
            let critic = self.model.critic.as_ref();
            losses.push(
                self.loss
                    .compute_with(q, k, &map, critic, &mut self.loss_state)?,
            );
            pushed.push((k_own.detach(), k_tags));
            first_map.get_or_insert(map);
        }
        for held in [self.queue.as_mut(), self.support.as_mut()]
            .into_iter()
            .flatten()
        {
            for (k, t) in &pushed {
                held.push(&keys::host(k), t);
            }
        }
        let n = losses.len() as f64;
        let loss = losses
            .into_iter()
            .reduce(|a, b| a + b)
            .map(|l| l.div_scalar(n));
        match (loss, first_map) {
            (Some(loss), Some(map)) => Ok((loss, map)),
            _ => Err(Error::Invalid("no query/key direction".into())),
        }
    }

    fn map(&self, queries: &[Tag], keys: &[Tag], same_rows: bool) -> PositiveMap {
        let rule = Rule {
            relation: self.cfg.views.relation,
            max_gap: self.cfg.views.max_gap as u32,
        };
        let map = match &self.prototypes {
            Some(p) => {
                let assigned = |tags: &[Tag]| -> Vec<Tag> {
                    tags.iter()
                        .map(|t| Tag {
                            cluster: p.assign[t.instance as usize],
                            ..*t
                        })
                        .collect()
                };
                PositiveMap::build(rule, &assigned(queries), &assigned(keys), same_rows)
            }
            None => PositiveMap::build(rule, queries, keys, same_rows),
        };
        let mut map = map;
        if self.cfg.loss.exclude_false_negatives {
            map.exclude_false_negatives(queries, keys);
        }
        map
    }

    fn input(&self, g: &Group) -> Tensor<4> {
        group_input(g, &self.ad)
    }

    /// Writes a checkpoint of the current position, then prunes old ones.
    fn save(&self) -> Result<()> {
        let global = self.pos.epoch * self.steps + self.pos.step;
        self.save_as(&format!("step-{global:09}.ckpt"))?;
        prune(
            &self.dir.join("checkpoints"),
            self.cfg.train.keep_checkpoints.max(1),
        )
    }

    fn save_as(&self, name: &str) -> Result<()> {
        let path = self.dir.join("checkpoints").join(name);
        let bad = |e: burn::store::RecordError| Error::Checkpoint {
            path: path.clone(),
            msg: e.to_string(),
        };
        let mut sections = vec![
            (
                "model".to_string(),
                self.model
                    .clone()
                    .into_record()
                    .into_bytes()
                    .map_err(bad)?
                    .to_vec(),
            ),
            (
                "optimizer".to_string(),
                self.optim.into_bytes().map_err(bad)?.to_vec(),
            ),
        ];
        if let Some(k) = &self.key_model {
            sections.push((
                "key_model".into(),
                k.clone().into_record().into_bytes().map_err(bad)?.to_vec(),
            ));
        }
        if let Some(q) = &self.queue {
            sections.push(("queue_z".into(), f32_bytes(&q.z)));
            sections.push(("queue_tags".into(), tag_bytes(&q.tags)));
        }
        if let Some(b) = &self.bank {
            sections.push(("bank".into(), f32_bytes(&b.z)));
        }
        if let Some(s) = &self.support {
            sections.push(("support_z".into(), f32_bytes(&s.z)));
            sections.push(("support_tags".into(), tag_bytes(&s.tags)));
        }
        if let Some(p) = &self.prototypes {
            sections.push(("prototype_bank".into(), f32_bytes(&p.bank.z)));
            let assign: Vec<u8> = p.assign.iter().flat_map(|a| a.to_le_bytes()).collect();
            sections.push(("prototype_assign".into(), assign));
        }
        Checkpoint {
            meta: json!({
                "epoch": self.pos.epoch, "step": self.pos.step, "metrics_lines": self.metrics_lines,
                "best_knn": self.best_knn, "steps_per_epoch": self.steps,
                "epoch_sums": [self.epoch_sums.0, self.epoch_sums.1, self.epoch_sums.2],
                "loss_state": self.loss_state,
                "config": self.cfg.to_toml(),
            }),
            sections,
        }
        .save(&path)
    }

    fn restore(&mut self, c: &Checkpoint, path: &Path) -> Result<()> {
        let bad = |msg: String| Error::Checkpoint {
            path: path.to_path_buf(),
            msg,
        };
        let get = |name: &str| {
            c.section(name)
                .ok_or_else(|| bad(format!("has no `{name}` section")))
        };
        let field = |name: &str| {
            c.meta
                .get(name)
                .and_then(|v| v.as_u64())
                .map(|v| v as usize)
                .ok_or_else(|| bad(format!("header lacks `{name}`")))
        };
        if field("steps_per_epoch")? != self.steps {
            return Err(bad("was written with another batch size or dataset".into()));
        }
        let record = |bytes: &[u8]| {
            ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
                .map_err(|e| bad(e.to_string()))
        };
        let model = std::mem::replace(
            &mut self.model,
            Model::new(&self.cfg, self.train.shape, &self.ad)?,
        );
        self.model = model
            .try_load_record(record(get("model")?)?)
            .map_err(|e| bad(e.to_string()))?;
        let optim = std::mem::replace(&mut self.optim, optimizer(&self.cfg));
        self.optim = optim
            .from_bytes(Bytes::from_bytes_vec(get("optimizer")?.to_vec()))
            .map_err(|e| bad(e.to_string()))?;
        if let Some(k) = self.key_model.take() {
            let loaded = match c.section("key_model") {
                Some(b) => k
                    .try_load_record(record(b)?)
                    .map_err(|e| bad(e.to_string()))?
                    .no_grad(),
                None => return Err(bad("has no `key_model` section".into())),
            };
            self.key_model = Some(loaded);
        }
        if let Some(q) = self.queue.as_mut() {
            q.z = bytes_f32(get("queue_z")?);
            q.tags =
                bytes_tags(get("queue_tags")?).ok_or_else(|| bad("corrupt queue tags".into()))?;
        }
        if let Some(b) = self.bank.as_mut() {
            let z = bytes_f32(get("bank")?);
            if z.len() != b.z.len() {
                return Err(bad(format!(
                    "memory bank of {} values, expected {}",
                    z.len(),
                    b.z.len()
                )));
            }
            b.z = z;
        }
        if let Some(s) = self.support.as_mut() {
            s.z = bytes_f32(get("support_z")?);
            s.tags = bytes_tags(get("support_tags")?)
                .ok_or_else(|| bad("corrupt support-set tags".into()))?;
        }
        if let Some(p) = self.prototypes.as_mut() {
            let z = bytes_f32(get("prototype_bank")?);
            let assign: Vec<u32> = get("prototype_assign")?
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if z.len() != p.bank.z.len() || assign.len() != p.assign.len() {
                return Err(bad("prototype bank of another size".into()));
            }
            (p.bank.z, p.assign) = (z, assign);
        }
        self.pos = Position {
            epoch: field("epoch")?,
            step: field("step")?,
        };
        self.best_knn = c.meta.get("best_knn").and_then(|v| v.as_f64());
        let sums = c
            .meta
            .get("epoch_sums")
            .and_then(|v| v.as_array())
            .filter(|a| a.len() == 3);
        let sums = sums.ok_or_else(|| bad("header lacks `epoch_sums`".into()))?;
        let num = |i: usize| {
            sums[i]
                .as_f64()
                .ok_or_else(|| bad("corrupt `epoch_sums`".into()))
        };
        self.epoch_sums = (num(0)?, num(1)?, num(2)? as usize);
        self.loss_state = match c.meta.get("loss_state") {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| bad(format!("corrupt `loss_state`: {e}")))?,
            None => LossState::default(),
        };
        let lines = field("metrics_lines")?;
        let path = self.dir.join("metrics.jsonl");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let kept: Vec<&str> = text.lines().take(lines).collect();
        if kept.len() < lines {
            return Err(bad(format!(
                "expects {lines} metrics lines, {} has {}",
                path.display(),
                kept.len()
            )));
        }
        let mut content = kept.join("\n");
        if !content.is_empty() {
            content.push('\n');
        }
        atomic_write(&path, content.as_bytes())?;
        self.log = MetricsLog::open(&path)?;
        self.metrics_lines = lines;
        Ok(())
    }
}

/// The views of `g` as one input tensor on `device`.
fn group_input(g: &Group, device: &Device) -> Tensor<4> {
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

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Bytes of one serialised [`Tag`]: instance, label, view, time, cluster.
const TAG_BYTES: usize = 18;

fn tag_bytes(tags: &[Tag]) -> Vec<u8> {
    tags.iter()
        .flat_map(|t| {
            t.instance
                .to_le_bytes()
                .into_iter()
                .chain(t.label.to_le_bytes())
                .chain(t.view.to_le_bytes())
                .chain(t.time.to_le_bytes())
                .chain(t.cluster.to_le_bytes())
        })
        .collect()
}

fn bytes_tags(b: &[u8]) -> Option<Vec<Tag>> {
    let word = |c: &[u8], at: usize| u32::from_le_bytes([c[at], c[at + 1], c[at + 2], c[at + 3]]);
    if !b.len().is_multiple_of(TAG_BYTES) {
        return None;
    }
    Some(
        b.chunks_exact(TAG_BYTES)
            .map(|c| Tag {
                instance: word(c, 0),
                label: word(c, 4),
                view: u16::from_le_bytes([c[8], c[9]]),
                time: word(c, 10),
                cluster: word(c, 14),
            })
            .collect(),
    )
}

/// The final evaluation: scores with per-class detail, the geometry of augmented views
/// (transform views only), and the raw-input and random-init baselines.
type Evaluated = (Evaluation, Option<Geometry>, Option<Scores>, Option<Scores>);

/// The view sampler of `cfg.views` for samples of `shape`, checked against the data.
fn make_sampler(
    cfg: &Config,
    shape: [usize; 3],
    mean: &[f32],
    std: &[f32],
) -> Result<Arc<dyn Sampler>> {
    let v = &cfg.views;
    let (mean, std) = (mean.to_vec(), std.to_vec());
    Ok(match v.kind.as_str() {
        "modalities" => {
            if let Some(&c) = v.modalities.iter().flatten().find(|&&c| c >= shape[0]) {
                return Err(Error::config(
                    "views.modalities",
                    c,
                    format!("channel indices below the data's {} channels", shape[0]),
                ));
            }
            Arc::new(ModalityViews {
                groups: v.modalities.clone(),
                mean,
                std,
            })
        }
        "windows" => {
            let span = v.window + v.stride * v.n.saturating_sub(1);
            if shape[1] != 1 || span > shape[2] {
                return Err(Error::config(
                    "views.window",
                    v.window,
                    format!(
                        "series of shape [channels, 1, length] with window + stride * (n - 1) <= length {} (data shape {shape:?})",
                        shape[2]
                    ),
                ));
            }
            Arc::new(WindowViews {
                window: v.window,
                n: v.n,
                max_gap: v.max_gap,
                distant: v.distant,
                stride: v.stride,
                mean,
                std,
            })
        }
        _ => Arc::new(TransformViews {
            augment: v.augments(),
            mean,
            std,
        }),
    })
}

/// Loads the configured dataset, fetching it first when allowed and missing.
fn load_data(cfg: &Config, progress: Progress) -> Result<Dataset> {
    match data::load_limited(&cfg.data.dataset, &cfg.data.dir, cfg.data.max_pixels) {
        Err(Error::Data { .. }) if cfg.data.fetch && !cfg.data.dir.exists() => {
            let mut say = |m: &str| {
                if progress != Progress::Quiet {
                    eprintln!("{m}");
                }
            };
            let got = data::fetch::fetch(&cfg.data.dataset, &cfg.data.dir, &mut say)?;
            if let Some(src) = got.source {
                say(&format!("fetched {} from {src}", cfg.data.dataset));
            }
            data::load_limited(&cfg.data.dataset, &cfg.data.dir, cfg.data.max_pixels)
        }
        other => other,
    }
}

/// The teacher's model, loaded from its checkpoint and the config of its run.
fn load_teacher(cfg: &Config, sample: [usize; 3], device: &Device) -> Result<Model> {
    let path = cfg.keys.teacher.clone().unwrap_or_default();
    let saved = SavedRun::open(&path, &[])?;
    let teacher_cfg = &saved.config;
    let teacher = saved.model(sample, device)?;
    same_width(
        teacher_cfg
            .head
            .output_dim(teacher_cfg.encoder.output_dim()),
        cfg.head.output_dim(cfg.encoder.output_dim()),
    )?;
    Ok(teacher.no_grad())
}

/// The model of the run at `path` (`train.init`), which must have this run's `[encoder]`,
/// encoder input and data channels; the caller takes its encoders.
fn init_encoders(cfg: &Config, path: &Path, sample: [usize; 3], device: &Device) -> Result<Model> {
    let refuse = |what: String| Error::config("train.init", path.display(), what);
    let saved = SavedRun::open(path, &[])?;
    let json = |e: &crate::encoder::EncoderConfig| serde_json::to_value(e).unwrap_or_default();
    let (theirs, ours) = (json(&saved.config.encoder), json(&cfg.encoder));
    let differs = ours
        .as_object()
        .into_iter()
        .flatten()
        .find(|(k, v)| theirs.get(k.as_str()) != Some(*v));
    if let Some((key, here)) = differs {
        let there = theirs.get(key.as_str()).cloned().unwrap_or_default();
        return Err(refuse(format!(
            "a run with this run's [encoder]; its encoder.{key} is {there}, here {here}"
        )));
    }
    let senses = &saved.config.views.modalities;
    if cfg.encoder.per_view && *senses != cfg.views.modalities {
        return Err(refuse(format!(
            "a run with this run's views.modalities, whose senses its encoders read; that run's are {senses:?}"
        )));
    }
    let input = saved.config.views.model_input(sample);
    if input != cfg.views.model_input(sample) {
        return Err(refuse(format!(
            "a run whose encoder reads this run's input; that run's reads {input:?}"
        )));
    }
    saved.model(sample, device).map_err(|e| {
        refuse(format!(
            "a checkpoint whose encoder fits this run's data ({e})"
        ))
    })
}

fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// The student's keys must have the teacher's width `teacher` to be compared with them.
fn same_width(teacher: usize, student: usize) -> Result<()> {
    if teacher == student {
        return Ok(());
    }
    Err(Error::config(
        "head.out",
        student,
        format!("the teacher's embedding size {teacher}"),
    ))
}

/// The configured optimiser.
fn optimizer(cfg: &Config) -> ModuleOptimizer {
    let wd = cfg.optim.weight_decay as f32;
    match cfg.optim.kind.as_str() {
        "adam" => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay((wd > 0.0).then(|| WeightDecayConfig::new(wd)))
            .init(),
        "lars" => ModuleOptimizer::from(Lars {
            momentum: cfg.optim.momentum as f32,
            weight_decay: wd,
            trust_coefficient: cfg.optim.trust_coefficient as f32,
            bias_lr_scale: cfg.optim.bias_lr_scale as f32,
        }),
        _ => ModuleOptimizer::from(Sgd {
            momentum: cfg.optim.momentum as f32,
            weight_decay: wd,
        }),
    }
}

/// Refuses to resume from checkpoint `c` when `cfg` (the run's `config.toml` now) is not
/// the config it was written under, naming the first key that differs. Every key counts,
/// `train.epochs` too: the learning-rate schedule and warm-up are functions of the total
/// step count, so a run extended on resume would equal no uninterrupted run. To train on
/// with other values, start a new run from this one with `train.init`.
fn same_config(c: &Checkpoint, cfg: &Config, path: &Path, dir: &Path) -> Result<()> {
    let Some(saved) = c.meta.get("config").and_then(|v| v.as_str()) else {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            msg: "header lacks `config`".into(),
        });
    };
    let now = cfg.to_toml();
    if saved == now {
        return Ok(());
    }
    let parse = |t: &str| t.parse::<toml::Table>().unwrap_or_default();
    let (was, is) = (parse(saved), parse(&now));
    let (key, old, new) = crate::config::first_difference(&was, &is)
        .unwrap_or_else(|| ("(formatting)".into(), String::new(), String::new()));
    Err(Error::RunDir {
        path: dir.to_path_buf(),
        msg: format!(
            "config.toml changed since the checkpoint was written: `{key}` was {old}, is now \
             {new}; a resumed run uses its own config (restore it, or start a new run with \
             train.init = {})",
            dir.display()
        ),
    })
}

fn progress_bar(
    progress: Progress,
    steps: usize,
    epoch: usize,
    epochs: usize,
) -> Option<ProgressBar> {
    (progress == Progress::Bar).then(|| {
        let b = ProgressBar::new(steps as u64);
        let style = ProgressStyle::with_template(&format!(
            "epoch {}/{epochs} [{{bar:30}}] {{pos}}/{{len}} {{msg}} ETA {{eta}}",
            epoch + 1
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        b.set_style(style);
        b
    })
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
