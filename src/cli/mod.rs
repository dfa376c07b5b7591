//! Command-line interface: one file per subcommand, `anyhow` only here.

mod data;
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
}

/// Runs the command line; errors are printed as one line and exit with status 1.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train::run(a),
        Command::Data(c) => data::run(c),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!(
                "error: {}",
                msg.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            std::process::ExitCode::FAILURE
        }
    }
}
