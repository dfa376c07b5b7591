//! End to end: `contrastive train` on a slice of real Fashion-MNIST.

use crate::common::{dataset, preset, train};
use contrastive::train::metrics;

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn train_on_2000_real_images_writes_the_run_directory() {
    let out = tempfile::tempdir().unwrap();
    let run = out.path().join("run");
    let sets = [
        format!("data.dir={}", dataset("fashion-mnist").display()),
        "data.limit=2000".into(),
        "train.batch_size=128".into(),
        "eval.linear_epochs=5".into(),
    ];
    let status = train(&preset("simclr-fashion-mnist"), &sets, &run)
        .status()
        .unwrap();
    assert!(status.success());
    for f in ["config.toml", "metrics.jsonl"] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let ckpts: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .collect();
    assert_eq!(ckpts.len(), 1, "one checkpoint after one epoch");
    let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(resolved.contains("limit = 2000"), "{resolved}");
    let m = metrics::read(&run.join("metrics.jsonl")).unwrap();
    let steps: Vec<f64> = m
        .iter()
        .filter(|r| r.get("images_per_s").is_none() && r.get("loss").is_some())
        .map(|r| r["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(steps.len(), 2000 / 128, "one record per step");
    let head: f64 = steps[..3].iter().sum::<f64>() / 3.0;
    let tail: f64 = steps[steps.len() - 3..].iter().sum::<f64>() / 3.0;
    assert!(
        tail < head - 0.1,
        "loss fell: first {head:.3}, last {tail:.3}"
    );
    let last = m.last().unwrap();
    for key in ["knn_top1", "linear_top1"] {
        let v = last[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {last}"));
        assert!(v > 0.3 && v <= 1.0, "{key} = {v}");
    }
    for r in &m {
        for key in ["epoch", "step"] {
            assert!(r[key].is_u64(), "{key} in {r}");
        }
    }
}
