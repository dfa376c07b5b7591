//! `contrastive config`: the resolved config a run would use, one key explained, or the
//! whole reference (docs/config.md).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use contrastive::reference;
use contrastive::Config;

#[derive(Args)]
pub struct ConfigArgs {
    /// TOML config to resolve (default: the built-in defaults).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Override a value, as `train --set` does (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Explain one key: its type, default, allowed names, meaning and value here.
    #[arg(long, value_name = "KEY", conflicts_with = "reference")]
    explain: Option<String>,
    /// Print the reference of every key as Markdown (docs/config.md).
    #[arg(long, conflicts_with_all = ["config", "set"])]
    reference: bool,
}

pub fn run(a: ConfigArgs) -> Result<()> {
    if a.reference {
        print!("{}", reference::markdown());
        return Ok(());
    }
    let cfg = match &a.config {
        Some(path) => Config::load(path, &a.set)?,
        None => Config::parse("", std::path::Path::new("(defaults)"), &a.set)?,
    };
    let Some(key) = a.explain else {
        print!("{}", cfg.to_toml());
        return Ok(());
    };
    let k = reference::explain(&key)?;
    println!("{}  ({}, default {})", k.key, k.ty, k.default);
    println!(
        "{}",
        k.meaning.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    for (name, meaning) in &k.allowed {
        println!(
            "  {name:<20} {}",
            meaning.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
    let table: toml::Table = cfg.to_toml().parse()?;
    let here = key
        .split('.')
        .try_fold(toml::Value::Table(table), |v, part| v.get(part).cloned());
    match (here, &a.config) {
        (Some(v), Some(path)) => println!("in {}: {v}", path.display()),
        (None, Some(path)) => println!("in {}: not set (none)", path.display()),
        _ => {}
    }
    Ok(())
}
