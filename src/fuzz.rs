//! One entry point per reader of outside bytes, shared by the cargo-fuzz targets in
//! `fuzz/` and by the test that replays their saved corpora on stable
//! (`tests/it/data_errors.rs`). Each writes the bytes where the loader reads them, in a
//! folder of its own thread, and runs the loader: it may return an error, and must never
//! panic, abort or hang.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use crate::data::{self, cifar, idx};
use crate::train::checkpoint::Checkpoint;

/// Images larger than this are refused by the fuzzed folder loader (`data.max_pixels`),
/// which keeps one input's memory within libFuzzer's limit.
const FUZZ_MAX_PIXELS: u64 = 1 << 20;

/// A reader of outside bytes, as the fuzz targets call it.
pub type Reader = fn(&[u8]);

/// The readers by the names of their fuzz targets and corpus folders.
pub const READERS: [(&str, Reader); 9] = [
    ("idx", idx_file),
    ("cifar", cifar_records),
    ("image", image_folder),
    ("ts", ucr_ts),
    ("tsv", ucr_tsv),
    ("digits", digits_csv),
    ("config", config_toml),
    ("checkpoint", checkpoint_file),
    ("stream", streamed_collection),
];

/// Runs `read` on a fresh, empty folder of this thread's, removed afterwards.
fn in_scratch(read: impl FnOnce(&Path)) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static DIR: PathBuf = std::env::temp_dir().join(format!(
            "contrastive-fuzz-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
    }
    let d = DIR.with(PathBuf::clone);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("a scratch folder");
    read(&d);
    let _ = std::fs::remove_dir_all(&d);
}

fn put(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).expect("a scratch file");
    f.write_all(data).expect("scratch write");
    p
}

/// An IDX file, plain or gzip, as MNIST's loader reads each of its four files.
pub fn idx_file(data: &[u8]) {
    in_scratch(|d| {
        let _ = idx::read(&put(d, "x", data));
    });
}

/// CIFAR-10 and CIFAR-100 binary records.
pub fn cifar_records(data: &[u8]) {
    for v in [cifar::Variant::Cifar10, cifar::Variant::Cifar100] {
        let _ = cifar::parse(v, Path::new("fuzz.bin"), data);
    }
}

/// One image (PNG, JPEG or anything else) in an unlabelled image folder.
pub fn image_folder(data: &[u8]) {
    in_scratch(|d| {
        put(d, "a.png", data);
        let _ = data::load_limited("folder", d, FUZZ_MAX_PIXELS);
    });
}

/// A UCR/UEA problem whose train and test files are both `data`, as `.ts`.
pub fn ucr_ts(data: &[u8]) {
    ucr(data, "ts");
}

/// The same as `.tsv`.
pub fn ucr_tsv(data: &[u8]) {
    ucr(data, "tsv");
}

fn ucr(data: &[u8], ext: &str) {
    in_scratch(|d| {
        put(d, &format!("P_TRAIN.{ext}"), data);
        put(d, &format!("P_TEST.{ext}"), data);
        let _ = data::load("ucr", d);
    });
}

/// The digits CSV, plain or gzip.
pub fn digits_csv(data: &[u8]) {
    in_scratch(|d| {
        put(d, "digits.csv", data);
        let _ = data::load("digits", d);
    });
}

/// A TOML config and `--set` overrides: the bytes before the first NUL are the file, the
/// lines after it the overrides.
pub fn config_toml(data: &[u8]) {
    let (text, sets) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(text);
    let sets: Vec<String> = String::from_utf8_lossy(sets)
        .lines()
        .map(String::from)
        .collect();
    if let Ok(cfg) = crate::Config::parse(&text, Path::new("fuzz.toml"), &sets) {
        let _ = crate::Config::parse(&cfg.to_toml(), Path::new("resolved.toml"), &[]);
    }
}

/// A checkpoint file as it is, and the same bytes sealed with a valid checksum, so that
/// the parser behind the checksum is reached too.
pub fn checkpoint_file(data: &[u8]) {
    let _ = Checkpoint::from_bytes(data);
    let mut sealed = data.to_vec();
    sealed.extend_from_slice(&Sha256::digest(data));
    let _ = Checkpoint::from_bytes(&sealed);
}

/// The bytes as each file a streamed collection is read from: a CSV and a JSON Lines
/// manifest (listing an image file of the same bytes), an index file, and a tar shard;
/// every collection that opens has its first samples read for training and evaluation.
pub fn streamed_collection(data: &[u8]) {
    use crate::data::stream;
    let options = stream::Options {
        side: 8,
        max_pixels: FUZZ_MAX_PIXELS,
        skip_bad: true,
        cache_bytes: 0,
        holdout: 0.5,
        reduced_decode: true,
    };
    let read = |path: &Path| {
        if let Ok(opened) = stream::open(path, &options) {
            for s in [opened.train, opened.test] {
                let n = s.len().min(2);
                let _ = s.pick(&(0..n).collect::<Vec<_>>());
                if n > 0 {
                    let _ = s.image(0);
                    let _ = s.image_planned(0, &|_| 8);
                }
            }
        }
    };
    in_scratch(|d| {
        put(d, "a.png", data);
        read(&put(d, "list.csv", data));
        read(&put(d, "list.jsonl", data));
        let folder = d.join("indexed");
        std::fs::create_dir_all(&folder).expect("a scratch folder");
        put(&folder, stream::index::INDEX_FILE, data);
        put(&folder, "a.png", data);
        read(&folder);
        let shards = d.join("shards");
        std::fs::create_dir_all(&shards).expect("a scratch folder");
        put(&shards, "train-0.tar", data);
        read(&shards);
    });
}
