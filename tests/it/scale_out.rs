//! Data-parallel training under `mpirun -np 2` equals one process training the same
//! global batch: per-step losses and the final parameters, for SimCLR (keys and queries
//! gathered), SupCon (labels split across ranks), MoCo v2 (queue, momentum encoder),
//! InstDisc (memory bank), NNCLR (support set, predictor), DINO (multi-crop, centre) and
//! PCL (ProtoNCE's clusterings), with `train.sync_bn`.
//!
//! The tolerance is measured, not guessed: the one-process run is repeated with one
//! compute thread instead of two, which changes only the order of float sums (as
//! splitting the batch over ranks does). Rounding differences of 1e-7 grow over training
//! steps (BatchNorm, sharp softmaxes, nearest-neighbour picks amplify them), so "equal"
//! means: the first step's loss agrees to 1e-6, and over 20 steps the ranks' run stays
//! as close to the one-process run as that run is to itself under another summation
//! order (within 4x, plus 1e-5 for runs that drift less than rounding).

use std::path::Path;
use std::process::Command;

use burn::prelude::*;

use crate::common::{bin, dataset, param_values, preset, train};
use contrastive::train::metrics;
use contrastive::train::saved::{load_model, SavedRun};

const STEPS: usize = 20;
const BATCH: usize = 128;

/// The overrides of a 20-step run on Fashion-MNIST, plus `extra`.
fn sets(extra: &[&str]) -> Vec<String> {
    [
        format!("data.dir={}", dataset("fashion-mnist").display()),
        format!("data.limit={}", STEPS * BATCH),
        format!("train.batch_size={BATCH}"),
        "train.epochs=1".into(),
        "train.sync_bn=true".into(),
        "train.checkpoint_every=1".into(),
        "train.keep_checkpoints=100".into(),
        "eval.linear_epochs=0".into(),
        "eval.baseline=false".into(),
        "eval.test_limit=200".into(),
    ]
    .into_iter()
    .chain(extra.iter().map(|s| s.to_string()))
    .collect()
}

/// `contrastive train` under `mpirun -np ranks` (one compute thread each).
fn mpirun(ranks: usize, config: &Path, sets: &[String], out: &Path) -> Command {
    under_mpirun(ranks, &train(config, sets, out))
}

/// The `contrastive` command `one` under `mpirun -np ranks`.
fn under_mpirun(ranks: usize, one: &Command) -> Command {
    let mut c = Command::new("mpirun");
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .args(["--oversubscribe", "--bind-to", "none", "-np"])
        .arg(ranks.to_string())
        .arg(one.get_program())
        .args(one.get_args());
    c
}

/// The `contrastive` command `one` with one rank in each of two network namespaces
/// joined by a veth pair, MPI over TCP only (`scripts/netns-hosts.sh`, as root).
fn across_namespaces(one: &Command) -> Command {
    let mut c = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/netns-hosts.sh"));
    c.arg("run").arg(one.get_program()).args(one.get_args());
    c
}

/// How the two ranks of a run are launched.
#[derive(Clone, Copy)]
enum Launch {
    /// `mpirun -np 2` on this host (shared memory between the ranks).
    OneHost,
    /// One rank per network namespace, TCP between them.
    TwoHosts,
}

