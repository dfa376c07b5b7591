//! Command-line interface: one file per subcommand, `anyhow` only here.

mod config;
mod data;
mod embed;
mod eval;
mod presets;
mod probe;
mod report;
mod stream_info;
mod sweep;
mod train;

use clap::{Parser, Subcommand};

/// Contrastive representation learning: methods as compositions of similarity
/// distributions, encoders, heads and losses.
#[derive(Parser)]
#[command(name = "contrastive", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a method from a TOML config, evaluate it, write a run directory.
    Train(train::TrainArgs),
    /// Fetch and inspect datasets.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Evaluate a trained run's representation h: weighted kNN, linear probe, per-class
    /// accuracy, confusion matrix, alignment and uniformity; writes eval.json.
    Eval(eval::EvalArgs),
    /// Export a trained run's embeddings, labels and sample indices as NumPy .npy files.
    Embed(embed::EmbedArgs),
    /// Write an HTML report of a run: curves, 2-D maps, nearest neighbours, config, metrics.
    Report(report::ReportArgs),
    /// List the ready-to-run configs built into this binary.
    Presets(presets::PresetsArgs),
    /// Print the resolved config a run would use (`--set` applied), explain one key
    /// (`--explain KEY`), or the reference of every key (`--reference`).
    Config(config::ConfigArgs),
    /// Train a grid (or list) of overrides of one config, each point its own run, and
    /// summarise them: summary.csv, summary.md and summary.html with charts.
    Sweep(sweep::SweepArgs),
    /// Probe a trained run's representation (`probe invariance RUN`).
    #[command(subcommand)]
    Probe(probe::ProbeCommand),
}

/// Runs the command line; errors are printed as one line and exit with status 1 (a run
/// stopped by a signal, with status 128 + the signal's number, as the shell reports it).
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // under mpirun: join the job (and finalise MPI when `_mpi` drops, on every rank); a
    // sweep does not join: it spreads its points over the processes, each training alone
    #[cfg(feature = "mpi")]
    let spread = matches!(cli.command, Command::Sweep(_));
    #[cfg(feature = "mpi")]
    let _mpi = match (!spread)
        .then(contrastive::dist::init)
        .transpose()
        .map(Option::flatten)
    {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Train(a) => train::run(a),
        Command::Data(c) => data::run(c),
        Command::Eval(a) => eval::run(a),
        Command::Embed(a) => embed::run(a),
        Command::Report(a) => report::run(a),
        Command::Presets(a) => presets::run(a),
        Command::Config(a) => config::run(a),
        Command::Sweep(a) => sweep::run(a),
        Command::Probe(c) => probe::run(c),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}");
            let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
            let world = contrastive::dist::world();
            let code = match e.downcast_ref::<contrastive::Error>() {
                Some(contrastive::Error::Interrupted { signal, .. }) => 128 + signal,
                _ => 1,
            };
            if world.size() > 1 && code > 128 {
                // every rank stopped at the same step (agreed in the loop), rank 0 saved it
                world.barrier();
                if world.is_root() {
                    eprintln!("error: {msg}");
                }
                return std::process::ExitCode::from(code as u8);
            }
            if world.size() > 1 {
                // the other ranks may be waiting in a collective: end the whole job
                eprintln!("error: rank {} of {}: {msg}", world.rank(), world.size());
                world.abort(code);
            }
            eprintln!("error: {msg}");
            std::process::ExitCode::from(code as u8)
        }
    }
}
