//! Encoders taken from other runs: a frozen teacher (`keys.teacher`) and the starting
//! point of a fresh run (`train.init`), each checked against this run's config.

use std::path::Path;

use burn::prelude::*;

use super::saved::SavedRun;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::model::Model;

/// The teacher's model, loaded from its checkpoint and the config of its run.
pub fn load_teacher(cfg: &Config, sample: [usize; 3], device: &Device) -> Result<Model> {
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
pub fn init_encoders(
    cfg: &Config,
    path: &Path,
    sample: [usize; 3],
    device: &Device,
) -> Result<Model> {
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

/// Whether `path` names an ONNX file (by its extension).
pub fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// The student's keys must have the teacher's width `teacher` to be compared with them.
pub fn same_width(teacher: usize, student: usize) -> Result<()> {
    if teacher == student {
        return Ok(());
    }
    Err(Error::config(
        "head.out",
        student,
        format!("the teacher's embedding size {teacher}"),
    ))
}
