//! `contrastive sweep`: a grid (or a list) of overrides over one base config, each point
//! trained into its own run directory under `OUT/points/`, so that a sweep stopped
//! anywhere continues where it stopped (a finished point is read, not rerun; a started one
//! resumes from its checkpoint) and never mixes a point with a run of another config.
//! The summary (`summary.csv`, `summary.md`, `summary.html` with a chart per swept key)
//! is rebuilt from the points' own `metrics.jsonl` after every point.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::report::{html, plot};
use crate::train::{self, metrics, TrainOptions};

/// One swept key and its values, from `KEY=V1,V2,...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

impl Axis {
    /// Parses `KEY=V1,V2,...`; commas inside brackets, braces or quotes belong to a value
    /// (`views.augment.crop_scale=[0.2, 1.0],[0.5, 1.0]`).
    pub fn parse(s: &str) -> Result<Self> {
        let (key, values) = s
            .split_once('=')
            .ok_or_else(|| Error::Invalid(format!("--grid {s}: expected KEY=V1,V2,...")))?;
        let values = split_top(values);
        if key.trim().is_empty() || values.iter().any(|v| v.is_empty()) {
            return Err(Error::Invalid(format!(
                "--grid {s}: expected KEY=V1,V2,... with no empty value"
            )));
        }
        Ok(Self {
            key: key.trim().to_string(),
            values,
        })
    }
}

/// `s` split at the commas outside brackets, braces and double quotes, each part trimmed.
fn split_top(s: &str) -> Vec<String> {
    let (mut parts, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            '[' | '{' if !quoted => depth += 1,
            ']' | '}' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur.trim().to_string());
    parts
}

/// One point of a sweep: its overrides (in axis order) and, when repeated over seeds, its
/// seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub sets: Vec<(String, String)>,
    pub seed: Option<u64>,
}

impl Point {
    /// The `--set` overrides of this point, the seed's last.
    pub fn overrides(&self) -> Vec<String> {
        let mut out: Vec<String> = self.sets.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if let Some(s) = self.seed {
            out.push(format!("train.seed={s}"));
        }
        out
    }

    /// A directory name that says the point: `key-value` parts joined by `__`, with
    /// characters outside `[A-Za-z0-9._-]` replaced; long names end in a hash instead.
    pub fn dir_name(&self) -> String {
        let mut parts: Vec<String> = self.sets.iter().map(|(k, v)| format!("{k}-{v}")).collect();
        if let Some(s) = self.seed {
            parts.push(format!("seed-{s}"));
        }
        let name: String = match parts.is_empty() {
            true => "base".into(),
            false => parts.join("__"),
        }
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || "._-".contains(c) {
            true => c,
            false => '_',
        })
        .collect();
        if name.len() <= 120 {
            return name;
        }
        let hash = self
            .overrides()
            .join("\n")
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        format!("{}-{hash:016x}", &name[..100])
    }
}

/// Every point: the cartesian product of `axes` (the first varies slowest), then each of
/// `cases` (a list of overrides of its own), each repeated over `seeds` seeds from
/// `first_seed` when `seeds > 1`.
pub fn points(
    axes: &[Axis],
    cases: &[Vec<(String, String)>],
    seeds: usize,
    first_seed: u64,
) -> Vec<Point> {
    let mut grid: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for a in axes {
        grid = grid
            .into_iter()
            .flat_map(|sets| {
                a.values.iter().map(move |v| {
                    let mut s = sets.clone();
                    s.push((a.key.clone(), v.clone()));
                    s
                })
            })
            .collect();
    }
    if !cases.is_empty() {
        grid = match axes.is_empty() {
            true => cases.to_vec(),
            false => grid.into_iter().chain(cases.iter().cloned()).collect(),
        };
    }
    grid.into_iter()
        .flat_map(|sets| {
            let seeds: Vec<Option<u64>> = match seeds > 1 {
                true => (0..seeds as u64).map(|s| Some(first_seed + s)).collect(),
                false => vec![None],
            };
            seeds.into_iter().map(move |seed| Point {
                sets: sets.clone(),
                seed,
            })
        })
        .collect()
}

