//! End to end on a slice of real Fashion-MNIST: multi-crop training through
//! `contrastive train`, and `contrastive data info --config` drawing a config's views.

use std::path::{Path, PathBuf};

use crate::common::{bin, dataset, preset, train};
use contrastive::train::metrics;

fn fashion() -> PathBuf {
    dataset("fashion-mnist")
}

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn multi_crop_trains_end_to_end() {
    let out = tempfile::tempdir().unwrap();
    let run = out.path().join("run");
    let sets = [
        format!("data.dir={}", fashion().display()),
        "data.limit=256".into(),
        "train.batch_size=64".into(),
        "views.local_crops=2".into(),
        "views.local_size=12".into(),
        "views.augment.saturation=0.4".into(),
        "views.augment.blur_p=0.5".into(),
        "views.augment.solarize_p=0.2".into(),
        "eval.linear_epochs=0".into(),
        "eval.baseline=false".into(),
        "eval.test_limit=500".into(),
    ];
    let res = train(&preset("simclr-fashion-mnist"), &sets, &run)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(resolved.contains("local_crops = 2"), "{resolved}");
    let m = metrics::read(&run.join("metrics.jsonl")).unwrap();
    let losses: Vec<f64> = m
        .iter()
        .filter(|r| r.get("images_per_s").is_none())
        .filter_map(|r| r.get("loss").and_then(|l| l.as_f64()))
        .collect();
    assert_eq!(losses.len(), 256 / 64, "one record per step");
    assert!(
        losses.iter().all(|l| l.is_finite() && *l > 0.0),
        "{losses:?}"
    );
    let knn = m.last().unwrap()["knn_top1"].as_f64().unwrap();
    assert!(knn > 0.1 && knn <= 1.0, "knn_top1 = {knn}");
}

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn data_info_draws_views_with_a_config_s_augmentation() {
    let d = tempfile::tempdir().unwrap();
    let draw = |name: &str, config: Option<&Path>| {
        let png = d.path().join(name);
        let mut cmd = bin();
        cmd.args(["data", "info"])
            .arg(fashion())
            .arg("--out")
            .arg(&png);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let res = cmd.output().unwrap();
        (res, png)
    };
    let strong = d.path().join("strong.toml");
    std::fs::write(&strong, "[views.augment]\nsolarize_p = 1.0\nblur_p = 1.0\n").unwrap();
    let (plain, plain_png) = draw("plain.png", None);
    let (solar, solar_png) = draw("solar.png", Some(&strong));
    assert!(plain.status.success() && solar.status.success());
    assert_ne!(
        std::fs::read(plain_png).unwrap(),
        std::fs::read(solar_png).unwrap(),
        "the config's augmentation draws other views"
    );
    let bad = d.path().join("bad.toml");
    std::fs::write(&bad, "[views.augment]\nblur_p = 2.0\n").unwrap();
    let (res, _) = draw("bad.png", Some(&bad));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        !res.status.success() && err.contains("views.augment.blur_p"),
        "{err}"
    );
}
