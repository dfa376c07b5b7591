//! `contrastive probe`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use contrastive::study::invariance;
use contrastive::train::saved::SavedRun;

#[derive(Subcommand)]
pub enum ProbeCommand {
    /// Which invariances a run's representation has: for crop, flip, rotation,
    /// brightness, contrast, saturation, hue, greyscale, blur, solarisation, noise and
    /// occlusion (time shift, warping, channel dropout for series) at several strengths,
    /// the similarity of h (and z) to the untransformed input's against random pairs
    /// (1 = invariant, 0 = as different as a random pair), and kNN accuracy on the
    /// transformed test inputs. Writes invariance.{json,md,html} and charts.
    Invariance(InvarianceArgs),
}

#[derive(Args)]
pub struct InvarianceArgs {
    /// The run directory (or a checkpoint file) to probe.
    #[arg(value_name = "RUN_DIR")]
    path: PathBuf,
    /// More runs to probe with the same draws, side by side in the table (e.g. the same
    /// method without colour jitter).
    #[arg(long, value_name = "RUN_DIR")]
    compare: Vec<PathBuf>,
    /// Test samples to probe (0: all).
    #[arg(long, default_value_t = 2000)]
    limit: usize,
    /// Seed of the transformations' random draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder of the outputs (default: RUN_DIR/invariance).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override a value of the runs' config.toml, e.g. `--set data.dir=...` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

pub fn run(c: ProbeCommand) -> Result<()> {
    let ProbeCommand::Invariance(a) = c;
    let mut runs = Vec::new();
    let mut first_dir = None;
    for path in std::iter::once(&a.path).chain(&a.compare) {
        let saved = SavedRun::open(path, &a.set)?;
        let loaded = saved.load()?;
        first_dir.get_or_insert_with(|| saved.dir.clone());
        runs.push(invariance::probe(&saved, &loaded, a.limit, a.seed)?);
    }
    let out = a
        .out
        .unwrap_or_else(|| first_dir.unwrap_or_default().join("invariance"));
    invariance::write(&runs, &out)?;
    print!("{}", invariance::markdown(&runs));
    println!("written: {}", out.join("invariance.html").display());
    Ok(())
}
