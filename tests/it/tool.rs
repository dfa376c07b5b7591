//! The tool around the framework: `eval`, `embed` (checked by NumPy), `report` (opened in
//! headless Chromium), `presets` and every subcommand's `--help`, on one small trained run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::common::{bin, dataset, preset, train};
use contrastive::train::metrics;

const TRAIN: usize = 1024;
const TEST: usize = 1000;

/// One run shared by every test: SimCLR for one epoch on 1,024 Fashion-MNIST images.
fn trained() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let run = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tool-run");
        let _ = std::fs::remove_dir_all(&run);
        let sets = [
            format!("data.dir={}", dataset("fashion-mnist").display()),
            format!("data.limit={TRAIN}"),
            format!("eval.test_limit={TEST}"),
            "train.batch_size=128".into(),
            "eval.linear_epochs=5".into(),
            "eval.baseline=false".into(),
        ];
        ok(train(&preset("simclr-fashion-mnist"), &sets, &run)
            .output()
            .unwrap());
        run
    })
}

/// `o` succeeded; its stdout.
fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `o` failed with one `error: ` line on stderr; that line.
fn failed(o: Output) -> String {
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn eval_prints_and_writes_every_score() {
    let run = trained();
    let out = ok(bin().arg("eval").arg(run).output().unwrap());
    for want in [
        "kNN top-1 (k=200, t=0.1)",
        "linear probe top-1",
        "alignment",
        "uniformity",
        "Ankle boot",
        "confusion matrix",
    ] {
        assert!(out.contains(want), "{want} missing from:\n{out}");
    }
    let e = json(&run.join("eval.json"));
    let knn = e["knn"]["top1"].as_f64().unwrap();
    let final_knn = metrics::read(&run.join("metrics.jsonl"))
        .unwrap()
        .last()
        .unwrap()["knn_top1"]
        .as_f64()
        .unwrap();
    assert_eq!(
        knn, final_knn,
        "eval agrees with the training's final evaluation"
    );
    let lin = e["linear"]["top1"].as_f64().unwrap();
    assert!(
        knn > 0.3 && lin > 0.3 && lin <= 1.0,
        "kNN {knn}, linear {lin}"
    );
    let ds = contrastive::data::load("fashion-mnist", &dataset("fashion-mnist")).unwrap();
    let counts = ds.test.truncate(TEST).label_counts(10);
    let rows: Vec<usize> = e["knn"]["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .sum()
        })
        .collect();
    assert_eq!(rows, counts, "confusion rows sum to the class counts");
    assert_eq!(e["knn"]["per_class"].as_array().unwrap().len(), 10);
    assert_eq!(e["linear"]["per_class"].as_array().unwrap().len(), 10);
    for key in ["alignment", "uniformity"] {
        let v = e[key].as_f64().unwrap();
        assert!(v.is_finite(), "{key} = {v}");
    }
    let a = e["alignment"].as_f64().unwrap();
    assert!((0.0..=4.0).contains(&a), "alignment {a}");
    assert!(e["uniformity"].as_f64().unwrap() <= 0.0);
}

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn eval_errors_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-run");
    let err = failed(bin().arg("eval").arg(&missing).output().unwrap());
    assert!(err.contains(&missing.display().to_string()), "{err}");

    let fake = tmp.path().join("run");
    std::fs::create_dir_all(fake.join("checkpoints")).unwrap();
    std::fs::copy(trained().join("config.toml"), fake.join("config.toml")).unwrap();
    let ckpt = fake.join("checkpoints/step-000000001.ckpt");
    std::fs::write(&ckpt, b"not a checkpoint at all").unwrap();
    for path in [&fake, &ckpt] {
        let err = failed(bin().arg("eval").arg(path).output().unwrap());
        assert!(err.contains(&ckpt.display().to_string()), "{err}");
    }
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = failed(bin().arg("eval").arg(&empty).output().unwrap());
    assert!(err.contains(&empty.display().to_string()), "{err}");
}

