//! A non-finite loss stops the run with a message naming the step, and the last good
//! checkpoint stays readable.

use crate::common::{dataset, preset, train};
use contrastive::train::checkpoint::Checkpoint;
use contrastive::train::rundir::list_checkpoints;

#[test]
#[ignore = "needs downloaded data: scripts/test.sh"]
fn a_diverging_run_stops_at_the_first_non_finite_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("r");
    let sets = [
        format!("data.dir={}", dataset("fashion-mnist").display()),
        "data.limit=1024".into(),
        "train.batch_size=128".into(),
        "train.epochs=2".into(),
        "optim.lr=1e6".into(),
    ];
    let out = train(&preset("simclr-fashion-mnist"), &sets, &run)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let ckpts = list_checkpoints(&run.join("checkpoints")).unwrap();
    assert_eq!(
        err.trim(),
        format!(
            "error: non-finite loss NaN at step 9 (epoch 2); the last good checkpoint, {}, is kept",
            ckpts[0].display()
        )
    );
    assert_eq!(ckpts.len(), 1, "the end-of-epoch-1 checkpoint");
    let c = Checkpoint::load(&ckpts[0]).unwrap();
    assert_eq!(c.meta["epoch"], 1);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        9,
        "8 steps and the epoch summary; nothing of the diverged step"
    );
}
