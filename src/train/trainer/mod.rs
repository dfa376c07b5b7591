//! The one training loop every method runs through, with exact resume.
//!
//! All randomness is counter-based: data order from `(seed, epoch)`, views from `(seed,
//! epoch, step)`, bank negatives from `(seed, step)`. A checkpoint therefore only needs
//! the position, the model, the optimiser and the key state to continue exactly.

mod evaluate;
mod open;
mod save;
mod step;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use burn::optim::ModuleOptimizer;
use burn::prelude::*;

use super::config::{Precision, Schedule};
use super::keystate::KeyState;
use super::metrics::{MetricsLog, Record};
use super::progress::Progress;
use super::rundir::RunLock;
use super::schedule::learning_rate;
use crate::config::Config;
use crate::data::loader::{steps_per_epoch, Batching, EpochLoader, Prefetch};
use crate::data::{Data, Fetch, Source};
use crate::error::{Error, Result};
use crate::eval::online::OnlineProbe;
use crate::eval::Scores;
use crate::loss::{BetaSchedule, Loss, LossState};
use crate::model::Model;
use crate::pairs::Relation;
use crate::views::config::ViewsConfig;
use crate::views::Sampler;

/// Options of a run that are not part of the method.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub progress: Progress,
    /// A fresh run empties an existing run directory instead of refusing it.
    pub overwrite: bool,
    /// Set to a signal's number (by the CLI's handler) to stop: the run finishes its step,
    /// writes a checkpoint there and returns [`Error::Interrupted`].
    pub stop: Option<Arc<AtomicUsize>>,
    /// Resume a checkpoint written by another number of ranks (not exactly: batch-norm
    /// statistics and float sums differ).
    pub any_ranks: bool,
}

