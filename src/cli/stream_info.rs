//! `data info`, `data index` and `data bench` for streamed image collections.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use rayon::prelude::*;

use contrastive::data::loader::{epoch_order, EpochLoader, Prefetch};
use contrastive::data::stream::{self, decode, index::Index};
use contrastive::data::Source;
use contrastive::views::augment::AugmentConfig;
use contrastive::views::transform::TransformViews;

/// Whether `path` is read as a streamed collection by `data info`: a manifest, or a folder
/// holding an index file or tar shards, or class folders of images that only a recursive
/// walk reads (no `train/` folder and no images at the top).
pub fn is_stream(path: &Path) -> bool {
    let ext = |p: &Path, x: &str| p.extension().is_some_and(|e| e.eq_ignore_ascii_case(x));
    if path.is_file() {
        return ext(path, "csv") || ext(path, "jsonl");
    }
    let top: Vec<std::path::PathBuf> = std::fs::read_dir(path)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    path.join(stream::index::INDEX_FILE).is_file()
        || top.iter().any(|p| ext(p, "tar"))
        || (!path.join("train").is_dir()
            && !top.iter().any(|p| stream::index::is_image(p))
            && top.iter().filter(|p| p.is_dir()).any(|d| holds_images(d)))
}

/// Whether folder `dir` holds an image file directly.
fn holds_images(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|d| d.flatten().any(|e| stream::index::is_image(&e.path())))
}

/// Fills in every entry's width, height and channels from its header, in parallel.
pub fn read_sizes(idx: &mut Index) -> Result<()> {
    let sizes: Vec<(usize, usize, usize)> = idx
        .entries
        .par_iter()
        .map(|e| {
            let bytes = stream::read(idx, e)?;
            decode::header(&bytes).map_err(|m| contrastive::Error::data(idx.file(e), m))
        })
        .collect::<contrastive::Result<_>>()?;
    for (e, (w, h, c)) in idx.entries.iter_mut().zip(sizes) {
        (e.width, e.height, e.channels) = (w as u32, h as u32, c as u8);
    }
    Ok(())
}