/// Parses a `--case` of `KEY=VALUE` pairs separated by `;`.
pub fn parse_case(s: &str) -> Result<Vec<(String, String)>> {
    s.split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| Error::Invalid(format!("--case {s}: expected KEY=VALUE;KEY=VALUE")))
        })
        .collect()
}

/// This process's share of a sweep's points: under a launcher (`mpirun -np N`, the
/// environment's `OMPI_COMM_WORLD_RANK`/`_SIZE` or `PMI_RANK`/`PMI_SIZE`), rank `r` of `N`
/// trains the points `i` with `i mod N = r`, each in one process; alone, every point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub rank: usize,
    pub size: usize,
}

impl Share {
    /// Every point, in this process.
    pub const ALL: Share = Share { rank: 0, size: 1 };

    /// The share the launcher's environment gives this process.
    pub fn from_env() -> Share {
        let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
        let pairs = [
            ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
            ("PMI_RANK", "PMI_SIZE"),
        ];
        pairs
            .iter()
            .find_map(|(r, n)| match (var(r), var(n)) {
                (Some(rank), Some(size)) if rank < size => Some(Share { rank, size }),
                _ => None,
            })
            .unwrap_or(Share::ALL)
    }

    /// Whether point `i` is this process's.
    pub fn owns(&self, i: usize) -> bool {
        i % self.size.max(1) == self.rank
    }
}

/// What a sweep runs.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The base config file and the overrides every point shares.
    pub config: PathBuf,
    pub sets: Vec<String>,
    pub points: Vec<Point>,
    pub out: PathBuf,
}

/// Where a point's run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Its final evaluation is written: read, not rerun.
    Finished,
    /// It has a checkpoint: resumed from there.
    Started,
    /// Nothing usable yet: trained from the start.
    New,
}

/// The final metrics of one finished run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunMetrics {
    pub values: BTreeMap<String, f64>,
}

/// The metrics a summary reports, in its column order.
pub const METRICS: &[&str] = &[
    "knn_top1",
    "knn_top5",
    "linear_top1",
    "online_probe_top1",
    "final_loss",
    "images_per_s",
];

/// The state of the run in `dir`, after checking that it is a run of `cfg`.
pub fn state(dir: &Path, cfg: &Config) -> Result<State> {
    let saved = dir.join("config.toml");
    if !saved.exists() {
        return Ok(State::New);
    }
    let text = std::fs::read_to_string(&saved).map_err(|e| Error::io(&saved, e))?;
    let theirs = Config::parse(&text, &saved, &[])?;
    if theirs.to_toml() != cfg.to_toml() {
        return Err(Error::data(
            dir,
            "holds a run of another config than this sweep point's (the base config or --set \
             changed since): remove it, or sweep into another --out",
        ));
    }
    if finished(dir)?.is_some() {
        return Ok(State::Finished);
    }
    let has_checkpoint = std::fs::read_dir(dir.join("checkpoints"))
        .map(|d| {
            d.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "ckpt"))
        })
        .unwrap_or(false);
    Ok(match has_checkpoint {
        true => State::Started,
        false => State::New,
    })
}

/// The final metrics of the run in `dir`, when its last record is the final evaluation.
pub fn finished(dir: &Path) -> Result<Option<RunMetrics>> {
    let path = dir.join("metrics.jsonl");
    if !path.exists() {
        return Ok(None);
    }
    let records = metrics::read(&path)?;
    let Some(last) = records.last() else {
        return Ok(None);
    };
    let is_final = last.get("images_per_s").is_some()
        && last.get("epoch_seconds").is_none()
        && last.get("loss").is_none();
    if !is_final {
        return Ok(None);
    }
    let mut values = BTreeMap::new();
    for key in ["knn_top1", "knn_top5", "linear_top1", "images_per_s"] {
        if let Some(v) = last.get(key).and_then(|v| v.as_f64()) {
            values.insert(key.to_string(), v);
        }
    }
    let last_epoch = records
        .iter()
        .rev()
        .find(|r| r.get("epoch_seconds").is_some());
    if let Some(e) = last_epoch {
        for (from, to) in [
            ("loss", "final_loss"),
            ("online_probe_top1", "online_probe_top1"),
        ] {
            if let Some(v) = e.get(from).and_then(|v| v.as_f64()) {
                values.insert(to.to_string(), v);
            }
        }
    }
    Ok(Some(RunMetrics { values }))
}

