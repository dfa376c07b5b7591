//! Bad dataset files give one-line errors that name the file, from the library and the CLI.

mod common;

use std::path::Path;

use common::bin;
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