/// A Python interpreter with NumPy, if there is one.
fn python_with_numpy() -> Option<String> {
    let candidates = std::env::var("CONTRASTIVE_PYTHON")
        .into_iter()
        .chain(["python3", "/usr/bin/python3", "python"].map(String::from));
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import numpy"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Weighted kNN as src/eval/knn.rs does it: cosine of rows L2-normalised in float32, the
/// k most similar training rows vote with weight exp(sim / t), the first class with the
/// largest weight wins. Similarities are taken in float64 (Rust's float32 kernel sums in
/// another order); queries whose k-th and (k+1)-th similarities, or whose two best classes'
/// weights, lie within float32 rounding (1e-6) of each other count as ambiguous. Prints the
/// correct predictions, the ambiguous queries, the test rows and the dimension.
const KNN_PY: &str = r#"
import sys
import numpy as np
d, k, t, classes = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
load = lambda name: np.load(f"{d}/{name}.npy")
tr, te = load("train_embeddings"), load("test_embeddings")
ytr, yte = load("train_labels"), load("test_labels")
assert tr.dtype == np.float32 and te.dtype == np.float32, (tr.dtype, te.dtype)
assert ytr.dtype == np.int64 and load("test_indices").dtype == np.int64
assert (load("train_indices") == np.arange(len(tr))).all()
norm = lambda x: x / np.maximum(np.sqrt((x * x).sum(1, keepdims=True)), np.float32(1e-12))
sims = norm(te).astype(np.float64) @ norm(tr).astype(np.float64).T
k = min(k, len(tr))
idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
w = np.exp(np.take_along_axis(sims, idx, 1) / t)
votes = ytr[idx]
score = np.stack([(w * (votes == c)).sum(1) for c in range(classes)], 1)
ranked = -np.sort(-sims, 1)
gap = ranked[:, k - 1] - ranked[:, k] if k < len(tr) else np.ones(len(te))
best = np.sort(score, 1)
margin = (best[:, -1] - best[:, -2]) / best[:, -1]
ambiguous = int(((gap < 1e-6) | (margin < 1e-6)).sum())
print(int((score.argmax(1) == yte).sum()), ambiguous, len(yte), tr.shape[1])
"#;

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn embed_loads_in_numpy_and_gives_evals_knn() {
    let Some(python) = python_with_numpy() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no python with numpy in CI: scripts/test.sh installs python3-numpy"
        );
        println!("skipped: no python with numpy (scripts/test.sh installs python3-numpy)");
        return;
    };
    let run = trained();
    let ckpt = contrastive::train::rundir::list_checkpoints(&run.join("checkpoints"))
        .unwrap()
        .pop()
        .unwrap();
    ok(bin()
        .arg("eval")
        .arg(&ckpt)
        .arg("--no-linear")
        .output()
        .unwrap());
    let e = json(&ckpt.with_extension("eval.json"));
    assert!(e["linear"].is_null());
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(bin()
        .arg("embed")
        .arg(run)
        .args(["--split", "both", "--out"])
        .arg(tmp.path())
        .output()
        .unwrap());
    assert!(out.contains("train: 1024 x 256"), "{out}");
    let py = ok(Command::new(&python)
        .args(["-c", KNN_PY])
        .arg(tmp.path())
        .args(["200", "0.1", "10"])
        .output()
        .unwrap());
    let got: Vec<usize> = py.split_whitespace().map(|v| v.parse().unwrap()).collect();
    assert_eq!(got[2..], [TEST, 256]);
    let (numpy, ambiguous) = (got[0], got[1]);
    let rust = e["knn"]["correct"].as_u64().unwrap() as usize;
    assert!(
        numpy.abs_diff(rust) <= ambiguous,
        "NumPy's kNN finds {numpy} correct, `contrastive eval` {rust} ({ambiguous} ambiguous)"
    );
    println!("kNN correct: NumPy {numpy}, eval {rust}, {ambiguous} queries within rounding");

    let out = ok(bin()
        .arg("embed")
        .arg(run)
        .args(["--projection", "--limit", "10", "--out"])
        .arg(tmp.path())
        .output()
        .unwrap());
    assert!(out.contains("test: 10 x 128 (z)"), "{out}");
    let idx = std::fs::read(tmp.path().join("test_indices.npy")).unwrap();
    let last = i64::from_le_bytes(idx[idx.len() - 8..].try_into().unwrap());
    assert_eq!(last, 900, "indices spread over the split");
}