impl Sweep {
    /// The run directory of `p`.
    pub fn dir(&self, p: &Point) -> PathBuf {
        self.out.join("points").join(p.dir_name())
    }

    /// The config of point `p`.
    pub fn config_of(&self, p: &Point) -> Result<Config> {
        let sets: Vec<String> = self.sets.iter().cloned().chain(p.overrides()).collect();
        Config::load(&self.config, &sets)
    }

    /// Checks every point's config before anything trains, so that a typo in the last
    /// value of a grid fails at once, not hours in.
    pub fn check(&self) -> Result<Vec<Config>> {
        let mut names = std::collections::HashSet::new();
        for p in &self.points {
            if !names.insert(p.dir_name()) {
                return Err(Error::Invalid(format!(
                    "two sweep points share the directory name {}: give distinct values",
                    p.dir_name()
                )));
            }
        }
        self.points.iter().map(|p| self.config_of(p)).collect()
    }

    /// Trains every point of `share` not finished yet, one after another, rewriting the
    /// summary after each; `say` hears one line per point. An interrupted point stops the
    /// sweep with its error (its checkpoint is written): the next call resumes it.
    pub fn run(
        &self,
        opts: &TrainOptions,
        share: Share,
        say: &mut dyn FnMut(&str),
    ) -> Result<Vec<Row>> {
        let configs = self.check()?;
        std::fs::create_dir_all(self.out.join("points")).map_err(|e| Error::io(&self.out, e))?;
        let mine = self
            .points
            .iter()
            .zip(&configs)
            .enumerate()
            .filter(|(i, _)| share.owns(*i));
        for (i, (p, cfg)) in mine {
            let dir = self.dir(p);
            let n = self.points.len();
            let what = format!("point {}/{n} {}", i + 1, p.dir_name());
            match state(&dir, cfg)? {
                State::Finished => say(&format!("{what}: finished, read")),
                State::Started => {
                    say(&format!("{what}: resumed"));
                    train::resume(&dir, opts)?;
                }
                State::New => {
                    say(&format!("{what}: training"));
                    let fresh = TrainOptions {
                        overwrite: true,
                        ..opts.clone()
                    };
                    train::run(cfg, &dir, &fresh)?;
                }
            }
            self.write_summary()?;
        }
        self.write_summary()
    }

    /// The summary rows (one per point, seeds pooled) from the finished points' metrics.
    pub fn rows(&self) -> Result<Vec<Row>> {
        let mut rows: Vec<Row> = Vec::new();
        for p in &self.points {
            let Some(m) = finished(&self.dir(p))? else {
                continue;
            };
            match rows.iter_mut().find(|r| r.sets == p.sets) {
                Some(r) => r.runs.push(m),
                None => rows.push(Row {
                    sets: p.sets.clone(),
                    runs: vec![m],
                }),
            }
        }
        Ok(rows)
    }

