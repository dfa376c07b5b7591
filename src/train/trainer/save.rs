//! The trainer's checkpoints: what it writes at a position and how it reads it back.

use std::path::Path;

use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;

use super::{Position, Trainer};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::train::checkpoint::{Checkpoint, Meta};
use crate::train::metrics::MetricsLog;
use crate::train::rundir::{atomic_write, prune};

impl Trainer {
    /// Writes a checkpoint of the current position, then prunes old ones.
    pub(super) fn save(&self) -> Result<()> {
        if !self.writes_run() {
            return Ok(()); // rank 0 writes the run
        }
        let global = self.pos.epoch * self.steps + self.pos.step;
        self.save_as(&format!("step-{global:09}.ckpt"))?;
        prune(
            &self.dir.join("checkpoints"),
            self.cfg.train.keep_checkpoints.max(1),
        )
    }

    /// Writes a checkpoint of the current position as `checkpoints/<name>`.
    pub(super) fn save_as(&self, name: &str) -> Result<()> {
        if !self.writes_run() {
            return Ok(());
        }
        let path = self.dir.join("checkpoints").join(name);
        let bad = |msg: String| Error::Checkpoint {
            path: path.clone(),
            msg,
        };
        let model = self.model.clone().into_record().into_bytes();
        let optim = self.optim.into_bytes();
        let mut sections = vec![
            (
                "model".to_string(),
                model.map_err(|e| bad(e.to_string()))?.to_vec(),
            ),
            (
                "optimizer".to_string(),
                optim.map_err(|e| bad(e.to_string()))?.to_vec(),
            ),
        ];
        self.keys.write(&mut sections).map_err(bad)?;
        if let Some(p) = &self.probe {
            sections.push(("online_probe".into(), p.to_bytes()));
        }
        let meta = Meta {
            epoch: self.pos.epoch,
            step: self.pos.step,
            metrics_lines: self.metrics_lines,
            best_knn: self.best_knn,
            steps_per_epoch: self.steps,
            epoch_sums: self.epoch_sums,
            loss_state: self.loss_state.clone(),
            config: self.cfg.to_toml(),
            ranks: crate::dist::world().size(),
            data: self.ds.fingerprint.clone(),
        };
        let meta = serde_json::to_value(&meta).map_err(|e| bad(e.to_string()))?;
        Checkpoint { meta, sections }.save(&path)
    }