impl TrainOptions {
    /// Options with `progress`, no overwrite and no stop flag.
    pub fn new(progress: Progress) -> Self {
        Self {
            progress,
            overwrite: false,
            stop: None,
            any_ranks: false,
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
///
/// ```no_run
/// use contrastive::config::Config;
/// use contrastive::train::{self, Progress, TrainOptions};
/// let cfg = Config::load("configs/simclr-fashion-mnist.toml".as_ref(), &[])?;
/// let out = train::run(&cfg, "runs/mine".as_ref(), &TrainOptions::new(Progress::Lines))?;
/// println!("kNN {:?}, linear {:?}", out.scores.knn_top1, out.scores.linear_top1);
/// # Ok::<(), contrastive::Error>(())
/// ```
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
    ds: Data,
    train: Arc<Source>,
    /// The model's input shape, `[C, H, W]`.
    shape: [usize; 3],
    mean: Vec<f32>,
    std: Vec<f32>,
    /// `cfg.views`, with the side of streamed images' views filled in.
    views: ViewsConfig,
    sampler: Arc<dyn Sampler>,
    prefetch: Prefetch,
    /// How the epoch's samples are cut into batches.
    batching: Batching,
    model: Model,
    optim: ModuleOptimizer,
    /// Key encoder, queue, bank, support set, prototypes.
    keys: KeyState,
    pos: Position,
    /// The loss as it applies in the current epoch ([`crate::loss::LossConfig::for_epoch`]),
    /// checked once when the epoch starts.
    loss: Loss,
    /// Values the loss holds across steps (NCE's first-batch `Z`).
    loss_state: LossState,
    log: MetricsLog,
    metrics_lines: usize,
    best_knn: Option<f64>,
    steps: usize,
    /// Sums over the current epoch's steps so far (loss, InfoNCE bound) and their count,
    /// kept in checkpoints so that a resumed epoch reports the same means.
    epoch_sums: (f64, f64, usize),
    /// The run directory's lock, held for the trainer's life by the rank that writes it.
    lock: Option<RunLock>,
    /// The online linear probe (`eval.online_probe`), on the rank that writes the run.
    probe: Option<OnlineProbe>,
}

impl Trainer {
    /// The model being trained.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The key encoder (momentum, snapshot or teacher), if the run has one.
    pub fn key_model(&self) -> Option<&Model> {
        self.keys.model.as_ref()
    }

    /// The trainer of `cfg`; a `fresh` run starts its encoder from `train.init` (a resumed
    /// one restores it from its own checkpoint, so the init run may be gone by then).
    fn build(
        cfg: Config,
        dir: &Path,
        opts: TrainOptions,
        fresh: bool,
        lock: Option<RunLock>,
    ) -> Result<Self> {
        set_threads(cfg.train.threads, &opts.progress);
        set_precision(cfg.train.precision, &opts.progress);
        let log = match lock {
            Some(_) => MetricsLog::open(&dir.join("metrics.jsonl"))?,
            None => MetricsLog::discard(&dir.join("metrics.jsonl")),
        };
        let ds = cfg.data.open(&mut |m| opts.progress.say(m))?;
        let train = Arc::new(ds.train.clone().truncate(cfg.data.limit));
        let shape = train.shape();
        let mean = cfg.data.mean.expand("data.mean", shape[0])?;
        let std = cfg.data.std.expand("data.std", shape[0])?;
        let views = match cfg.data.streamed() {
            true => cfg.views.sized(shape[1]),
            false => cfg.views.clone(),
        };
        let sampler = views.sampler(shape, &mean, &std)?;
        let prefetch = Prefetch::new(cfg.data.prefetch, cfg.data.workers, cfg.data.streamed())?;
        let device = crate::backend::device(&cfg.train.device)?;
        device.seed(cfg.train.seed);
        let ad = device.clone().autodiff();
        crate::memory::check(&cfg, shape)?;
        let mut model = Model::new(&cfg, shape, &ad)?;
        if let (true, Some(path)) = (fresh, &cfg.train.init) {
            let init = super::init::init_encoders(&cfg, path, shape, &ad)?;
            (model.encoder, model.view_encoders) = (init.encoder, init.view_encoders);
        }
        let optim = cfg.optim.init();
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
        let proto = &cfg.loss.proto.clusters;
        if cfg.loss.kind == crate::loss::LossKind::ProtoNce
            && proto.iter().any(|&k| k > train.len())
        {
            return Err(Error::config(
                "loss.proto.clusters",
                format!("{proto:?}"),
                format!(
                    "cluster counts of at most the {} training samples",
                    train.len()
                ),
            ));
        }
        let steps = steps_per_epoch(train.len(), batch, cfg.train.drop_last);
        let batching = Batching::new(cfg.train.classes_per_batch, batch, train.labels())?;
        let keys = KeyState::build(&cfg, &model, shape, train.labels(), &ad)?;
        let loss = cfg.loss.for_epoch(0).build()?;
        let probe = match (cfg.eval.online_probe, &lock) {
            (true, Some(_)) => Some(online_probe(&cfg, ds.classes)?),
            _ => None,
        };
        let t = Self {
            cfg,
            dir: dir.to_path_buf(),
            opts,
            device,
            ad,
            ds,
            train,
            shape,
            mean,
            std,
            views,
            sampler,
            prefetch,
            batching,
            model,
            optim,
            keys,
            pos: Position { epoch: 0, step: 0 },
            loss,
            loss_state: LossState::default(),
            log,
            metrics_lines: 0,
            best_knn: None,
            steps,
            epoch_sums: (0.0, 0.0, 0),
            lock,
            probe,
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

    /// Whether this process writes the run directory (and evaluates): the one holding its
    /// lock, rank 0 of a data-parallel run.
    fn writes_run(&self) -> bool {
        self.lock.is_some()
    }

    /// The signal that asked the run to stop, if one did. Ranks agree on it (one small
    /// all-reduce), so that they all stop after the same step.
    fn stop_requested(&self) -> Option<i32> {
        let s = self
            .opts
            .stop
            .as_ref()
            .map_or(0, |s| s.load(Ordering::SeqCst));
        let s = crate::dist::world().max(s as u32);
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
        self.opts.progress.say(msg);
    }

    fn total_steps(&self) -> usize {
        self.steps * self.cfg.train.epochs
    }

    fn lr(&self, global: usize) -> f64 {
        let warmup = (self.cfg.optim.warmup_epochs * self.steps as f64).round() as usize;
        learning_rate(
            self.cfg.base_lr(),
            self.cfg.optim.schedule == Schedule::Cosine,
            global,
            self.total_steps(),
            warmup,
        )
    }

    fn write(&mut self, record: Record) -> Result<()> {
        self.log.write(&record)?;
        self.metrics_lines += 1;
        Ok(())
    }

    /// Trains to the configured number of epochs, then evaluates.
    pub fn run(mut self) -> Result<Outcome> {
        let started = Instant::now();
        let mut trained = 0usize;
        let mut final_loss = None;
        while self.pos.epoch < self.cfg.train.epochs {
            let epoch = self.run_epoch(&mut trained, &mut final_loss)?;
            self.end_epoch(epoch)?;
        }
        let images_per_s = trained as f64 / started.elapsed().as_secs_f64().max(1e-9);
        self.finish(images_per_s, final_loss)
    }

    /// Runs the rest of the current epoch's steps and returns its summary; a stop request
    /// mid-epoch checkpoints there and returns [`Error::Interrupted`].
    fn run_epoch(&mut self, trained: &mut usize, last: &mut Option<f32>) -> Result<Epoch> {
        let (epoch, batch) = (self.pos.epoch, self.cfg.train.batch_size);
        self.loss = self.cfg.loss.for_epoch(epoch).build()?;
        let bar = self
            .opts
            .progress
            .epoch_bar(self.steps, epoch, self.cfg.train.epochs);
        let t0 = Instant::now();
        let comm0 = crate::dist::comm_totals();
        let mut ran = 0usize;
        let order = self.batching.order(
            self.train.len(),
            batch,
            self.steps,
            self.cfg.train.seed,
            epoch,
        );
        let (seed, from) = (self.cfg.train.seed, self.pos.step);
        let world = crate::dist::world();
        let loader = EpochLoader::new(
            self.train.clone(),
            self.sampler.clone(),
            order,
            batch,
            (seed, epoch),
            from,
            (world.rank(), world.size()),
            self.prefetch.clone(),
        );
        for batch_views in loader {
            let (s, views) = batch_views?;
            let global = epoch * self.steps + s;
            crate::dist::at_step(global);
            let lr = self.lr(global);
            if self.cfg.loss.beta_schedule != BetaSchedule::Constant {
                self.loss = self
                    .cfg
                    .loss
                    .at_step(epoch, global, self.total_steps())
                    .build()?;
            }
            let (loss, bound) = self.train_step(global, lr, &views)?;
            *last = Some(loss);
            self.epoch_sums.0 += f64::from(loss);
            self.epoch_sums.1 += bound.unwrap_or(0.0);
            self.epoch_sums.2 += 1;
            ran += 1;
            *trained += batch;
            self.pos = Position { epoch, step: s + 1 };
            let mut record = Record::at(epoch + 1, global + 1);
            (record.loss, record.lr) = (Some(f64::from(loss)), Some(lr));
            self.write(record)?;
            let rate = (ran * batch) as f64 / t0.elapsed().as_secs_f64();
            bar.set(s + 1, || format!("loss {loss:.4}  {rate:.0} img/s"));
            if let Some(signal) = self.stop_requested() {
                bar.clear();
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
        bar.clear();
        let comm = crate::dist::comm_totals();
        Ok(Epoch {
            index: epoch,
            seconds: t0.elapsed().as_secs_f64(),
            images: ran * batch,
            comm: (comm.0 - comm0.0, comm.1 - comm0.1),
        })
    }

    /// Writes the epoch's summary, moves the key state on, evaluates online when due and
    /// checkpoints the epoch's end; a stop request then returns [`Error::Interrupted`].
    fn end_epoch(&mut self, e: Epoch) -> Result<()> {
        let epoch = e.index;
        let (loss_sum, bound_sum, n) = std::mem::take(&mut self.epoch_sums);
        let mean_loss = loss_sum / n.max(1) as f64;
        let rate = e.images as f64 / e.seconds;
        self.say(&format!(
            "epoch {}/{}  loss {mean_loss:.4}  {rate:.0} img/s  {:.1}s",
            epoch + 1,
            self.cfg.train.epochs,
            e.seconds
        ));
        let end = (epoch + 1) * self.steps;
        let mut record = Record::at(epoch + 1, end);
        record.loss = Some(mean_loss);
        record.lr = Some(self.lr(end - 1));
        (record.epoch_seconds, record.images_per_s) = (Some(e.seconds), Some(rate));
        if crate::dist::world().size() > 1 {
            (record.comm_seconds, record.comm_bytes) = (Some(e.comm.0), Some(e.comm.1));
        }
        if self.cfg.loss.contrastive() && n > 0 {
            record.mi_bound = Some(bound_sum / n as f64);
        }
        if self.cfg.data.skip_bad {
            let mut skipped = [self.train.take_skipped() as f64];
            crate::dist::world().all_reduce_sum_f64(&mut skipped);
            record.skipped_files = Some(skipped[0] as u64);
        }
        if let Some(mut probe) = self.probe.take() {
            record.online_probe_train_top1 = probe.take_accuracy();
            record.online_probe_top1 = self.probe_accuracy(&probe)?;
            self.probe = Some(probe);
        }
        self.write(record)?;
        self.keys
            .end_of_epoch(&self.cfg, &self.model, self.shape, &self.ad)?;
        self.pos = Position {
            epoch: epoch + 1,
            step: 0,
        };
        let every = self.cfg.eval.every;
        let online = every > 0
            && (epoch + 1).is_multiple_of(every)
            && epoch + 1 < self.cfg.train.epochs
            && self.writes_run();
        let knn = if online { self.online_knn()? } else { None };
        if let Some(knn) = knn {
            let mut record = Record::at(epoch + 1, end);
            record.knn_top1 = Some(knn);
            self.write(record)?;
        }
        self.save()?;
        if let Some(knn) = knn.filter(|&k| self.best_knn.is_none_or(|b| k > b)) {
            self.best_knn = Some(knn);
            self.save_as("best.ckpt")?;
        }
        match self.stop_requested() {
            Some(signal) => Err(self.interrupted(signal)),
            None => Ok(()),
        }
    }
}

/// The online probe `cfg` asks for, over `classes` classes; refused where no pairing
/// hands it representations or the data have no labels.
fn online_probe(cfg: &Config, classes: usize) -> Result<OnlineProbe> {
    use crate::keys::Pairing;
    let pairing = cfg.keys.pairing;
    if !matches!(
        pairing,
        Pairing::Joint | Pairing::Cross | Pairing::MultiCrop
    ) {
        return Err(Error::config(
            "eval.online_probe",
            true,
            format!(
                "false with keys.pairing = \"{}\" (joint, cross and multi-crop pairings hand it h)",
                crate::error::kind_name(&pairing)
            ),
        ));
    }
    if classes < 2 {
        return Err(Error::config(
            "eval.online_probe",
            true,
            "false for data without two or more classes",
        ));
    }
    Ok(OnlineProbe::new(
        cfg.encoder.output_dim(),
        classes,
        cfg.eval.online_probe_lr,
    ))
}

/// Sets this process's compute threads (`train.threads`, 0: its share of the host's
/// cores) when the thread pool has not started yet; otherwise says what it keeps.
fn set_threads(threads: usize, progress: &Progress) {
    let want = match threads {
        0 => crate::dist::world().default_threads(),
        n => n,
    };
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(want)
        .build_global();
    let have = rayon::current_num_threads();
    if built.is_err() && have != want {
        progress.say(&format!(
            "compute threads: {have} (the pool was already running; {want} wanted)"
        ));
    }
}

/// Sets the layers' arithmetic for the process (`train.precision`); says so where the CPU
/// cannot do bf16 and f32 is kept.
fn set_precision(precision: Precision, progress: &Progress) {
    let bf16 = precision == Precision::Bf16;
    if crate::kernels::bf16::set_enabled(bf16) != bf16 {
        progress.say("train.precision = \"bf16\": this CPU has no AVX512-BF16; f32 is used");
    }
}

/// What an epoch's summary needs of the steps this process ran in it.
struct Epoch {
    index: usize,
    seconds: f64,
    images: usize,
    /// Seconds in collectives and bytes sent into them (data-parallel runs).
    comm: (f64, u64),
}
