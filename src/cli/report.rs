//! `contrastive report`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use contrastive::report;
use contrastive::study::invariance;
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
    let extra = invariance_section(&run, &page)?;
    let r = report::write(&run, &loaded, &page, &extra)?;
    println!(
        "report: {} ({} pictures)",
        r.page.display(),
        r.pictures.len()
    );
    Ok(())
}

/// The run's invariance probe (`contrastive probe invariance` wrote
/// `RUN_DIR/invariance/invariance.json`) as a report section, its chart drawn into the
/// report's picture folder; empty when the run was not probed.
fn invariance_section(run: &SavedRun, page: &std::path::Path) -> Result<String> {
    let probed = run.dir.join("invariance").join(invariance::JSON);
    let Ok(text) = std::fs::read_to_string(&probed) else {
        return Ok(String::new());
    };
    let inv: invariance::Invariance =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", probed.display()))?;
    let folder = page
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .join("report");
    std::fs::create_dir_all(&folder)?;
    let charts = invariance::charts(std::slice::from_ref(&inv), &folder)?;
    Ok(invariance::section(&[inv], &charts, "report/"))
}