/// Mean and variance of all channel values of a PNG, and whether it has one colour only.
fn picture_stats(path: &Path) -> (f64, bool) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    let first = *img.get_pixel(0, 0);
    let single = img.pixels().all(|p| *p == first);
    let n = (img.width() * img.height() * 3) as f64;
    let mean = img.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = img
        .as_raw()
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (var, single)
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn report_renders_in_headless_chromium() {
    let run = trained();
    let page = run.join("report.html");
    ok(bin().arg("report").arg(run).output().unwrap());
    let html = std::fs::read_to_string(&page).unwrap();
    let pictures: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    for name in ["loss", "lr", "knn", "pca", "tsne", "neighbours"] {
        assert!(
            pictures.contains(&format!("report/{name}.png").as_str()),
            "{name} missing from {pictures:?}"
        );
    }
    for p in &pictures {
        let (var, single) = picture_stats(&run.join(p));
        assert!(!single && var > 10.0, "{p} is blank (variance {var})");
    }
    for want in ["Ankle boot", "[encoder]", "alignment", "confusion"] {
        assert!(html.contains(want), "{want} missing from the page");
    }

    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no chromium in CI: scripts/test.sh installs it"
        );
        println!("skipped the screenshot: no chromium (scripts/test.sh installs it)");
        return;
    };
    let shot = run.join("screenshot.png");
    let _ = std::fs::remove_file(&shot);
    let o = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,3000")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (var, single) = picture_stats(&shot);
    assert!(!single && var > 100.0, "blank screenshot (variance {var})");
}

#[test]
fn help_explains_every_option() {
    for (cmd, options) in [
        (
            "train",
            &["--config", "--set", "--out", "--resume", "--quiet"][..],
        ),
        (
            "eval",
            &[
                "RUN_DIR_OR_CHECKPOINT",
                "--k",
                "--temperature",
                "--no-linear",
                "--set",
            ],
        ),
        (
            "embed",
            &[
                "RUN_DIR_OR_CHECKPOINT",
                "--split",
                "--projection",
                "--out",
                "--limit",
                "--set",
            ],
        ),
        ("report", &["RUN_DIR", "--out", "--set"]),
        ("presets", &["--show"]),
    ] {
        let help = ok(bin().args([cmd, "--help"]).output().unwrap());
        for o in options {
            assert!(help.contains(o), "{cmd} --help lacks {o}:\n{help}");
        }
        let documented = help
            .lines()
            .filter(|l| l.trim_start().starts_with('-'))
            .count();
        assert!(
            documented > options.len().saturating_sub(1),
            "{cmd} --help:\n{help}"
        );
    }
}

#[test]
fn presets_lists_every_config_with_its_description() {
    let out = ok(bin().arg("presets").output().unwrap());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let name = p.file_stem().unwrap().to_str().unwrap();
        let first = std::fs::read_to_string(&p).unwrap();
        let desc = first.lines().next().unwrap().trim_start_matches('#').trim();
        assert!(
            out.lines()
                .any(|l| l.starts_with(name) && l.ends_with(desc)),
            "{name}: {desc} missing from:\n{out}"
        );
    }
    let toml = ok(bin()
        .args(["presets", "--show", "simclr-fashion-mnist"])
        .output()
        .unwrap());
    assert!(toml.contains("[encoder]"));
    failed(bin().args(["presets", "--show", "nope"]).output().unwrap());
}

/// No two source files import each other, directly or around a circle
/// (scripts/import-graph.py; issue 19).
#[test]
fn the_module_graph_has_no_import_cycles() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/import-graph.py");
    let o = std::process::Command::new("python3")
        .arg(script)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.trim() == "0 cycles", "{out}");
}
