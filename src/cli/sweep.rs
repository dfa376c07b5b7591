//! `contrastive sweep`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use contrastive::study::sweep::{parse_case, points, Axis, Share, Sweep};
use contrastive::train::{Progress, TrainOptions};
use contrastive::Config;

#[derive(Args)]
pub struct SweepArgs {
    /// The base TOML config every point starts from.
    #[arg(long, short)]
    config: PathBuf,
    /// Override a value of the base config at every point (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// A swept key and its values, e.g. `--grid loss.temperature=0.05,0.1,0.2`
    /// (repeatable: the points are the product of every grid).
    #[arg(long, value_name = "KEY=V1,V2,...")]
    grid: Vec<String>,
    /// One more point of its own overrides, e.g. `--case "loss.kind=dcl;loss.temperature=0.1"`
    /// (repeatable; after the grid's points).
    #[arg(long, value_name = "KEY=VALUE;...")]
    case: Vec<String>,
    /// Repeat every point with this many seeds (train.seed, train.seed + 1, ...); the
    /// summary reports their mean and standard deviation.
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// The sweep's folder: points/<point>/ run directories and the summary. Running the
    /// same sweep again continues it: finished points are read, a started one resumes.
    /// Under `mpirun -np N` the points are spread over the N processes (on one host or
    /// several), each point trained by one of them.
    #[arg(long)]
    out: PathBuf,
    /// Print one line per point only.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(a: SweepArgs) -> Result<()> {
    if a.seeds == 0 {
        bail!("--seeds 0: expected at least 1");
    }
    let axes = a
        .grid
        .iter()
        .map(|g| Axis::parse(g))
        .collect::<Result<Vec<_>, _>>()?;
    let cases = a
        .case
        .iter()
        .map(|c| parse_case(c))
        .collect::<Result<Vec<_>, _>>()?;
    let base = Config::load(&a.config, &a.set)?;
    let sweep = Sweep {
        config: a.config,
        sets: a.set,
        points: points(&axes, &cases, a.seeds, base.train.seed),
        out: a.out,
    };
    let progress = if a.quiet {
        Progress::Quiet
    } else {
        Progress::auto()
    };
    let mut opts = TrainOptions::new(progress);
    opts.stop = Some(super::train::stop_on_signals()?);
    let share = Share::from_env();
    let rows = sweep.run(&opts, share, &mut |line| match share.size {
        1 => println!("{line}"),
        n => println!("[rank {} of {n}] {line}", share.rank),
    })?;
    println!(
        "{} of {} points finished; summary: {}",
        rows.iter().map(|r| r.runs.len()).sum::<usize>(),
        sweep.points.len(),
        sweep.out.join("summary.md").display()
    );
    print!("{}", std::fs::read_to_string(sweep.out.join("summary.md"))?);
    Ok(())
}
