//! The run report: one HTML page with training curves, 2-D maps of the test
//! representations, nearest-neighbour grids, the config and the final metrics. Its PNGs
//! lie in a `report/` folder beside the page and are referenced relatively.

pub mod html;
pub mod neighbours;
pub mod plot;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::data::preview;
use crate::error::{Error, Result};
use crate::eval::{self, map2d};
use crate::train::metrics::{self, Record};
use crate::train::saved::{Loaded, SavedRun};
use html::{escape, figure, table};
use plot::Series;

/// Test samples drawn in the 2-D maps (t-SNE is quadratic in memory for its inputs).
pub const MAP_SAMPLES: usize = 2000;
/// Test queries in the nearest-neighbour grid.
const QUERIES: usize = 8;
/// Neighbours shown per query.
const NEIGHBOURS: usize = 8;

/// What a report consists of.
#[derive(Debug, Clone)]
pub struct Report {
    pub page: PathBuf,
    /// The PNGs that the page shows.
    pub pictures: Vec<PathBuf>,
}

/// Writes the report of `run` (with its data and model in `loaded`) to the HTML file
/// `page`, and its pictures to `report/` beside it; `extra` is HTML of more sections
/// (the invariance probe's), placed before the config.
pub fn write(run: &SavedRun, loaded: &Loaded, page: &Path, extra: &str) -> Result<Report> {
    let folder = page.parent().unwrap_or(Path::new(".")).join("report");
    std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
    let metrics_path = run.dir.join("metrics.jsonl");
    let records = metrics::read(&metrics_path)?;
    let mut body = format!(
        "<p>Run <code>{}</code>, checkpoint <code>{}</code>, dataset {} ({} training and {} test samples).</p>\n",
        escape(&run.dir.display().to_string()),
        escape(&run.checkpoint.display().to_string()),
        escape(&loaded.ds.name),
        loaded.train.len(),
        loaded.test.len()
    );
    let mut pictures = Vec::new();
    let mut add = |name: &str, caption: &str, body: &mut String| {
        pictures.push(folder.join(name));
        body.push_str(&figure(&format!("report/{name}"), caption));
    };

    body.push_str("<h2>Training</h2>\n");
    let (loss, lr, epoch_loss, knn) = curves(&metrics::typed(records.clone(), &metrics_path)?);
    plot::lines(
        &folder.join("loss.png"),
        "Training loss",
        "step",
        "loss",
        &[
            Series {
                name: "per step".into(),
                points: loss,
                markers: false,
            },
            Series {
                name: "epoch mean".into(),
                points: epoch_loss,
                markers: false,
            },
        ],
    )?;
    add(
        "loss.png",
        "Loss of every step and its mean over each epoch.",
        &mut body,
    );
    plot::lines(
        &folder.join("lr.png"),
        "Learning rate",
        "step",
        "learning rate",
        &[Series {
            name: "lr".into(),
            points: lr,
            markers: false,
        }],
    )?;
    add("lr.png", "Learning rate of every step.", &mut body);
    if knn.is_empty() {
        body.push_str("<p>No kNN evaluation in metrics.jsonl.</p>\n");
    } else {
        plot::lines(
            &folder.join("knn.png"),
            "kNN top-1 accuracy",
            "epoch",
            "accuracy",
            &[Series {
                name: "kNN top-1 (online and final)".into(),
                points: knn,
                markers: true,
            }],
        )?;
        add(
            "knn.png",
            "Weighted kNN accuracy of h on the test set, by epoch.",
            &mut body,
        );
    }

    body.push_str("<h2>Test representations</h2>\n");
    let (mean, std, device) = (&loaded.mean, &loaded.std, &loaded.device);
    let shown = loaded.test.head(MAP_SAMPLES)?;
    let h = eval::extract(&run.config, &loaded.model, &shown, mean, std, device);
    let names = &loaded.ds.class_names;
    let n = h.len();
    plot::map(
        &folder.join("pca.png"),
        "PCA of h",
        &map2d::pca(&h),
        &h.labels,
        names,
    )?;
    add(
        "pca.png",
        &format!("The first two principal components of h for {n} test samples."),
        &mut body,
    );
    plot::map(
        &folder.join("tsne.png"),
        "t-SNE of h",
        &map2d::tsne(&h),
        &h.labels,
        names,
    )?;
    add(
        "tsne.png",
        &format!("Barnes-Hut t-SNE (perplexity 30) of L2-normalised h for {n} test samples."),
        &mut body,
    );
    if !preview::is_series(shown.shape) {
        let memory = eval::extract_source(
            &run.config,
            &loaded.model,
            &loaded.train,
            (mean, std),
            device,
        )?;
        let queries = preview::pick(&shown, QUERIES);
        let q = eval::knn::Features {
            data: queries.iter().flat_map(|&i| h.row(i).to_vec()).collect(),
            dim: h.dim,
            labels: queries.iter().map(|&i| h.labels[i]).collect(),
        };
        let nb = neighbours::nearest(&memory, &q, NEIGHBOURS);
        let used: Vec<usize> = nb.iter().flatten().copied().collect();
        let picked = loaded.train.pick(&used)?;
        // the neighbours renumbered as rows of `picked`
        let mut start = 0;
        let nb: Vec<Vec<usize>> = nb
            .iter()
            .map(|row| {
                start += row.len();
                (start - row.len()..start).collect()
            })
            .collect();
        let grid = neighbours::grid(&shown, &queries, &picked, &nb);
        let path = folder.join("neighbours.png");
        preview::save(&grid, &path)?;
        add(
            "neighbours.png",
            &format!("Each row: a test query (grey frame), then its {NEIGHBOURS} nearest training images by cosine similarity of h; green frames share the query's class, red ones do not."),
            &mut body,
        );
    }

    body.push_str("<h2>Final metrics</h2>\n");
    body.push_str(&final_tables(run, &records, names));
    body.push_str(extra);
    body.push_str("<h2>Config</h2>\n");
    let cfg_path = run.dir.join("config.toml");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap_or_else(|_| run.config.to_toml());
    body.push_str(&format!("<pre>{}</pre>\n", escape(&cfg)));

    let title = format!(
        "Run report: {}",
        run.dir.file_name().map_or_else(
            || run.dir.display().to_string(),
            |n| n.to_string_lossy().into()
        )
    );
    std::fs::write(page, html::page(&title, &body)).map_err(|e| Error::io(page, e))?;
    Ok(Report {
        page: page.to_path_buf(),
        pictures,
    })
}

