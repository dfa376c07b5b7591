//! `contrastive eval`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use contrastive::eval::{self, confusion::ClassScores, geometry};
use contrastive::train::saved::SavedRun;

#[derive(Args)]
pub struct EvalArgs {
    /// A run directory (its newest checkpoint, the model the training's final evaluation
    /// scored) or a checkpoint file in RUN_DIR/checkpoints/ (e.g. best.ckpt).
    #[arg(value_name = "RUN_DIR_OR_CHECKPOINT")]
    path: PathBuf,
    /// Neighbours of the weighted kNN classifier (default: the run's eval.knn_k, 200 in
    /// the presets).
    #[arg(long)]
    k: Option<usize>,
    /// Temperature t of the kNN vote weights exp(cosine / t) (default: the run's
    /// eval.knn_temperature, 0.1 in the presets).
    #[arg(long)]
    temperature: Option<f32>,
    /// Skip the linear probe (kNN, per-class scores and geometry only).
    #[arg(long)]
    no_linear: bool,
    /// Override a value of the run's config.toml, e.g. `--set data.dir=/data/fashion-mnist`
    /// or `--set eval.test_limit=1000` (repeatable; TOML value or bare string).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

pub fn run(a: EvalArgs) -> Result<()> {
    let mut set = a.set;
    set.extend(a.k.map(|k| format!("eval.knn_k={k}")));
    set.extend(a.temperature.map(|t| format!("eval.knn_temperature={t}")));
    if a.no_linear {
        set.push("eval.linear_epochs=0".into());
    }
    let run = SavedRun::open(&a.path, &set)?;
    let l = run.load()?;
    let cfg = &run.config;
    let (mean, std) = (l.mean.as_slice(), l.std.as_slice());
    let ftr = eval::extract_source(cfg, &l.model, &l.train, (mean, std), &l.device)?;
    let fte = eval::extract_source(cfg, &l.model, &l.test, (mean, std), &l.device)?;
    let seed = cfg.train.seed;
    let e = eval::evaluate(&ftr, &fte, l.ds.classes, &cfg.eval, seed, &l.device);
    let views = match cfg.data.streamed() {
        true => cfg.views.sized(cfg.data.image_size),
        false => cfg.views.clone(),
    };
    let g = geometry::measure(
        &l.model,
        &l.test,
        &fte,
        &views,
        (&l.mean, &l.std),
        seed,
        &l.device,
    )?;
    let names = &l.ds.class_names;
    let retrieval = eval::retrieval::retrieval(&fte.labelled(l.ds.classes));
    let clustering = eval::clustering::clustering(&fte, l.ds.classes, seed);

    println!("checkpoint: {}", run.checkpoint.display());
    println!(
        "representation h ({}-d); kNN memory and probe data: {} training samples; {} test samples",
        ftr.dim,
        ftr.len(),
        fte.len()
    );
    let labelled = fte.labelled(l.ds.classes).len();
    if let Some(knn) = &e.knn {
        println!(
            "{:<34} {:.4} ({}/{labelled})",
            format!(
                "kNN top-1 (k={}, t={})",
                cfg.eval.knn_k, cfg.eval.knn_temperature
            ),
            knn.top1,
            knn.correct,
        );
    }
    if let Some(top5) = e.scores.knn_top5 {
        println!("{:<34} {top5:.4}", "kNN top-5");
    }
    if let Some(lin) = &e.linear {
        println!(
            "{:<34} {:.4} ({}/{labelled})",
            format!("linear probe top-1 ({} epochs)", cfg.eval.linear_epochs),
            lin.top1,
            lin.correct,
        );
    }
    if let Some(why) = &e.unlabelled {
        println!("{why}");
    }
    if let Some(g) = &g {
        println!(
            "{:<34} {:.4}\n{:<34} {:.4}   ({} test samples)",
            "alignment (alpha=2, two views)",
            g.alignment,
            "uniformity (t=2)",
            g.uniformity,
            g.samples
        );
    }
    if let Some(r) = &retrieval {
        let recall: Vec<String> = r
            .recall_at
            .iter()
            .map(|(k, v)| format!("R@{k} {v:.4}"))
            .collect();
        println!(
            "{:<34} {}; R-precision {:.4}; mAP@R {:.4}",
            "retrieval among the test samples",
            recall.join(", "),
            r.r_precision,
            r.map_at_r
        );
    }
    if let Some(c) = &clustering {
        println!(
            "{:<34} NMI {:.4}, AMI {:.4}",
            format!("k-means ({} clusters) vs labels", c.clusters),
            c.nmi,
            c.ami
        );
    }
    if let Some(knn) = &e.knn {
        print_per_class(names, knn, e.linear.as_ref());
        print_confusion(names, knn);
    }

    let out = if a.path.is_dir() {
        run.dir.join("eval.json")
    } else {
        let stem = run
            .checkpoint
            .file_stem()
            .map_or("checkpoint".into(), |s| s.to_string_lossy().into_owned());
        run.checkpoint.with_file_name(format!("{stem}.eval.json"))
    };
    let doc = json!({
        "checkpoint": run.checkpoint, "dataset": l.ds.name, "class_names": names,
        "representation": representation(cfg), "dim": ftr.dim,
        "train_samples": ftr.len(), "test_samples": fte.len(),
        "knn": e.knn.as_ref().map(|knn| json!({"k": cfg.eval.knn_k,
            "temperature": cfg.eval.knn_temperature, "top1": knn.top1,
            "top5": e.scores.knn_top5, "correct": knn.correct,
            "per_class": knn.per_class, "confusion": knn.confusion})),
        "unlabelled": e.unlabelled,
        "linear": e.linear.as_ref().map(|lin| json!({
            "epochs": cfg.eval.linear_epochs, "lr": cfg.eval.linear_lr, "top1": lin.top1,
            "correct": lin.correct, "per_class": lin.per_class, "confusion": lin.confusion})),
        "alignment": g.as_ref().map(|g| g.alignment), "uniformity": g.as_ref().map(|g| g.uniformity),
        "retrieval": retrieval.as_ref().map(|r| json!({
            "recall_at": r.recall_at.iter().map(|(k, v)| (k.to_string(), json!(v)))
                .collect::<serde_json::Map<_, _>>(),
            "r_precision": r.r_precision, "map_at_r": r.map_at_r, "queries": r.queries,
            "of": "cosine ranking of L2-normalised h among the labelled test samples, each query's own row excluded"})),
        "clustering": clustering.as_ref().map(|c| json!({"nmi": c.nmi, "ami": c.ami,
            "clusters": c.clusters,
            "of": "spherical k-means of the labelled test samples' h into as many clusters as classes"})),
        "geometry": g.as_ref().map(|g| json!({"samples": g.samples, "alpha": 2, "t": 2,
            "alignment_of": "L2-normalised h of two augmented views of each test sample",
            "uniformity_of": "L2-normalised h of the un-augmented test samples"})),
    });
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(&out, text + "\n").with_context(|| out.display().to_string())?;
    println!("wrote {}", out.display());
    Ok(())
}

fn print_per_class(names: &[String], knn: &ClassScores, linear: Option<&ClassScores>) {
    let w = names.iter().map(String::len).max().unwrap_or(5).max(5);
    println!("\n{:<w$} {:>7} {:>7}", "class", "kNN", "linear");
    for (c, name) in names.iter().enumerate() {
        let lin = linear.map_or("-".into(), |l| format!("{:.4}", l.per_class[c]));
        println!("{name:<w$} {:>7.4} {lin:>7}", knn.per_class[c]);
    }
}

fn print_confusion(names: &[String], knn: &ClassScores) {
    let w = knn
        .confusion
        .iter()
        .flatten()
        .map(|v| v.to_string().len())
        .max()
        .unwrap_or(1)
        .max(3);
    let nw = names.iter().map(String::len).max().unwrap_or(5).max(5);
    println!("\nkNN confusion matrix (rows: true class, columns: predicted class index)");
    let head: String = (0..names.len()).map(|c| format!(" {c:>w$}")).collect();
    println!("{:<nw$} {head}", "");
    for (c, row) in knn.confusion.iter().enumerate() {
        let cells: String = row.iter().map(|v| format!(" {v:>w$}")).collect();
        println!("{:<nw$} {cells}", format!("{c} {}", names[c]));
    }
}

/// The output that was evaluated, as eval.json names it: `h`, `z` or `block K`.
fn representation(cfg: &contrastive::Config) -> String {
    match (cfg.eval.layer, cfg.eval.stage) {
        (contrastive::eval::config::Layer::Z, _) => "z".into(),
        (_, 0) => "h".into(),
        (_, k) => format!("block {k}"),
    }
}
