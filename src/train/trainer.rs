//! The one training loop every method runs through.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::TensorData;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::checkpoint::Checkpoint;
use super::metrics::MetricsLog;
use super::schedule::learning_rate;
use crate::config::Config;
use crate::data::loader::{steps_per_epoch, EpochLoader};
use crate::data::{self, Dataset};
use crate::error::{Error, Result};
use crate::eval::{self, Scores};
use crate::model::Model;
use crate::views::transform::TransformViews;
use crate::views::{PositiveMap, Sampler, ViewBatch};

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
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub dir: PathBuf,
    pub scores: Scores,
    pub baseline: Option<Scores>,
    /// Training images (instances, not views) per second over the whole run.
    pub images_per_s: f64,
    pub final_loss: f32,
}

/// Trains `cfg` into run directory `dir`, evaluates, and returns the scores.
pub fn run(cfg: &Config, dir: &Path, opts: &TrainOptions) -> Result<Outcome> {
    let ckpt_dir = dir.join("checkpoints");
    std::fs::create_dir_all(&ckpt_dir).map_err(|e| Error::io(&ckpt_dir, e))?;
    let cfg_path = dir.join("config.toml");
    std::fs::write(&cfg_path, cfg.to_toml()).map_err(|e| Error::io(&cfg_path, e))?;
    let mut log = MetricsLog::open(&dir.join("metrics.jsonl"))?;

    let ds = load_data(cfg, opts.progress)?;
    let train = Arc::new(ds.train.clone().truncate(cfg.data.limit));
    let channels = train.shape[0];
    let mean = cfg.data.mean.expand("data.mean", channels)?;
    let std = cfg.data.std.expand("data.std", channels)?;
    let sampler: Arc<dyn Sampler> = Arc::new(TransformViews {
        augment: cfg.views.augments(),
        mean: mean.clone(),
        std: std.clone(),
    });

    let device = crate::backend::device(&cfg.train.device)?;
    device.seed(cfg.train.seed);
    let ad = device.clone().autodiff();
    let mut model = Model::new(cfg, train.shape, &ad)?;
    let mut optim = optimizer(cfg);

    let batch = cfg.train.batch_size;
    if train.len() < batch {
        return Err(Error::config(
            "train.batch_size",
            batch,
            format!("at most the {} training samples", train.len()),
        ));
    }
    let steps = steps_per_epoch(train.len(), batch, cfg.train.drop_last);
    let total = steps * cfg.train.epochs;
    let warmup = (cfg.optim.warmup_epochs * steps as f64).round() as usize;
    let base_lr = cfg.base_lr();

    let started = Instant::now();
    let mut trained_images = 0usize;
    let mut final_loss = f32::NAN;
    for epoch in 0..cfg.train.epochs {
        let bar = progress_bar(opts.progress, steps, epoch, cfg.train.epochs);
        let t0 = Instant::now();
        let mut loss_sum = 0f64;
        let loader = EpochLoader::new(
            train.clone(),
            sampler.clone(),
            batch,
            cfg.train.drop_last,
            cfg.train.seed,
            epoch,
            0,
        );
        for (s, views) in loader {
            let global = epoch * steps + s;
            let lr = learning_rate(
                base_lr,
                cfg.optim.schedule == "cosine",
                global,
                total,
                warmup,
            );
            let (loss, next) = step(cfg, model, &mut optim, lr, &views, &ad)?;
            model = next;
            if !loss.is_finite() {
                return Err(Error::NonFinite {
                    step: global,
                    epoch,
                    loss,
                });
            }
            loss_sum += f64::from(loss);
            final_loss = loss;
            trained_images += batch;
            log.write(&json!({"epoch": epoch + 1, "step": global + 1, "loss": loss, "lr": lr}))?;
            if let Some(b) = &bar {
                b.set_position(s as u64 + 1);
                let rate = (s + 1) as f64 * batch as f64 / t0.elapsed().as_secs_f64();
                b.set_message(format!("loss {loss:.4}  {rate:.0} img/s"));
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        let mean_loss = loss_sum / steps as f64;
        let rate = (steps * batch) as f64 / secs;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        if opts.progress != Progress::Quiet {
            eprintln!(
                "epoch {}/{}  loss {mean_loss:.4}  {rate:.0} img/s  {secs:.1}s",
                epoch + 1,
                cfg.train.epochs
            );
        }
        log.write(&json!({
            "epoch": epoch + 1, "step": (epoch + 1) * steps, "loss": mean_loss,
            "lr": learning_rate(base_lr, cfg.optim.schedule == "cosine", (epoch + 1) * steps - 1, total, warmup),
            "epoch_seconds": secs, "images_per_s": rate,
        }))?;
        save_checkpoint(
            &ckpt_dir,
            epoch + 1,
            (epoch + 1) * steps,
            &model,
            &optim,
            cfg.train.keep_checkpoints,
        )?;
    }
    let images_per_s = trained_images as f64 / started.elapsed().as_secs_f64();

    let test = &ds.test;
    let t0 = Instant::now();
    let ftr = eval::extract(&model, &train, &mean, &std, &device);
    let fte = eval::extract(&model, test, &mean, &std, &device);
    let extract_seconds = t0.elapsed().as_secs_f64();
    let scores = eval::evaluate(&ftr, &fte, ds.classes, &cfg.eval, cfg.train.seed, &device);
    if opts.progress != Progress::Quiet {
        eprintln!(
            "evaluated: features {extract_seconds:.1}s, kNN {:.1}s, linear probe {:.1}s",
            scores.knn_seconds, scores.linear_seconds
        );
    }
    let baseline = cfg.eval.baseline.then(|| {
        let (rtr, rte) = (eval::raw(&train, &mean, &std), eval::raw(test, &mean, &std));
        eval::evaluate(&rtr, &rte, ds.classes, &cfg.eval, cfg.train.seed, &device)
    });
    let mut record = json!({
        "epoch": cfg.train.epochs, "step": total, "knn_top1": scores.knn_top1,
        "linear_top1": scores.linear_top1, "images_per_s": images_per_s,
    });
    if let Some(b) = &baseline {
        record["baseline_knn_top1"] = json!(b.knn_top1);
        record["baseline_linear_top1"] = json!(b.linear_top1);
    }
    log.write(&record)?;
    Ok(Outcome {
        dir: dir.to_path_buf(),
        scores,
        baseline,
        images_per_s,
        final_loss,
    })
}

/// Loads the configured dataset, fetching it first when allowed and missing.
fn load_data(cfg: &Config, progress: Progress) -> Result<Dataset> {
    match data::load(&cfg.data.dataset, &cfg.data.dir) {
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
            data::load(&cfg.data.dataset, &cfg.data.dir)
        }
        other => other,
    }
}

/// The configured optimiser.
fn optimizer(cfg: &Config) -> ModuleOptimizer {
    let wd = (cfg.optim.weight_decay > 0.0)
        .then(|| WeightDecayConfig::new(cfg.optim.weight_decay as f32));
    match cfg.optim.kind.as_str() {
        "adam" => AdamConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(wd)
            .init(),
        _ => SgdConfig::new()
            .with_weight_decay(wd)
            .with_momentum((cfg.optim.momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(cfg.optim.momentum)
                    .with_dampening(0.0)
            }))
            .init(),
    }
}

