//! Bad dataset files give one-line errors that name the file, from the library and the CLI.

use std::path::Path;

use crate::common::bin;
use contrastive::data::{self, idx};

fn write_set(dir: &Path, n_img: usize, n_lab: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (img, lab) in [
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ] {
        std::fs::write(
            dir.join(img),
            idx::encode(&[n_img, 28, 28], &vec![7; n_img * 784]),
        )
        .unwrap();
        std::fs::write(dir.join(lab), idx::encode(&[n_lab], &vec![1; n_lab])).unwrap();
    }
}

fn load_err(dir: &Path) -> String {
    let e = data::load("mnist", dir).unwrap_err().to_string();
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

#[test]
fn a_well_formed_set_loads() {
    let d = tempfile::tempdir().unwrap();
    write_set(d.path(), 3, 3);
    let ds = data::load("mnist", d.path()).unwrap();
    assert_eq!(ds.train.len(), 3);
    assert_eq!(ds.train.shape, [1, 28, 28]);
    assert!((ds.train.data[0] - 7.0 / 255.0).abs() < 1e-7);
}

#[test]
fn truncated_images_name_the_file_and_sizes() {
    let d = tempfile::tempdir().unwrap();
    write_set(d.path(), 3, 3);
    let f = d.path().join("train-images-idx3-ubyte");
    let b = std::fs::read(&f).unwrap();
    std::fs::write(&f, &b[..b.len() - 100]).unwrap();
    let e = load_err(d.path());
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("truncated") && e.contains("2352"),
        "{e}"
    );
}

#[test]
fn wrong_magic_is_named() {
    let d = tempfile::tempdir().unwrap();
    write_set(d.path(), 3, 3);
    let f = d.path().join("t10k-labels-idx1-ubyte");
    let mut b = std::fs::read(&f).unwrap();
    b[2] = 0x09;
    std::fs::write(&f, &b).unwrap();
    let e = load_err(d.path());
    assert!(
        e.contains("t10k-labels-idx1-ubyte") && e.contains("wrong magic number 0x00000901"),
        "{e}"
    );
}

#[test]
fn label_count_mismatch_names_both_counts() {
    let d = tempfile::tempdir().unwrap();
    write_set(d.path(), 3, 2);
    let e = load_err(d.path());
    assert!(
        e.contains("train-labels-idx1-ubyte") && e.contains("2 labels") && e.contains("3 images"),
        "{e}"
    );
}

#[test]
fn corrupt_gzip_is_named() {
    let d = tempfile::tempdir().unwrap();
    write_set(d.path(), 3, 3);
    std::fs::remove_file(d.path().join("train-images-idx3-ubyte")).unwrap();
    std::fs::write(
        d.path().join("train-images-idx3-ubyte.gz"),
        [0x1f, 0x8b, 8, 0, 1, 2, 3],
    )
    .unwrap();
    let e = load_err(d.path());
    assert!(
        e.contains("train-images-idx3-ubyte.gz") && e.contains("corrupt gzip"),
        "{e}"
    );
}

/// Issue 18, item 11: a stream that goes on far past what its IDX header declares is read
/// to the header's size plus one byte, not to its end (an endless one here; a gzip bomb
/// is one such stream, decompressed as it is parsed).
#[test]
fn a_stream_is_read_no_further_than_its_header_declares() {
    use std::io::Read;
    let header = idx::encode(&[3], &[1, 2, 3]);
    let endless = header.as_slice().chain(std::io::repeat(0));
    let e = idx::read_stream(Path::new("bomb"), endless)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bomb") && e.contains("trailing bytes"), "{e}");
    let exact = idx::read_stream(Path::new("ok"), header.as_slice()).unwrap();
    assert_eq!(exact.data, vec![1, 2, 3]);
}

/// Items 10 and 12: labels outside the classes and images of no pixels are refused when
/// the data is loaded, naming the file or folder.
#[test]
fn impossible_labels_and_empty_images_are_refused_at_load() {
    let d = tempfile::tempdir().unwrap();
    write_set(d.path(), 3, 3);
    let f = d.path().join("train-labels-idx1-ubyte");
    std::fs::write(&f, idx::encode(&[3], &[1, 12, 2])).unwrap();
    let e = data::load("fashion-mnist", d.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("label 12") && e.contains("10 classes"), "{e}");
    write_set(d.path(), 3, 3);
    for img in ["train-images-idx3-ubyte", "t10k-images-idx3-ubyte"] {
        std::fs::write(d.path().join(img), idx::encode(&[3, 0, 0], &[])).unwrap();
    }
    let e = load_err(d.path());
    assert!(e.contains("[1, 0, 0]") && e.contains("no values"), "{e}");
}

#[test]
fn the_cli_prints_one_line_and_fails() {
    let d = tempfile::tempdir().unwrap();
    write_set(d.path(), 3, 2);
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/simclr-fashion-mnist.toml");
    let out = bin()
        .args(["train", "--config"])
        .arg(&cfg)
        .arg("--set")
        .arg(format!("data.dir={}", d.path().display()))
        .args(["--set", "data.dataset=mnist", "--out"])
        .arg(d.path().join("run"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("2 labels but"),
        "{err}"
    );
}

#[test]
fn an_unknown_config_key_is_named_by_the_cli() {
    let d = tempfile::tempdir().unwrap();
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/simclr-fashion-mnist.toml");
    let out = bin()
        .args(["train", "--config"])
        .arg(&cfg)
        .args(["--set", "train.epoch=3", "--out"])
        .arg(d.path().join("run"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("train.epoch") && err.contains("unknown field"),
        "{err}"
    );
}

/// Every input of the fuzz corpora (`fuzz/corpus/<reader>/`: the seeds and what the
/// fuzzer kept) and every crash it found (`fuzz/regressions/<reader>/`) goes through its
/// reader again, on stable: an error is fine, a panic fails the test and names the file.
#[test]
fn the_fuzz_corpora_replay_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for (name, read) in contrastive::fuzz::READERS {
        let mut seen = 0;
        for sub in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(sub).join(name)) else {
                continue;
            };
            for e in entries.flatten() {
                let bytes = std::fs::read(e.path()).unwrap();
                let ran = std::panic::catch_unwind(|| read(&bytes));
                assert!(ran.is_ok(), "{name}: {} panicked", e.path().display());
                seen += 1;
            }
        }
        assert!(seen > 0, "no corpus for {name}");
        replayed += seen;
    }
    eprintln!("replayed {replayed} fuzz inputs");
}