    /// Writes `summary.csv`, `summary.md` and `summary.html` (with its charts) into the
    /// sweep's folder, and returns the rows. The processes of a spread sweep take turns
    /// (an exclusive lock on `.summary.lock`), so the last to write saw every point the
    /// others had finished.
    pub fn write_summary(&self) -> Result<Vec<Row>> {
        let lock_path = self.out.join(".summary.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        let rows = self.rows()?;
        let keys = self.keys();
        let write = |name: &str, text: String| {
            let path = self.out.join(name);
            std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
        };
        write("summary.csv", csv(&keys, &rows))?;
        write("summary.md", markdown(&keys, &rows))?;
        let charts = self.charts(&keys, &rows)?;
        write("summary.html", page(&keys, &rows, &charts))?;
        Ok(rows)
    }

    /// The swept keys, in the order they first appear.
    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for (k, _) in self.points.iter().flat_map(|p| &p.sets) {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        keys
    }

    /// One chart per swept key whose values are all numbers: kNN and linear top-1 (mean
    /// over seeds) against the key, one line per setting of the other keys.
    fn charts(&self, keys: &[String], rows: &[Row]) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for key in keys {
            let numeric = rows
                .iter()
                .all(|r| r.value(key).is_none_or(|v| v.parse::<f64>().is_ok()));
            if !numeric || rows.len() < 2 {
                continue;
            }
            let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
            for r in rows {
                let Some(x) = r.value(key).and_then(|v| v.parse::<f64>().ok()) else {
                    continue;
                };
                let others: String = r
                    .sets
                    .iter()
                    .filter(|(k, _)| k != key)
                    .map(|(k, v)| format!(" {k}={v}"))
                    .collect();
                for (metric, label) in [("knn_top1", "kNN"), ("linear_top1", "linear")] {
                    if let Some((mean, _, _)) = r.stat(metric) {
                        let name = format!("{label}{others}");
                        series.entry(name).or_default().push((x, mean));
                    }
                }
            }
            let series: Vec<plot::Series> = series
                .into_iter()
                .map(|(name, mut points)| {
                    points.sort_by(|a, b| a.0.total_cmp(&b.0));
                    plot::Series {
                        name,
                        points,
                        markers: true,
                    }
                })
                .collect();
            if series.is_empty() {
                continue;
            }
            let file = format!(
                "summary-{}.png",
                key.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            );
            plot::lines(&self.out.join(&file), key, key, "top-1 accuracy", &series)?;
            out.push((file, key.clone()));
        }
        Ok(out)
    }
}

/// One point of the summary: its overrides and the runs (one per seed) that finished.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub sets: Vec<(String, String)>,
    pub runs: Vec<RunMetrics>,
}

impl Row {
    /// The point's value of `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.sets
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Mean, sample standard deviation (0 for one run) and count of `metric` over the
    /// runs that report it.
    pub fn stat(&self, metric: &str) -> Option<(f64, f64, usize)> {
        let v: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| r.values.get(metric).copied())
            .collect();
        if v.is_empty() {
            return None;
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = match v.len() {
            1 => 0.0,
            _ => v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0),
        };
        Some((mean, var.sqrt(), v.len()))
    }
}

/// The summary as CSV: the swept keys, the runs pooled, then each metric's mean and
/// standard deviation.
fn csv(keys: &[String], rows: &[Row]) -> String {
    let quote = |s: &str| match s.contains([',', '"', '\n']) {
        true => format!("\"{}\"", s.replace('"', "\"\"")),
        false => s.to_string(),
    };
    let mut header: Vec<String> = keys.iter().map(|k| quote(k)).collect();
    header.push("runs".into());
    for m in METRICS {
        header.push(format!("{m}_mean"));
        header.push(format!("{m}_std"));
    }
    let mut out = header.join(",") + "\n";
    for r in rows {
        let mut cells: Vec<String> = keys
            .iter()
            .map(|k| quote(r.value(k).unwrap_or("")))
            .collect();
        cells.push(r.runs.len().to_string());
        for m in METRICS {
            match r.stat(m) {
                Some((mean, std, _)) => cells.extend([format!("{mean}"), format!("{std}")]),
                None => cells.extend([String::new(), String::new()]),
            }
        }
        out += &(cells.join(",") + "\n");
    }
    out
}

/// A metric as `mean ± std` (or the mean alone for one run).
fn shown(r: &Row, metric: &str) -> String {
    let digits = if metric == "images_per_s" { 0 } else { 4 };
    match r.stat(metric) {
        Some((m, _, 1)) => format!("{m:.digits$}"),
        Some((m, s, _)) => format!("{m:.digits$} ± {s:.digits$}"),
        None => "-".into(),
    }
}

