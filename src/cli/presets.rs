//! `contrastive presets`.

use anyhow::{bail, Result};
use clap::Args;

use contrastive::presets;

#[derive(Args)]
pub struct PresetsArgs {
    /// Print the TOML of preset NAME instead of the list (save it and pass it to
    /// `contrastive train --config`).
    #[arg(long, value_name = "NAME")]
    show: Option<String>,
}

pub fn run(a: PresetsArgs) -> Result<()> {
    let all = presets::all();
    match a.show {
        Some(name) => match all.iter().find(|p| p.name == name) {
            Some(p) => print!("{}", p.text),
            None => {
                let names: Vec<&str> = all.iter().map(|p| p.name).collect();
                bail!("no preset `{name}`; presets: {}", names.join(", "))
            }
        },
        None => {
            let w = all.iter().map(|p| p.name.len()).max().unwrap_or(0);
            for p in &all {
                println!("{:<w$}  {}", p.name, p.description);
            }
        }
    }
    Ok(())
}
