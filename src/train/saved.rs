//! A trained model read back from a run directory or from one of its checkpoints.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;

use super::checkpoint::Checkpoint;
use super::rundir::list_checkpoints;
use crate::config::Config;
use crate::data::{self, Data, Fetch, Source};
use crate::error::{Error, Result};
use crate::model::Model;

/// Where a saved model lives: its run directory, resolved config and checkpoint file.
#[derive(Debug, Clone)]
pub struct SavedRun {
    pub dir: PathBuf,
    pub config: Config,
    pub checkpoint: PathBuf,
}

impl SavedRun {
    /// `path` is a run directory (its newest step checkpoint that reads back intact, the
    /// model that the final evaluation scored unless that one was damaged since) or a
    /// checkpoint file inside `RUN_DIR/checkpoints/`; the run's `config.toml` is read with
    /// `overrides` applied.
    pub fn open(path: &Path, overrides: &[String]) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let (dir, checkpoint) = if meta.is_dir() {
            let ckpt_dir = path.join("checkpoints");
            let mut reasons = Vec::new();
            let mut intact = None;
            for p in list_checkpoints(&ckpt_dir)?.into_iter().rev() {
                match Checkpoint::load(&p) {
                    Ok(_) => {
                        intact = Some(p);
                        break;
                    }
                    Err(e) => reasons.push(e.to_string()),
                }
            }
            if intact.is_some() {
                for r in &reasons {
                    eprintln!("skipping {r}");
                }
            }
            let ckpt = intact.ok_or_else(|| Error::Checkpoint {
                path: ckpt_dir,
                msg: if reasons.is_empty() {
                    "holds no checkpoint (is this a run directory?)".into()
                } else {
                    reasons.join("; ")
                },
            })?;
            (path.to_path_buf(), ckpt)
        } else {
            let dir = path
                .parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .unwrap_or_default();
            (dir, path.to_path_buf())
        };
        let config = Config::load(&dir.join("config.toml"), overrides)?;
        Ok(Self {
            dir,
            config,
            checkpoint,
        })
    }

    /// The model of the checkpoint, for data samples of shape `input`.
    pub fn model(&self, input: [usize; 3], device: &Device) -> Result<Model> {
        load_model(&self.config, &self.checkpoint, input, device)
    }

    /// The run's dataset, split as its evaluation used it, and the model on the run's
    /// device.
    pub fn load(&self) -> Result<Loaded> {
        let cfg = &self.config;
        let ds = match cfg.data.streamed() {
            true => cfg.data.open(&mut |_| {})?,
            false => {
                data::load_limited(&cfg.data.dataset, &cfg.data.dir, cfg.data.max_pixels)?.into()
            }
        };
        let train = ds.train.clone().truncate(cfg.data.limit);
        let test = ds.test.clone().truncate(cfg.eval.test_limit);
        let shape = train.shape();
        let mean = cfg.data.mean.expand("data.mean", shape[0])?;
        let std = cfg.data.std.expand("data.std", shape[0])?;
        let device = crate::backend::device(&cfg.train.device)?;
        device.seed(cfg.train.seed);
        let model = self.model(shape, &device)?;
        Ok(Loaded {
            ds,
            train,
            test,
            mean,
            std,
            model,
            device,
        })
    }
}

/// A saved run's data and model, ready to evaluate.
pub struct Loaded {
    pub ds: Data,
    /// The training samples the run used (`data.limit`): kNN memory and probe data.
    pub train: Source,
    /// The test samples its evaluation used (`eval.test_limit`).
    pub test: Source,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub model: Model,
    pub device: Device,
}

/// The `model` section of checkpoint `path` loaded into the model of `cfg`.
pub fn load_model(cfg: &Config, path: &Path, input: [usize; 3], device: &Device) -> Result<Model> {
    let bad = |msg: String| Error::Checkpoint {
        path: path.to_path_buf(),
        msg,
    };
    let c = Checkpoint::load(path)?;
    let bytes = c
        .section("model")
        .ok_or_else(|| bad("has no `model` section".into()))?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| bad(e.to_string()))?;
    Model::new(cfg, input, device)?
        .try_load_record(record)
        .map_err(|e| bad(e.to_string()))
}
