//! Command-line interface: one file per subcommand, `anyhow` only here.

mod data;
mod embed;
mod eval;
mod presets;
mod report;
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
}

/// Runs the command line; errors are printed as one line and exit with status 1 (a run
/// stopped by a signal, with status 128 + the signal's number, as the shell reports it).
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train::run(a),
        Command::Data(c) => data::run(c),
        Command::Eval(a) => eval::run(a),
        Command::Embed(a) => embed::run(a),
        Command::Report(a) => report::run(a),
        Command::Presets(a) => presets::run(a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!(
                "error: {}",
                msg.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            match e.downcast_ref::<contrastive::Error>() {
                Some(contrastive::Error::Interrupted { signal, .. }) => {
                    std::process::ExitCode::from((128 + signal) as u8)
                }
                _ => std::process::ExitCode::FAILURE,
            }
        }
    }
}
