//! Starting a run: fresh in a new or emptied run directory, or resumed from its newest
//! intact checkpoint.

use std::path::Path;

use super::save::{same_config, same_ranks};
use super::{TrainOptions, Trainer};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::train::checkpoint::{Checkpoint, Meta};
use crate::train::metrics::MetricsLog;
use crate::train::rundir::{self, atomic_write, list_checkpoints, Fresh, RunLock};

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
        if !crate::dist::world().is_root() {
            // rank 0 prepares and writes the run directory; the others only train
            return Self::build(cfg, dir, opts, true, None);
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
        Self::build(cfg, dir, opts, true, Some(lock))
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
        let root = crate::dist::world().is_root();
        let ckpt_dir = dir.join("checkpoints");
        let lock = if root {
            let lock = RunLock::acquire(dir)?;
            rundir::remove_stale_tmp(dir)?;
            rundir::remove_stale_tmp(&ckpt_dir)?;
            Some(lock)
        } else {
            None
        };
        let cfg = Config::load(&dir.join("config.toml"), &[])?;
        let mut ckpts = list_checkpoints(&ckpt_dir)?;
        ckpts.reverse();
        // with no checkpoint the run starts over as a fresh one (its train.init too)
        let mut t = Self::build(cfg, dir, opts, ckpts.is_empty(), lock)?;
        if ckpts.is_empty() {
            t.say("no checkpoint yet: starting the run from its beginning");
            if root {
                atomic_write(&dir.join("metrics.jsonl"), b"")?;
                t.log = MetricsLog::open(&dir.join("metrics.jsonl"))?;
            }
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
            let meta = Meta::of(&c).map_err(|msg| Error::Checkpoint {
                path: path.clone(),
                msg,
            })?;
            same_config(&meta.config, &t.cfg, dir)?;
            same_ranks(&meta, t.opts.any_ranks, dir)?;
            match t.restore(&c, meta, &path) {
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
}