    /// Restores the model, optimiser, key state, position and sums of checkpoint `c` (read
    /// from `path`, its header `meta`), and cuts `metrics.jsonl` back to the lines written
    /// up to it.
    pub(super) fn restore(&mut self, c: &Checkpoint, meta: Meta, path: &Path) -> Result<()> {
        let bad = |msg: String| Error::Checkpoint {
            path: path.to_path_buf(),
            msg,
        };
        if meta.steps_per_epoch != self.steps {
            return Err(bad("was written with another batch size or dataset".into()));
        }
        if meta.data != self.ds.fingerprint {
            return Err(bad(format!(
                "was written on other data: the files in {} were added, removed, relabelled or changed since (their index differs)",
                self.cfg.data.dir.display()
            )));
        }
        let section = |name: &str| {
            c.section(name)
                .map(|b| Bytes::from_bytes_vec(b.to_vec()))
                .ok_or_else(|| bad(format!("has no `{name}` section")))
        };
        let record = ModuleRecord::from_bytes(section("model")?).map_err(|e| bad(e.to_string()))?;
        let fresh = Model::new(&self.cfg, self.shape, &self.ad)?;
        let model = std::mem::replace(&mut self.model, fresh);
        self.model = model
            .try_load_record(record)
            .map_err(|e| bad(e.to_string()))?;
        let optim = std::mem::replace(&mut self.optim, self.cfg.optim.init());
        self.optim = optim
            .from_bytes(section("optimizer")?)
            .map_err(|e| bad(e.to_string()))?;
        self.keys.read(c).map_err(bad)?;
        if let Some(p) = self.probe.as_mut() {
            let bytes = c
                .section("online_probe")
                .ok_or_else(|| bad("has no `online_probe` section".into()))?;
            p.read_bytes(bytes).map_err(bad)?;
        }
        self.pos = Position {
            epoch: meta.epoch,
            step: meta.step,
        };
        self.best_knn = meta.best_knn;
        self.epoch_sums = meta.epoch_sums;
        self.loss_state = meta.loss_state;
        let lines = meta.metrics_lines;
        self.metrics_lines = lines;
        if !self.writes_run() {
            return Ok(());
        }
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

/// Drops from `now` the keys that `saved` lacks and that hold their `default` value.
fn without_new_defaults(saved: &toml::Table, now: &mut toml::Table, default: &toml::Table) {
    now.retain(|k, v| match (saved.get(k), default.get(k), v) {
        (None, Some(d), v) => d != v,
        (Some(toml::Value::Table(s)), Some(toml::Value::Table(d)), toml::Value::Table(n)) => {
            without_new_defaults(s, n, d);
            true
        }
        _ => true,
    });
}

/// Refuses to resume on another number of ranks than the checkpoint was written by,
/// unless `any` allows an inexact continuation.
pub(super) fn same_ranks(meta: &Meta, any: bool, dir: &Path) -> Result<()> {
    let ranks = crate::dist::world().size();
    if meta.ranks == ranks || any {
        return Ok(());
    }
    Err(Error::RunDir {
        path: dir.to_path_buf(),
        msg: format!(
            "was trained on {} rank(s) and would resume on {ranks}: the ranks' batch-norm \
             statistics and float sums would differ from the uninterrupted run (resume with \
             mpirun -np {}, or pass --any-ranks to continue inexactly)",
            meta.ranks, meta.ranks
        ),
    })
}

/// Refuses to resume from a checkpoint written under config `saved` (TOML) when `cfg` (the
/// run's `config.toml` now) differs, naming the first key that differs. Every key counts,
/// `train.epochs` too: the learning-rate schedule and warm-up are functions of the total
/// step count, so a run extended on resume would equal no uninterrupted run. To train on
/// with other values, start a new run from this one with `train.init`. A key the saved
/// config lacks is no change while it holds its default: a later version added it (as
/// `train.threads` and `train.sync_bn` were), and at its default it changes nothing.
pub(super) fn same_config(saved: &str, cfg: &Config, dir: &Path) -> Result<()> {
    let now = cfg.to_toml();
    if saved == now {
        return Ok(());
    }
    let parse = |t: &str| t.parse::<toml::Table>().unwrap_or_default();
    let (was, mut is) = (parse(saved), parse(&now));
    without_new_defaults(&was, &mut is, &parse(&Config::default().to_toml()));
    let Some((key, old, new)) = crate::config::first_difference(&was, &is) else {
        return Ok(());
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint written before `train.threads` and `train.sync_bn` existed resumes; an
    /// edited value, or a new key away from its default, is still refused.
    #[test]
    fn keys_a_later_version_added_at_their_default_are_no_change() {
        let dir = Path::new("run");
        let cfg = Config::default();
        let older: String = cfg
            .to_toml()
            .lines()
            .filter(|l| !l.starts_with("threads =") && !l.starts_with("sync_bn ="))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(same_config(&older, &cfg, dir).is_ok());
        let mut threads = cfg.clone();
        threads.train.threads = 1;
        let e = same_config(&older, &threads, dir).unwrap_err().to_string();
        assert!(e.contains("`train.threads` was (absent), is now 1"), "{e}");
        let mut epochs = cfg.clone();
        epochs.train.epochs = 7;
        let e = same_config(&cfg.to_toml(), &epochs, dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`train.epochs` was 1, is now 7"), "{e}");
    }
}
