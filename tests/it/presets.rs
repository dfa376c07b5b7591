//! Every preset in configs/ trains end to end through `contrastive train` on a small
//! slice of its real dataset, and its run reports finite losses and an accuracy.

use std::path::Path;

use crate::common::{dataset, preset, train};
use contrastive::train::metrics;

/// Trains `name` with `extra` overrides into `out/name`; returns the final record.
fn smoke(name: &str, out: &Path, extra: &[String]) -> serde_json::Value {
    let cfg = contrastive::config::Config::load(&preset(name), &[]).unwrap();
    let data = dataset(cfg.data.dataset.as_str());
    let run = out.join(name);
    let sets = [
        format!("data.dir={}", data.display()),
        "eval.linear_epochs=0".into(),
        "eval.baseline=false".into(),
        "eval.test_limit=300".into(),
    ]
    .into_iter()
    .chain(extra.iter().cloned());
    let output = train(&preset(name), sets, &run).output().unwrap();
    assert!(
        output.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let m = metrics::read(&run.join("metrics.jsonl")).unwrap();
    let losses: Vec<f64> = m.iter().filter_map(|r| r["loss"].as_f64()).collect();
    assert!(
        !losses.is_empty() && losses.iter().all(|l| l.is_finite()),
        "{name}"
    );
    let last = m.last().unwrap().clone();
    let knn = last["knn_top1"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&knn), "{name}: {knn}");
    last
}

fn images(extra: &[&str]) -> Vec<String> {
    ["data.limit=512", "train.batch_size=128", "train.epochs=1"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn every_image_preset_trains() {
    let out = tempfile::tempdir().unwrap();
    for name in [
        "simclr-fashion-mnist",
        "moco-v2-fashion-mnist",
        "instdisc-fashion-mnist",
        "supcon-fashion-mnist",
        "triplet-fashion-mnist",
        "byol-fashion-mnist",
        "barlow-twins-fashion-mnist",
        "vicreg-fashion-mnist",
        "swav-fashion-mnist",
        "dim-fashion-mnist",
        "nnclr-fashion-mnist",
        "dcl-fashion-mnist",
        "dclw-fashion-mnist",
        "simsiam-fashion-mnist",
        "dino-fashion-mnist",
        "moco-v3-fashion-mnist",
    ] {
        smoke(name, out.path(), &images(&[]));
    }
    // Prototypes are assigned from the second epoch on, every step here.
    smoke(
        "pcl-fashion-mnist",
        out.path(),
        &images(&[
            "train.epochs=2",
            "views.recluster_every=1",
            "loss.proto.clusters=[5, 10]",
        ]),
    );
    let teacher = format!(
        "keys.teacher={}",
        out.path().join("simclr-fashion-mnist").display()
    );
    smoke(
        "crd-fashion-mnist",
        out.path(),
        &images(&[teacher.as_str()]),
    );
}

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn every_series_preset_trains() {
    let out = tempfile::tempdir().unwrap();
    for name in [
        "cmc-basic-motions",
        "cmc-japanese-vowels",
        "cpc-osuleaf",
        "cpc-quantized-osuleaf",
        "tcl-osuleaf",
    ] {
        smoke(name, out.path(), &["train.epochs=2".to_string()]);
    }
}

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn multisensory_presets_refuse_channels_the_data_lacks() {
    let out = tempfile::tempdir().unwrap();
    let sets = [
        format!("data.dir={}", dataset("ucr/BasicMotions").display()),
        "views.modalities=[[0, 1, 2], [3, 4, 9]]".into(),
    ];
    let output = train(&preset("cmc-basic-motions"), &sets, &out.path().join("run"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("views.modalities") && err.contains("9") && err.lines().count() == 1,
        "{err}"
    );
}

/// The online probe reports its training and test accuracy at every epoch's end, and
/// learns: above chance (0.1 on ten classes) after a few steps.
#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn the_online_probe_reports_every_epoch_and_learns() {
    let out = tempfile::tempdir().unwrap();
    smoke(
        "simclr-fashion-mnist",
        out.path(),
        &images(&[
            "train.epochs=2",
            "eval.online_probe=true",
            "data.limit=1024",
        ]),
    );
    let m = metrics::read(&out.path().join("simclr-fashion-mnist/metrics.jsonl")).unwrap();
    let ends: Vec<&serde_json::Value> = m
        .iter()
        .filter(|r| r["epoch_seconds"].is_number())
        .collect();
    assert_eq!(ends.len(), 2);
    for r in &ends {
        let train = r["online_probe_train_top1"].as_f64().unwrap();
        let test = r["online_probe_top1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&train), "{r}");
        assert!(test > 0.15, "online probe at chance: {r}");
    }
}
