//! `contrastive train`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use contrastive::train::{self, Progress, TrainOptions};
use contrastive::Config;

#[derive(Args)]
pub struct TrainArgs {
    /// TOML config (a preset from configs/ or your own).
    #[arg(long, short)]
    config: PathBuf,
    /// Override a config value, e.g. `--set train.epochs=3` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Run directory (default: runs/<config name>, numbered if it exists).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print nothing while training.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(a: TrainArgs) -> Result<()> {
    let cfg = Config::load(&a.config, &a.set)?;
    let dir = match a.out {
        Some(d) => d,
        None => fresh_run_dir(&a.config),
    };
    let progress = if a.quiet {
        Progress::Quiet
    } else {
        Progress::auto()
    };
    let out = train::run(&cfg, &dir, &TrainOptions { progress })?;
    println!("run directory: {}", out.dir.display());
    println!(
        "training: {:.0} images/s, final loss {:.4}",
        out.images_per_s, out.final_loss
    );
    println!(
        "{:<24} {:>9} {:>12}",
        "representation", "kNN top-1", "linear top-1"
    );
    let row = |name: &str, s: &contrastive::eval::Scores| {
        let lin = s
            .linear_top1
            .map_or("-".to_string(), |v| format!("{:.4}", v));
        println!("{name:<24} {:>9.4} {lin:>12}", s.knn_top1);
    };
    if let Some(b) = &out.baseline {
        row("raw pixels", b);
    }
    row("trained encoder (h)", &out.scores);
    Ok(())
}

/// `runs/<stem>`, or `runs/<stem>-N` for the first N that does not exist yet.
fn fresh_run_dir(config: &std::path::Path) -> PathBuf {
    let stem = config.file_stem().and_then(|s| s.to_str()).unwrap_or("run");
    let base = PathBuf::from("runs").join(stem);
    if !base.exists() {
        return base;
    }
    (2..)
        .map(|n| PathBuf::from("runs").join(format!("{stem}-{n}")))
        .find(|p| !p.exists())
        .unwrap_or(base)
}