/// The value at quantile `q` of sorted `v`.
fn quantile(v: &[f64], q: f64) -> f64 {
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// `data info` of a streamed collection: counts per split and class, and the
/// distribution of image sizes (from the index, else from every image's header).
pub fn info(path: &Path) -> Result<()> {
    let mut idx = Index::open(path, 0.1)?;
    if idx.entries.iter().any(|e| e.width == 0) {
        read_sizes(&mut idx)?;
    }
    let test = idx.entries.iter().filter(|e| e.test).count();
    println!(
        "dataset: images, streamed ({:?}, {})",
        idx.kind,
        path.display()
    );
    println!(
        "images: {} ({} train, {test} test), {} classes",
        idx.entries.len(),
        idx.entries.len() - test,
        idx.classes.len()
    );
    for (name, t) in [("train", false), ("test", true)] {
        let labels: Vec<u32> = idx
            .entries
            .iter()
            .filter(|e| e.test == t)
            .map(|e| e.label)
            .collect();
        println!("{name}: {}", class_counts(&idx.classes, &labels));
    }
    let sorted = |f: &dyn Fn(&stream::index::Entry) -> f64| {
        let mut v: Vec<f64> = idx.entries.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let rows = [
        ("width (px)", sorted(&|e| f64::from(e.width))),
        ("height (px)", sorted(&|e| f64::from(e.height))),
        (
            "megapixels",
            sorted(&|e| f64::from(e.width) * f64::from(e.height) / 1e6),
        ),
        (
            "aspect (w/h)",
            sorted(&|e| f64::from(e.width) / f64::from(e.height.max(1))),
        ),
        (
            "file (KiB)",
            sorted(&|e| match e.member {
                Some((_, len)) => len as f64 / 1024.0,
                None => e.stamp.bytes as f64 / 1024.0,
            }),
        ),
    ];
    println!(
        "{:<14} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "size", "min", "10%", "median", "90%", "max"
    );
    for (name, v) in rows {
        let q: Vec<String> = [0.0, 0.1, 0.5, 0.9, 1.0]
            .iter()
            .map(|&q| format!("{:>9.3}", quantile(&v, q)))
            .collect();
        println!("{name:<14} {}", q.join(" "));
    }
    let grey = idx.entries.iter().filter(|e| e.channels == 1).count();
    println!("colour: {} RGB, {grey} grey", idx.entries.len() - grey);
    Ok(())
}

/// What `data bench` times.
#[derive(clap::Args)]
pub struct Bench {
    /// The folder, shard folder or manifest.
    pub path: PathBuf,
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Side of the views.
    #[arg(long, default_value_t = 224)]
    pub size: usize,
    /// Batches timed.
    #[arg(long, default_value_t = 40)]
    pub batches: usize,
    /// Batches read before the timing starts.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[arg(long, default_value_t = 2)]
    pub views: usize,
    /// Leave the colour jitter out.
    #[arg(long)]
    pub no_jitter: bool,
    /// `data.cache_mb` (0: decode every image every time, as PyTorch's loader does).
    #[arg(long, default_value_t = 0)]
    pub cache_mb: u64,
    /// Batches prepared ahead (`data.prefetch`).
    #[arg(long, default_value_t = 2)]
    pub prefetch: usize,
    /// Decode JPEGs at 1/4 or 1/8 scale where the crops allow (`data.reduced_decode`).
    #[arg(long)]
    pub reduced: bool,
}

/// The process's peak resident memory in MiB (`VmHWM`), where `/proc` has it.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs the loader over shuffled training batches of the collection at `path` and
/// returns the JSON line of its throughput.
pub fn bench(b: &Bench) -> Result<String> {
    let path = b.path.as_path();
    let options = stream::Options {
        side: b.size,
        max_pixels: contrastive::data::MAX_PIXELS,
        skip_bad: false,
        cache_bytes: b.cache_mb << 20,
        holdout: 0.1,
        reduced_decode: b.reduced,
    };
    let train = stream::open(path, &options)?.train;
    let channels = train.shape()[0];
    let source = Arc::new(Source::Stream(train));
    let augment = AugmentConfig {
        size: b.size,
        jitter_p: if b.no_jitter { 0.0 } else { 0.8 },
        saturation: 0.4,
        hue: 0.1,
        ..AugmentConfig::default()
    };
    let sampler = Arc::new(TransformViews {
        augment: vec![augment; b.views],
        mean: vec![0.5; channels],
        std: vec![0.25; channels],
    });
    let n = source.len();
    let total = b.warmup + b.batches;
    let mut order = Vec::with_capacity(total * b.batch);
    for epoch in 0.. {
        if order.len() >= total * b.batch {
            break;
        }
        let mut o = epoch_order(0, epoch, n);
        o.truncate(n / b.batch * b.batch);
        anyhow::ensure!(
            !o.is_empty(),
            "{}: fewer than --batch {} images",
            path.display(),
            b.batch
        );
        order.extend(o);
    }
    order.truncate(total * b.batch);
    let prefetch = Prefetch::new(b.prefetch, b.workers, true)?;
    let loader = EpochLoader::new(source, sampler, order, b.batch, (0, 0), 0, (0, 1), prefetch);
    let mut t0 = Instant::now();
    for (k, got) in loader.enumerate() {
        got.with_context(|| format!("batch {k}"))?;
        if k + 1 == b.warmup {
            t0 = Instant::now();
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let images = (b.batches * b.batch) as f64;
    let out = serde_json::json!({
        "images_per_s": images / secs,
        "views_per_s": images * b.views as f64 / secs,
        "batches": b.batches,
        "workers": b.workers,
        "batch": b.batch,
        "size": b.size,
        "seconds": secs,
        "peak_rss_mb": peak_rss_mb(),
        "views": b.views,
        "jitter": !b.no_jitter,
        "cached": b.cache_mb > 0,
    });
    Ok(out.to_string())
}

/// `name: count` of each class among `labels`, then the unlabelled ones (labels outside
/// the classes), comma-separated.
pub(super) fn class_counts(names: &[String], labels: &[u32]) -> String {
    let mut counts = vec![0usize; names.len()];
    for &l in labels {
        if let Some(c) = counts.get_mut(l as usize) {
            *c += 1;
        }
    }
    let unlabelled = labels.len() - counts.iter().sum::<usize>();
    let mut parts: Vec<String> = names
        .iter()
        .zip(&counts)
        .map(|(n, c)| format!("{n}: {c}"))
        .collect();
    if unlabelled > 0 {
        parts.push(format!("unlabelled: {unlabelled}"));
    }
    parts.join(", ")
}
