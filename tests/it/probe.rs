//! `contrastive probe invariance` on a trained run: every family and strength scored, the
//! same run compared with itself scores alike, and the run's report shows the probe.

use contrastive::study::invariance::{Family, Invariance};

use crate::common::{bin, dataset, preset, train};

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn the_invariance_probe_scores_every_family_and_reaches_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let data = format!("data.dir={}", dataset("fashion-mnist").display());
    let sets = [
        data.as_str(),
        "data.limit=512",
        "train.batch_size=128",
        "eval.linear_epochs=0",
        "eval.baseline=false",
        "eval.random_init=false",
        "eval.test_limit=300",
    ];
    let o = train(&preset("simclr-fashion-mnist"), sets, &run)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = bin()
        .args(["probe", "invariance"])
        .arg(&run)
        .arg("--compare")
        .arg(&run)
        .args(["--limit", "200"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("| rotation | 90 |"), "{table}");
    let text = std::fs::read_to_string(run.join("invariance/invariance.json")).unwrap();
    let inv: Invariance = serde_json::from_str(&text).unwrap();
    assert_eq!(inv.samples, 200);
    // grey images: no colour families; twelve of the image families' strengths at least
    assert!(inv.probes.iter().all(|p| p.family != Family::Hue));
    assert!(inv.probes.len() >= 20, "{}", inv.probes.len());
    for p in &inv.probes {
        assert!(p.h.is_finite() && p.h <= 1.0 + 1e-9, "{p:?}");
        assert!(p.z.is_finite() && p.z <= 1.0 + 1e-9, "{p:?}");
        let knn = p.knn_top1.unwrap();
        assert!((0.0..=1.0).contains(&knn), "{p:?}");
    }
    // a run compared with itself: its two column groups agree in every row
    for line in table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.contains("---"))
        .skip(1)
    {
        let cells: Vec<&str> = line.trim_end_matches(" |").split(" | ").collect();
        assert_eq!(cells[2..5], cells[5..8], "{line}");
    }
    assert!(run.join("invariance/invariance-0.png").exists());
    let o = bin().arg("report").arg(&run).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(page.contains("<h2>Invariances</h2>"));
    assert!(run.join("report/invariance-0.png").exists());
}

/// `data audit` on a real dataset: the class table, the duplicate count and the pictures.
#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn the_data_audit_reports_balance_duplicates_and_pictures() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("audit");
    let o = bin()
        .args(["data", "audit"])
        .arg(dataset("digits"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(out.join("audit.md")).unwrap();
    assert!(
        md.contains("## Class balance") && md.contains("| 0 |"),
        "{md}"
    );
    assert!(
        md.contains("test samples have a training sample within"),
        "{md}"
    );
    assert!(md.contains("Centre of mass"), "{md}");
    for f in [
        "audit.html",
        "duplicates.csv",
        "class-means.png",
        "centres.png",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
}