/// One optimisation step on `views`; returns the loss and the updated model.
fn step(
    cfg: &Config,
    model: Model,
    optim: &mut ModuleOptimizer,
    lr: f64,
    views: &ViewBatch,
    device: &Device,
) -> Result<(f32, Model)> {
    let mut zs = Vec::new();
    for g in &views.groups {
        let x = Tensor::<4>::from_data(TensorData::new(g.data.clone(), g.shape), device);
        zs.push(model.forward(x).1);
    }
    let z = Tensor::cat(zs, 0);
    let tags = views.tags();
    let mut map = PositiveMap::build(cfg.views.relation, &tags, &tags, true);
    if cfg.loss.exclude_false_negatives {
        map.exclude_false_negatives(&tags, &tags);
    }
    let loss = cfg
        .loss
        .compute(z.clone(), z, &map, model.critic.as_ref())?;
    let value = loss.clone().into_scalar::<f32>();
    if !value.is_finite() {
        return Ok((value, model));
    }
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    Ok((value, optim.step(lr, model, grads)))
}

fn save_checkpoint(
    dir: &Path,
    epoch: usize,
    step: usize,
    model: &Model,
    optim: &ModuleOptimizer,
    keep: usize,
) -> Result<()> {
    let path = dir.join(format!("epoch-{epoch:04}.ckpt"));
    let bad = |e: burn::store::RecordError| Error::Checkpoint {
        path: path.clone(),
        msg: e.to_string(),
    };
    let model_bytes = model.clone().into_record().into_bytes().map_err(bad)?;
    let optim_bytes = optim.into_bytes().map_err(bad)?;
    Checkpoint {
        meta: json!({"epoch": epoch, "step": step}),
        sections: vec![
            ("model".into(), model_bytes.to_vec()),
            ("optimizer".into(), optim_bytes.to_vec()),
        ],
    }
    .save(&path)?;
    prune(dir, keep.max(1))
}

/// Removes all but the newest `keep` epoch checkpoints.
fn prune(dir: &Path, keep: usize) -> Result<()> {
    let mut ckpts: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("epoch-") && n.ends_with(".ckpt"))
        })
        .collect();
    ckpts.sort();
    let n = ckpts.len();
    for p in ckpts.into_iter().take(n.saturating_sub(keep)) {
        std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
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
