//! A teacher read from ONNX: its embeddings equal PyTorch's for the same graph, bad files
//! are one-line errors naming the file, and CRD trains from it through `contrastive train`.

use std::path::{Path, PathBuf};

use crate::common::{dataset, fixture, floats, preset, rel_err, train};
use contrastive::encoder::onnx::OnnxEncoder;
use contrastive::train::metrics;

fn teacher_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/teacher.onnx")
}

#[test]
fn embeddings_equal_pytorch_in_a_batch_and_one_by_one() {
    let f = fixture("onnx_teacher.json");
    let (x, want) = (floats(&f["input"]), floats(&f["output"]));
    let t = OnnxEncoder::open(&teacher_path(), [1, 28, 28]).unwrap();
    assert_eq!(t.dim, 32);
    let batch = t.embed(&x, 5).unwrap();
    assert!(rel_err(&batch, &want) < 1e-5, "{}", rel_err(&batch, &want));
    let single: Vec<f32> = x
        .chunks(784)
        .flat_map(|row| t.embed(row, 1).unwrap())
        .collect();
    assert!(rel_err(&single, &want) < 1e-5);
}

#[test]
fn unreadable_or_mismatched_teachers_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"not a protobuf at all \x00\xff\x13").unwrap();
    let missing = dir.path().join("missing.onnx");
    for (path, sample) in [
        (missing.as_path(), [1, 28, 28]),
        (garbage.as_path(), [1, 28, 28]),
        (teacher_path().as_path(), [3, 32, 32]),
    ] {
        let e = OnnxEncoder::open(path, sample).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("teacher {}", path.display())) && e.lines().count() == 1,
            "{e}"
        );
    }
}

/// `contrastive train` with the CRD preset and the ONNX teacher, on 512 real images.
fn crd(out: &Path, extra: &[&str]) -> std::process::Output {
    let sets = [
        format!("data.dir={}", dataset("fashion-mnist").display()),
        format!("keys.teacher={}", teacher_path().display()),
    ]
    .into_iter()
    .chain(
        [
            "data.limit=512",
            "train.batch_size=128",
            "eval.linear_epochs=0",
            "eval.baseline=false",
            "eval.test_limit=300",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string()),
    );
    train(&preset("crd-fashion-mnist"), sets, out)
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn crd_distils_from_an_onnx_teacher() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let output = crd(&run, &["head.out=32"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let m = metrics::read(&run.join("metrics.jsonl")).unwrap();
    let losses: Vec<f64> = m.iter().filter_map(|r| r["loss"].as_f64()).collect();
    assert!(!losses.is_empty() && losses.iter().all(|l| l.is_finite()));

    let output = crd(&dir.path().join("wrong"), &["head.out=128"]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("head.out") && err.contains("embedding size 32") && err.lines().count() == 1,
        "{err}"
    );
}