fn ok(mut c: Command) {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{:?} failed: {}",
        c.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The per-step losses of a run.
fn losses(run: &Path) -> Vec<f64> {
    metrics::records(&run.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .filter(|r| r.epoch_seconds.is_none() && r.knn_top1.is_none())
        .filter_map(|r| r.loss)
        .collect()
}

/// Every parameter of the run's checkpoint after step `step`, flattened.
fn params(run: &Path, step: usize) -> Vec<f32> {
    let saved = SavedRun::open(run, &[]).unwrap();
    let ckpt = run.join(format!("checkpoints/step-{step:09}.ckpt"));
    let m = load_model(&saved.config, &ckpt, [1, 28, 28], &Device::flex()).unwrap();
    param_values(&m).concat()
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(1e-12))
        .fold(0.0, f64::max)
}

fn max_abs(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(0.0, f64::max)
}

/// Trains `name` in one process (two threads, then one) and on two ranks, then checks
/// the ranks against the one-process run: the first step exactly (its loss, and the
/// parameters it produced: that is the gradient), the next 19 within the one-process
/// run's own spread under another summation order.
fn equivalent(name: &str, extra: &[&str]) {
    equivalent_under(name, extra, Launch::OneHost);
}

fn equivalent_under(name: &str, extra: &[&str], launch: Launch) {
    let tmp = tempfile::tempdir().unwrap();
    let (one, one_t1, two) = (
        tmp.path().join("one"),
        tmp.path().join("one-t1"),
        tmp.path().join("two"),
    );
    let cfg = preset(name);
    let base = sets(extra);
    let with = |s: &str| {
        base.iter()
            .cloned()
            .chain([s.to_string()])
            .collect::<Vec<_>>()
    };
    ok(train(&cfg, with("train.threads=2"), &one));
    ok(train(&cfg, with("train.threads=1"), &one_t1));
    ok(match launch {
        Launch::OneHost => mpirun(2, &cfg, &base, &two),
        Launch::TwoHosts => across_namespaces(&train(&cfg, &base, &two)),
    });
    let (a, b, c) = (losses(&one), losses(&one_t1), losses(&two));
    assert!(a.len() >= STEPS && a.len() == c.len(), "{name}: steps");
    let first = (c[0] - a[0]).abs() / a[0];
    // the step's update, and how far the two-rank update is from the one-process one
    let (p1, p2) = (params(&one, 1), params(&one, 2));
    let update = max_abs(&p1, &p2);
    let off = max_abs(&p1, &params(&two, 1));
    let off_t1 = max_abs(&p1, &params(&one_t1, 1));
    let (spread, ranks) = (max_rel(&a, &b), max_rel(&a, &c));
    eprintln!(
        "{name}: first-step loss {first:.1e}; step-1 parameters off by {off:.1e} (one \
         thread: {off_t1:.1e}) of an update of {update:.1e}; 20-step losses {ranks:.1e} \
         (one thread: {spread:.1e})"
    );
    assert!(first < 1e-6, "{name}: first step {} vs {}", c[0], a[0]);
    assert!(
        off <= 1e-4 * update,
        "{name}: the first step's parameters differ by {off:.2e}, its update is {update:.2e}"
    );
    assert!(
        ranks <= 10.0 * spread + 1e-4,
        "{name}: 2 ranks differ by {ranks:.2e} from one process, whose own spread is {spread:.2e}"
    );
}

#[test]
#[ignore = "needs downloaded data and Open MPI: scripts/test.sh"]
fn simclr_on_two_ranks_equals_one_process() {
    equivalent("simclr-fashion-mnist", &[]);
}

#[test]
#[ignore = "needs downloaded data and Open MPI: scripts/test.sh"]
fn supcon_on_two_ranks_equals_one_process() {
    equivalent("supcon-fashion-mnist", &[]);
}

#[test]
#[ignore = "needs downloaded data and Open MPI: scripts/test.sh"]
fn moco_on_two_ranks_equals_one_process() {
    equivalent("moco-v2-fashion-mnist", &[]);
}

#[test]
#[ignore = "needs downloaded data and Open MPI: scripts/test.sh"]
fn instdisc_on_two_ranks_equals_one_process() {
    equivalent("instdisc-fashion-mnist", &[]);
}

#[test]
#[ignore = "needs downloaded data and Open MPI: scripts/test.sh"]
fn nnclr_on_two_ranks_equals_one_process() {
    equivalent("nnclr-fashion-mnist", &[]);
}

/// DINO: multi-crop groups gathered per crop size, the teacher's keys gathered, the
/// centre moved from the whole batch on every rank.
#[test]
#[ignore = "needs downloaded data and Open MPI: scripts/test.sh"]
fn dino_on_two_ranks_equals_one_process() {
    equivalent("dino-fashion-mnist", &["head.prototypes=64"]);
}

/// PCL's ProtoNCE: the bank, its clusterings and the prototype term over the gathered
/// batch (two epochs of twenty steps; the prototypes are assigned from the second).
#[test]
#[ignore = "needs downloaded data and Open MPI: scripts/test.sh"]
fn protonce_on_two_ranks_equals_one_process() {
    let extra = [
        "train.epochs=2",
        "views.recluster_every=5",
        "loss.proto.clusters=[5, 10]",
    ];
    equivalent("pcl-fashion-mnist", &extra);
}

/// Streamed images of mixed sizes, decoded by each rank for its slice of every batch:
/// two ranks train as one process does on the whole batch.
#[test]
#[ignore = "needs Open MPI: scripts/test.sh"]
fn streamed_images_on_two_ranks_equal_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pictures");
    crate::stream::collection(&dir, 64, "jpg", true);
    let cfg = preset("simclr-fashion-mnist");
    let mut base =
        crate::stream::sets(&["train.epochs=1", "train.sync_bn=true", "data.cache_mb=0"]);
    base.push("data.dataset=images".into());
    base.push(format!("data.dir={}", dir.display()));
    let with = |s: &str| {
        base.iter()
            .cloned()
            .chain([s.to_string()])
            .collect::<Vec<_>>()
    };
    let (one, one_t1, two) = (
        tmp.path().join("one"),
        tmp.path().join("t1"),
        tmp.path().join("two"),
    );
    ok(train(&cfg, with("train.threads=2"), &one));
    ok(train(&cfg, with("train.threads=1"), &one_t1));
    ok(mpirun(2, &cfg, &base, &two));
    let (a, b, c) = (losses(&one), losses(&one_t1), losses(&two));
    assert!(a.len() == 8 && c.len() == 8, "{a:?} {c:?}");
    let first = (c[0] - a[0]).abs() / a[0];
    let (spread, ranks) = (max_rel(&a, &b), max_rel(&a, &c));
    eprintln!("streamed: first-step loss {first:.1e}; 8-step losses {ranks:.1e} (one thread: {spread:.1e})");
    assert!(first < 1e-6, "first step {} vs {}", c[0], a[0]);
    assert!(
        ranks <= 10.0 * spread + 1e-4,
        "2 ranks differ by {ranks:.2e}, one process by {spread:.2e}"
    );
}