/// The columns shown in the Markdown and HTML tables.
fn table(keys: &[String], rows: &[Row]) -> (Vec<String>, Vec<Vec<String>>) {
    let shown_metrics = [
        "knn_top1",
        "knn_top5",
        "linear_top1",
        "final_loss",
        "images_per_s",
    ];
    let header: Vec<String> = keys
        .iter()
        .cloned()
        .chain(["runs".to_string()])
        .chain(shown_metrics.iter().map(|m| m.to_string()))
        .collect();
    let body = rows
        .iter()
        .map(|r| {
            keys.iter()
                .map(|k| r.value(k).unwrap_or("").to_string())
                .chain([r.runs.len().to_string()])
                .chain(shown_metrics.iter().map(|m| shown(r, m)))
                .collect()
        })
        .collect();
    (header, body)
}

fn markdown(keys: &[String], rows: &[Row]) -> String {
    let (header, body) = table(keys, rows);
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | ").replace('\n', " "));
    let mut out = line(&header);
    out += &line(&vec!["---".to_string(); header.len()]);
    for r in &body {
        out += &line(r);
    }
    out
}

fn page(keys: &[String], rows: &[Row], charts: &[(String, String)]) -> String {
    let (header, body) = table(keys, rows);
    let mut html_body = String::from(
        "<h1>Sweep</h1>\n<p>Final metrics of each point (mean ± standard deviation over seeds).</p>\n",
    );
    html_body += &html::table(&header, &body);
    for (file, key) in charts {
        html_body += &html::figure(file, &format!("top-1 accuracy against {key}"));
    }
    html::page("Sweep", &html_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_split_at_top_level_commas_only() {
        let a = Axis::parse("views.augment.crop_scale=[0.2, 1.0],[0.5, 1.0]").unwrap();
        assert_eq!(a.values, vec!["[0.2, 1.0]", "[0.5, 1.0]"]);
        let a = Axis::parse("loss.kind=\"nt-xent\",\"a,b\"").unwrap();
        assert_eq!(a.values, vec!["\"nt-xent\"", "\"a,b\""]);
        assert!(Axis::parse("loss.temperature").is_err());
        assert!(Axis::parse("loss.temperature=0.1,").is_err());
    }

    #[test]
    fn the_grid_is_a_product_then_the_cases_each_over_the_seeds() {
        let axes = [
            Axis::parse("a=1,2").unwrap(),
            Axis::parse("b=x,y,z").unwrap(),
        ];
        let p = points(&axes, &[], 1, 0);
        assert_eq!(p.len(), 6);
        assert_eq!(p[1].overrides(), ["a=1", "b=y"]);
        let cases = [parse_case("c=3;d=4").unwrap()];
        let p = points(&axes, &cases, 2, 5);
        assert_eq!(p.len(), 14);
        assert_eq!(p[13].overrides(), ["c=3", "d=4", "train.seed=6"]);
        assert_eq!(p[13].dir_name(), "c-3__d-4__seed-6");
        let long = Point {
            sets: vec![("k".into(), "v".repeat(300))],
            seed: None,
        };
        assert!(long.dir_name().len() < 130);
    }

    #[test]
    fn rows_pool_seeds_into_mean_and_sample_deviation() {
        let run = |v: f64| RunMetrics {
            values: [("knn_top1".to_string(), v)].into_iter().collect(),
        };
        let r = Row {
            sets: vec![("a".into(), "1".into())],
            runs: vec![run(0.5), run(0.7)],
        };
        let (m, s, n) = r.stat("knn_top1").unwrap();
        assert!((m - 0.6).abs() < 1e-12 && (s - 0.02f64.sqrt()).abs() < 1e-12 && n == 2);
        assert_eq!(shown(&r, "knn_top1"), "0.6000 ± 0.1414");
        assert!(csv(&["a".into()], &[r]).starts_with("a,runs,knn_top1_mean"));
    }
}
