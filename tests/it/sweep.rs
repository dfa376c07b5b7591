//! `contrastive sweep`: a sweep killed mid-point continues where it stopped (finished
//! points untouched, the started one resumed exactly) and summarises as the uninterrupted
//! sweep does; the summary's numbers are the runs' own; a point whose folder holds a run
//! of another config is refused.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{bin, dataset, preset};
use contrastive::train::metrics;

const POINTS: [&str; 2] = ["loss.temperature-0.1", "loss.temperature-0.5"];

/// `contrastive sweep` of R1 over two temperatures: two epochs of four steps each,
/// checkpointed every second step.
fn sweep(out: &Path, extra: &[&str]) -> Command {
    let mut c = bin();
    c.args(["sweep", "--quiet", "--config"])
        .arg(preset("simclr-fashion-mnist"));
    let data = format!("data.dir={}", dataset("fashion-mnist").display());
    let sets = [
        data.as_str(),
        "data.limit=512",
        "train.batch_size=128",
        "train.epochs=2",
        "train.checkpoint_every=2",
        "eval.linear_epochs=2",
        "eval.baseline=false",
        "eval.random_init=false",
        "eval.test_limit=300",
    ];
    for s in sets.iter().chain(extra) {
        c.arg("--set").arg(s);
    }
    c.args(["--grid", "loss.temperature=0.1,0.5", "--out"])
        .arg(out);
    c
}

fn ok(mut c: Command) {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn point(out: &Path, i: usize) -> PathBuf {
    out.join("points").join(POINTS[i])
}

/// The summary's CSV without its images/s columns (timings differ between any two runs).
fn accuracy_columns(out: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    let keep: Vec<usize> = (0..rows[0].len())
        .filter(|&j| !rows[0][j].starts_with("images_per_s"))
        .collect();
    rows.iter()
        .map(|r| keep.iter().map(|&j| r[j].clone()).collect())
        .collect()
}

/// The records of a run without timings.
fn records(run: &Path) -> Vec<serde_json::Value> {
    metrics::read(&run.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .map(|mut r| {
            let o = r.as_object_mut().unwrap();
            for k in ["epoch_seconds", "images_per_s"] {
                o.remove(k);
            }
            r
        })
        .collect()
}

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn a_killed_sweep_continues_where_it_stopped_and_summarises_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, killed) = (tmp.path().join("whole"), tmp.path().join("killed"));
    ok(sweep(&whole, &[]));
    // killed once the second point has a checkpoint, mid-run
    let mut child = sweep(&killed, &[]).spawn().unwrap();
    let t0 = Instant::now();
    let ckpts = point(&killed, 1).join("checkpoints");
    let written = |d: std::fs::ReadDir| {
        d.flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "ckpt"))
    };
    while !std::fs::read_dir(&ckpts).is_ok_and(written) {
        assert!(t0.elapsed() < Duration::from_secs(300), "no progress");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("sweep ended before it could be killed: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first = point(&killed, 0).join("metrics.jsonl");
    let (before, stamp) = (
        std::fs::read(&first).unwrap(),
        std::fs::metadata(&first).unwrap().modified().unwrap(),
    );
    let o = sweep(&killed, &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("point 1/2 loss.temperature-0.1: finished, read"),
        "{said}"
    );
    assert!(
        said.contains("point 2/2 loss.temperature-0.5: resumed"),
        "{said}"
    );
    // the finished point was not touched, the resumed one trained as if never stopped
    assert_eq!(std::fs::read(&first).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&first).unwrap().modified().unwrap(),
        stamp
    );
    assert_eq!(records(&point(&killed, 1)), records(&point(&whole, 1)));
    assert_eq!(accuracy_columns(&killed), accuracy_columns(&whole));
    // a third call reads everything and trains nothing
    let o = sweep(&killed, &[]).output().unwrap();
    let said = String::from_utf8_lossy(&o.stdout);
    assert_eq!(said.matches("finished, read").count(), 2, "{said}");

    // the summary holds each point's own final metrics
    let rows = accuracy_columns(&whole);
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    for (i, row) in rows[1..].iter().enumerate() {
        let m = metrics::read(&point(&whole, i).join("metrics.jsonl")).unwrap();
        let last = m.last().unwrap();
        for (metric, key) in [
            ("knn_top1_mean", "knn_top1"),
            ("linear_top1_mean", "linear_top1"),
        ] {
            let got: f64 = row[col(metric)].parse().unwrap();
            assert_eq!(got, last[key].as_f64().unwrap(), "point {i} {metric}");
        }
        let epochs: Vec<_> = m
            .iter()
            .filter(|r| r["epoch_seconds"].is_number())
            .collect();
        let loss: f64 = row[col("final_loss_mean")].parse().unwrap();
        assert_eq!(loss, epochs.last().unwrap()["loss"].as_f64().unwrap());
        assert_eq!(row[col("knn_top1_std")], "0", "one run per point");
    }
    assert!(whole.join("summary.html").exists());
    assert!(whole.join("summary-loss_temperature.png").exists());

    // a changed base config meets the old points: refused, naming the folder
    let o = sweep(&killed, &["train.epochs=3"]).output().unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains(POINTS[0]) && e.contains("another config"), "{e}");
}

/// Under `mpirun -np 2` the points are spread over the two processes, each point trained
/// by one of them alone, and the summary is the serial sweep's.
#[test]
#[ignore = "needs downloaded data and Open MPI: scripts/test.sh"]
fn a_sweep_under_mpirun_spreads_its_points_over_the_ranks() {
    let tmp = tempfile::tempdir().unwrap();
    let (serial, spread) = (tmp.path().join("serial"), tmp.path().join("spread"));
    ok(sweep(&serial, &[]));
    let one = sweep(&spread, &[]);
    let mut c = Command::new("mpirun");
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .args(["--oversubscribe", "--bind-to", "none", "-np", "2"])
        .arg(one.get_program())
        .args(one.get_args());
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    for (rank, name) in POINTS.iter().enumerate() {
        let line = format!("[rank {rank} of 2] point {}/2 {name}: training", rank + 1);
        assert!(said.contains(&line), "{said}");
    }
    assert_eq!(said.matches(": training").count(), 2, "{said}");
    assert_eq!(accuracy_columns(&spread), accuracy_columns(&serial));
    for i in 0..2 {
        assert_eq!(records(&point(&spread, i)), records(&point(&serial, i)));
    }
}