/// The same equivalence with the ranks on two "hosts": network namespaces joined by a veth
/// pair, MPI over TCP on it only, the daemons started by a launch agent instead of ssh.
#[test]
#[ignore = "needs downloaded data, Open MPI and root (ip netns): scripts/test.sh"]
fn simclr_across_two_hosts_equals_one_process() {
    equivalent_under("simclr-fashion-mnist", &[], Launch::TwoHosts);
}

/// Without synchronised batch norm each rank normalises its own half: the first step's
/// loss already differs, which shows the equivalence above is not vacuous.
#[test]
#[ignore = "needs downloaded data and Open MPI: scripts/test.sh"]
fn per_rank_batch_norm_differs_from_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let cfg = preset("simclr-fashion-mnist");
    let base = sets(&["train.sync_bn=false", "data.limit=256"]);
    ok(train(&cfg, &base, &one));
    ok(mpirun(2, &cfg, &base, &two));
    let (a, c) = (losses(&one), losses(&two));
    assert!((a[0] - c[0]).abs() / a[0] > 1e-4, "{} vs {}", a[0], c[0]);
}

/// The metrics records of a run without what measures this process (times, and the
/// bytes it sent: a resumed epoch counts only the steps after the resume).
fn records(run: &Path) -> Vec<serde_json::Value> {
    metrics::read(&run.join("metrics.jsonl"))
        .unwrap()
        .into_iter()
        .map(|mut r| {
            for k in [
                "epoch_seconds",
                "images_per_s",
                "knn_seconds",
                "linear_seconds",
                "comm_seconds",
                "comm_bytes",
            ] {
                r.as_object_mut().unwrap().remove(k);
            }
            r
        })
        .collect()
}

/// The process of MPI rank `rank` among the children of `mpirun` (pid `parent`).
fn rank_pid(parent: u32, rank: usize) -> Option<i32> {
    let want = format!("OMPI_COMM_WORLD_RANK={rank}");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let ppid: u32 = stat
            .rsplit(')')
            .next()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        let env = std::fs::read(e.path().join("environ")).ok()?;
        let has = env.split(|&b| b == 0).any(|v| v == want.as_bytes());
        (ppid == parent && has).then_some(pid)
    })
}

/// kill -9 of rank 1 mid-epoch ends the job within seconds with a line naming a rank and
/// the step; `--resume` under mpirun then reaches exactly the uninterrupted run's records;
/// resuming on another number of ranks is refused.
#[test]
#[ignore = "needs downloaded data and Open MPI: scripts/test.sh"]
fn a_killed_rank_ends_the_job_and_resume_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (whole, killed) = (tmp.path().join("whole"), tmp.path().join("killed"));
    let cfg = preset("simclr-fashion-mnist");
    let base = sets(&["train.epochs=2", "train.checkpoint_every=5"]);
    ok(mpirun(2, &cfg, &base, &whole));
    let job = mpirun(2, &cfg, &base, &killed)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    let metrics = killed.join("metrics.jsonl");
    while std::fs::read_to_string(&metrics).map_or(0, |t| t.lines().count()) < 27 {
        assert!(t0.elapsed().as_secs() < 300, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = rank_pid(job.id(), 1).expect("rank 1's process");
    // SAFETY: sends a signal to a child process of this test.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let killed_at = std::time::Instant::now();
    let out = job.wait_with_output().unwrap();
    let ended = killed_at.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(ended < 10.0, "the job took {ended:.1}s to end");
    assert!(
        err.contains("rank 1") && err.contains("during step"),
        "{err}"
    );
    let mut resume = bin();
    resume.args(["train", "--quiet", "--resume"]).arg(&killed);
    ok(under_mpirun(2, &resume));
    assert_eq!(records(&whole), records(&killed));
    let o = resume.output().unwrap();
    let one = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && one.contains("trained on 2 rank(s) and would resume on 1")
            && one.lines().count() == 1,
        "{one}"
    );
}
