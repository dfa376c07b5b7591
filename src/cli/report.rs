//! `contrastive report`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use contrastive::report;
use contrastive::train::saved::SavedRun;

#[derive(Args)]
pub struct ReportArgs {
    /// The run directory (its metrics.jsonl, config.toml, newest checkpoint, and eval.json
    /// when `contrastive eval` wrote one).
    #[arg(value_name = "RUN_DIR")]
    path: PathBuf,
    /// The HTML file to write (default: RUN_DIR/report.html); its PNGs go to a report/
    /// folder beside it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Override a value of the run's config.toml, e.g. `--set data.dir=/data/fashion-mnist`
    /// when the dataset has moved (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

pub fn run(a: ReportArgs) -> Result<()> {
    let run = SavedRun::open(&a.path, &a.set)?;
    let loaded = run.load()?;
    let page = a.out.unwrap_or_else(|| run.dir.join("report.html"));
    let r = report::write(&run, &loaded, &page)?;
    println!(
        "report: {} ({} pictures)",
        r.page.display(),
        r.pictures.len()
    );
    Ok(())
}
