//! `metrics.jsonl`: one JSON object per line, flushed as it is written.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One line of `metrics.jsonl`, as the trainer writes it and the report reads it. A step
/// has `loss` and `lr`; an epoch's summary adds `epoch_seconds` and `images_per_s` (and
/// `mi_bound`, `log N - L`, for the InfoNCE family); an online evaluation has `knn_top1`
/// alone; the final record has the evaluation and no `loss`. Absent values are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Epoch from 1.
    pub epoch: usize,
    /// Steps done, from 1.
    pub step: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_per_s: Option<f64>,
    /// Data-parallel runs: seconds this rank (0) spent in collectives over the epoch, and
    /// the bytes it sent into them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mi_bound: Option<f64>,
    /// Streamed files skipped as unreadable over the epoch (`data.skip_bad`), all ranks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_files: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knn_top1: Option<f64>,
    /// The online probe's accuracy over the epoch's training batches, each measured
    /// before the probe's update on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_probe_train_top1: Option<f64>,
    /// The online probe's accuracy on the test set at the epoch's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_probe_top1: Option<f64>,
    /// kNN top-5 accuracy of the final evaluation (more than 5 classes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knn_top5: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_top1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knn_per_class: Option<Vec<f64>>,
    /// `knn_confusion[true][predicted]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knn_confusion: Option<Vec<Vec<usize>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_per_class: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alignment: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniformity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_knn_top1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_linear_top1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_init_knn_top1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_init_linear_top1: Option<f64>,
}

impl Record {
    /// A record at `epoch` (from 1) and `step` (steps done) with nothing else yet.
    pub fn at(epoch: usize, step: usize) -> Self {
        Self {
            epoch,
            step,
            ..Self::default()
        }
    }

    /// Whether this is one step's record (not an epoch summary or an evaluation).
    pub fn is_step(&self) -> bool {
        self.loss.is_some() && self.epoch_seconds.is_none()
    }

    /// Whether this is an epoch's summary.
    pub fn is_epoch(&self) -> bool {
        self.epoch_seconds.is_some()
    }
}

/// Appends JSON lines to a file (or to nowhere, on the ranks that do not write the run).
pub struct MetricsLog {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl MetricsLog {
    /// Opens `path` for appending, creating it.
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(file),
        })
    }

    /// A log that writes nothing (a rank other than 0 of a data-parallel run).
    pub fn discard(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            file: None,
        }
    }

    /// Writes one record as a line.
    pub fn write(&mut self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_string(record)
            .map_err(|e| Error::Invalid(format!("metrics record: {e}")))?;
        line.push('\n');
        match &mut self.file {
            Some(f) => f
                .write_all(line.as_bytes())
                .map_err(|e| Error::io(&self.path, e)),
            None => Ok(()),
        }
    }
}

/// Reads every record of a metrics file.
pub fn read(path: &Path) -> Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::data(path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// Reads every record of a metrics file as typed [`Record`]s.
pub fn records(path: &Path) -> Result<Vec<Record>> {
    typed(read(path)?, path)
}

/// The records `values` (read from `path`, named in errors) as typed [`Record`]s.
pub fn typed(values: Vec<serde_json::Value>, path: &Path) -> Result<Vec<Record>> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value(v)
                .map_err(|e| Error::data(path, format!("record {}: {e}", i + 1)))
        })
        .collect()
}