type Points = Vec<(f64, f64)>;

/// Per-step loss and learning rate (x: step), per-epoch mean loss (a level from the
/// epoch's first step to its last) and kNN accuracy (x: epoch) from the metrics records.
fn curves(records: &[Record]) -> (Points, Points, Points, Points) {
    let (mut loss, mut lr, mut epoch_loss, mut knn) = (vec![], vec![], vec![], vec![]);
    let mut epoch_start = 1.0;
    for r in records {
        let step = r.step as f64;
        if r.is_epoch() {
            // the mean spans its epoch's steps: a level, not a point past the last step
            if let Some(l) = r.loss {
                epoch_loss.extend([(epoch_start, l), (step, l)]);
            }
            epoch_start = step + 1.0;
        } else if let Some(l) = r.loss {
            loss.push((step, l));
            lr.extend(r.lr.map(|v| (step, v)));
        }
        knn.extend(r.knn_top1.map(|k| (r.epoch as f64, k)));
    }
    (loss, lr, epoch_loss, knn)
}

/// The final evaluation as tables: scalar metrics (from `eval.json` when `contrastive
/// eval` wrote one, else the last metrics record), per-class accuracy, kNN confusion.
fn final_tables(run: &SavedRun, records: &[Value], names: &[String]) -> String {
    let eval_json = std::fs::read_to_string(run.dir.join("eval.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let last = records.iter().rev().find(|r| r.get("knn_top1").is_some());
    let mut out = String::new();
    let mut scalars: Vec<Vec<String>> = Vec::new();
    let (per_knn, per_lin, confusion) = match (&eval_json, last) {
        (Some(e), _) => {
            out.push_str(
                "<p>From <code>eval.json</code> (written by <code>contrastive eval</code>).</p>\n",
            );
            let recall = |k: &str| &e["retrieval"]["recall_at"][k];
            for (k, v) in [
                ("kNN top-1", &e["knn"]["top1"]),
                ("kNN top-5", &e["knn"]["top5"]),
                ("linear top-1", &e["linear"]["top1"]),
                ("Recall@1", recall("1")),
                ("Recall@8", recall("8")),
                ("R-precision", &e["retrieval"]["r_precision"]),
                ("mAP@R", &e["retrieval"]["map_at_r"]),
                ("k-means NMI", &e["clustering"]["nmi"]),
                ("k-means AMI", &e["clustering"]["ami"]),
                ("alignment", &e["alignment"]),
                ("uniformity", &e["uniformity"]),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            {
                scalars.push(vec![k.into(), show(v)]);
            }
            (
                e["knn"]["per_class"].clone(),
                e["linear"]["per_class"].clone(),
                e["knn"]["confusion"].clone(),
            )
        }
        (None, Some(r)) => {
            out.push_str("<p>From the last record of <code>metrics.jsonl</code>.</p>\n");
            if let Some(o) = r.as_object() {
                for (k, v) in o.iter().filter(|(_, v)| !v.is_array()) {
                    scalars.push(vec![k.clone(), show(v)]);
                }
            }
            (
                r["knn_per_class"].clone(),
                r["linear_per_class"].clone(),
                r["knn_confusion"].clone(),
            )
        }
        (None, None) => return "<p>No final evaluation recorded.</p>\n".into(),
    };
    out.push_str(&table(&["metric".into(), "value".into()], &scalars));
    if let Some(k) = per_knn.as_array() {
        let rows: Vec<Vec<String>> = k
            .iter()
            .enumerate()
            .map(|(c, v)| {
                let name = names.get(c).cloned().unwrap_or_else(|| c.to_string());
                vec![name, show(v), show(&per_lin[c])]
            })
            .collect();
        out.push_str("<h3>Per-class accuracy</h3>\n");
        out.push_str(&table(
            &["class".into(), "kNN".into(), "linear".into()],
            &rows,
        ));
    }
    if let Some(m) = confusion.as_array() {
        let mut header = vec!["true \\ predicted".to_string()];
        header.extend((0..m.len()).map(|c| names.get(c).cloned().unwrap_or_else(|| c.to_string())));
        let rows: Vec<Vec<String>> = m
            .iter()
            .enumerate()
            .map(|(c, row)| {
                let mut r = vec![names.get(c).cloned().unwrap_or_else(|| c.to_string())];
                r.extend(row.as_array().into_iter().flatten().map(show));
                r
            })
            .collect();
        out.push_str("<h3>kNN confusion matrix</h3>\n");
        out.push_str(&table(&header, &rows));
    }
    out
}

/// A JSON value for a table cell: numbers with 4 decimals, `-` for null.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Number(n) if n.is_f64() => format!("{:.4}", n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
