//! `contrastive embed`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use contrastive::data::Source;
use contrastive::eval::{self, Output};
use contrastive::npy;
use contrastive::train::saved::SavedRun;

/// Samples read and encoded at a time (a multiple of the evaluation's batch of 512, so the
/// features equal one pass over the split).
const CHUNK: usize = 4096;

#[derive(Clone, Copy, ValueEnum)]
enum Which {
    Train,
    Test,
    Both,
}

#[derive(Args)]
pub struct EmbedArgs {
    /// A run directory (its newest checkpoint) or a checkpoint file in RUN_DIR/checkpoints/.
    #[arg(value_name = "RUN_DIR_OR_CHECKPOINT")]
    path: PathBuf,
    /// Which split to export: the training samples the run used (data.limit), the test
    /// samples its evaluation used (eval.test_limit), or both.
    #[arg(long, value_enum, default_value_t = Which::Test)]
    split: Which,
    /// Export the projection head's output z instead of the encoder's representation h.
    #[arg(long)]
    projection: bool,
    /// Folder for the files (default: RUN_DIR/embeddings). Writes
    /// <split>_embeddings.npy (float32 [N, D]), <split>_labels.npy (int64 [N]) and
    /// <split>_indices.npy (int64 [N], each row's index in the split).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Export N samples spread evenly over the split (index i * len / N) instead of all.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Override a value of the run's config.toml, e.g. `--set data.dir=/data/mnist` or
    /// `--set data.limit=0` for the whole training split (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

pub fn run(a: EmbedArgs) -> Result<()> {
    let run = SavedRun::open(&a.path, &a.set)?;
    let l = run.load()?;
    let out = a.out.unwrap_or_else(|| run.dir.join("embeddings"));
    std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
    let output = if a.projection {
        Output::Projection
    } else {
        Output::Representation
    };
    let splits: &[(&str, &Source)] = match a.split {
        Which::Train => &[("train", &l.train)],
        Which::Test => &[("test", &l.test)],
        Which::Both => &[("train", &l.train), ("test", &l.test)],
    };
    for &(name, source) in splits {
        let indices = spread(source.len(), a.limit.map(|n| n as usize));
        // a chunk at a time, so that a streamed split is never held in memory whole
        let mut f = eval::knn::Features::default();
        for chunk in indices.chunks(CHUNK) {
            let part = eval::extract_output(
                &run.config,
                &l.model,
                &source.pick(chunk)?,
                (&l.mean, &l.std),
                &l.device,
                output,
            );
            f.dim = part.dim;
            f.data.extend(part.data);
            f.labels.extend(part.labels);
        }
        let path = |what: &str| out.join(format!("{name}_{what}.npy"));
        npy::write(&path("embeddings"), &f.data, &[f.len(), f.dim])?;
        let labels: Vec<i64> = f.labels.iter().map(|&v| i64::from(v)).collect();
        npy::write(&path("labels"), &labels, &[labels.len()])?;
        let idx: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        npy::write(&path("indices"), &idx, &[idx.len()])?;
        println!(
            "{name}: {} x {} ({}) -> {}",
            f.len(),
            f.dim,
            if a.projection { "z" } else { "h" },
            path("embeddings").display()
        );
    }
    Ok(())
}

/// `limit` indices spread evenly over `0..len` (all of them without a limit).
fn spread(len: usize, limit: Option<usize>) -> Vec<usize> {
    match limit {
        Some(n) if n < len => (0..n).map(|i| i * len / n).collect(),
        _ => (0..len).collect(),
    }
}
