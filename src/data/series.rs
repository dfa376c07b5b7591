//! UCR/UEA time-series problems: sktime `.ts` files and UCR `.tsv` files.
//!
//! A problem `<Name>` is the pair `<Name>_TRAIN.ts` and `<Name>_TEST.ts` (or `.tsv`) in
//! one folder; `.ts` is preferred when both exist.
//!
//! - `.ts`: `#` comment lines, header lines `@key value` (`@problemName`,
//!   `@timeStamps false`, `@missing`, `@univariate`, `@dimensions N`, `@equalLength`,
//!   `@seriesLength`, `@classLabel true a b c`; keys without case), `@data`, then one
//!   series a line: dimensions separated by `:`, values by `,`, the class label last.
//!   Labels are numbered in the order of the train file's `@classLabel` list;
//!   `@classLabel false` leaves the series unlabelled (`u32::MAX`).
//! - `.tsv`: one univariate series a line, the label then the values, tab-separated.
//!   Labels are numbered in the sorted order of the train file's distinct labels
//!   (numerically when all are numbers). Trailing `NaN`s are the UCR archive's padding
//!   of shorter series and are dropped.
//!
//! Missing values (`?` or `NaN`) are filled by linear interpolation between the nearest
//! observed values on either side, or copy the nearest observed value at the ends.
//! Series of unequal length (between series, dimensions or the two files) are resampled
//! by linear interpolation to the longest length of the problem, keeping both end points,
//! so that each sample is `[dimensions, 1, length]` and spans the same time. Values are
//! not normalised.

use std::path::Path;

use super::{Dataset, Split};
use crate::error::{Error, Result};

/// One series as read: its dimensions (missing values filled), label and line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub dims: Vec<Vec<f32>>,
    pub label: Option<String>,
    pub line: usize,
}

/// The series of one file and, for `.ts`, the label list its header declares
/// (`None` when the file has `@classLabel false` or is `.tsv`).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub series: Vec<Series>,
    pub class_labels: Option<Vec<String>>,
}

/// The file format of a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ts,
    Tsv,
}

impl Format {
    fn ext(self) -> &'static str {
        match self {
            Format::Ts => "ts",
            Format::Tsv => "tsv",
        }
    }
}

/// Loads the problem in `dir`; with `problem`, it must be `<problem>`, else `dir` must
/// hold exactly one.
pub fn load(dir: &Path, problem: Option<&str>) -> Result<Dataset> {
    let (name, format) = find_problem(dir, problem)?;
    let path = |split: &str| dir.join(format!("{name}_{split}.{}", format.ext()));
    let (train_path, test_path) = (path("TRAIN"), path("TEST"));
    let train = read(&train_path, format)?;
    let test = read(&test_path, format)?;
    let class_labels = match format {
        Format::Ts => train.class_labels.clone(),
        Format::Tsv => Some(sorted_labels(&train.series)),
    };
    let dims = train.series[0].dims.len();
    if let Some(s) = test.series.iter().find(|s| s.dims.len() != dims) {
        return Err(Error::data(
            &test_path,
            format!(
                "line {}: {} dimensions, but {} has {dims}",
                s.line,
                s.dims.len(),
                train_path.display()
            ),
        ));
    }
    let length = train
        .series
        .iter()
        .chain(&test.series)
        .flat_map(|s| s.dims.iter().map(Vec::len))
        .max()
        .unwrap_or(1);
    let labels = class_labels.unwrap_or_default();
    let split = |parsed: &Parsed, path: &Path| -> Result<Split> {
        let mut data = Vec::with_capacity(parsed.series.len() * dims * length);
        let mut ids = Vec::with_capacity(parsed.series.len());
        for s in &parsed.series {
            ids.push(label_id(s, &labels, path, &train_path)?);
            for d in &s.dims {
                data.extend(resample(d, length));
            }
        }
        Ok(Split {
            data,
            shape: [dims, 1, length],
            labels: ids,
        })
    };
    Ok(Dataset {
        name: format!("ucr/{name}"),
        train: split(&train, &train_path)?,
        test: split(&test, &test_path)?,
        classes: labels.len(),
        class_names: labels,
    })
}

/// The problem name and format in `dir`, from its `<Name>_TRAIN.ts(v)` file names.
pub fn find_problem(dir: &Path, problem: Option<&str>) -> Result<(String, Format)> {
    if let Some(p) = problem {
        for format in [Format::Ts, Format::Tsv] {
            if dir.join(format!("{p}_TRAIN.{}", format.ext())).is_file() {
                return Ok((p.to_owned(), format));
            }
        }
        return Err(Error::data(
            dir,
            format!("no {p}_TRAIN.ts or {p}_TRAIN.tsv file"),
        ));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut found: Vec<(String, Format)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        for format in [Format::Ts, Format::Tsv] {
            if let Some(name) = file.strip_suffix(&format!("_TRAIN.{}", format.ext())) {
                found.push((name.to_owned(), format));
            }
        }
    }
    found.sort_by_key(|(name, format)| (name.clone(), *format != Format::Ts));
    found.dedup_by(|a, b| a.0 == b.0);
    match found.len() {
        0 => Err(Error::data(
            dir,
            "no <Name>_TRAIN.ts or <Name>_TRAIN.tsv file",
        )),
        1 => Ok(found.remove(0)),
        _ => Err(Error::data(
            dir,
            format!(
                "holds several problems ({}): use dataset `ucr/<Name>` to pick one",
                found
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn read(path: &Path, format: Format) -> Result<Parsed> {
    if !path.is_file() {
        return Err(Error::data(path, "not found"));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::data(
            path,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })?;
    match format {
        Format::Ts => parse_ts(path, &text),
        Format::Tsv => parse_tsv(path, &text),
    }
}

/// The header of a `.ts` file, as far as it matters here.
#[derive(Default)]
struct Header {
    dimensions: Option<usize>,
    univariate: Option<bool>,
    class_labels: Option<Vec<String>>,
}

/// Parses the text of a `.ts` file; `path` only names it in errors.
pub fn parse_ts(path: &Path, text: &str) -> Result<Parsed> {
    let err = |line: usize, msg: String| Error::data(path, format!("line {line}: {msg}"));
    let mut header = Header::default();
    let mut data_line = None;
    let mut series = Vec::new();
    let mut content = false;
    for (i, raw) in text.lines().enumerate() {
        let (n, line) = (i + 1, raw.trim());
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        content = true;
        if data_line.is_some() {
            series.push(ts_series(line, n, &header, series.first(), &err)?);
            continue;
        }
        let Some(rest) = line.strip_prefix('@') else {
            return Err(err(n, "a series before the @data line".into()));
        };
        let (key, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let value = value.trim();
        let flag = |v: &str| match v.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(err(n, format!("@{key} `{v}`: expected true or false"))),
        };
        match key.to_ascii_lowercase().as_str() {
            "data" => data_line = Some(n),
            "timestamps" if flag(value)? => {
                return Err(err(n, "time-stamped series are not supported".into()))
            }
            "targetlabel" if flag(value)? => {
                return Err(err(
                    n,
                    "regression problems (@targetLabel true) are not supported".into(),
                ))
            }
            "univariate" => header.univariate = Some(flag(value)?),
            "dimensions" => {
                let d = value.parse::<usize>().ok().filter(|&d| d > 0);
                header.dimensions = Some(d.ok_or_else(|| {
                    err(
                        n,
                        format!("@dimensions `{value}`: expected a positive integer"),
                    )
                })?);
            }
            "classlabel" => {
                let mut words = value.split_whitespace();
                let on = flag(words.next().unwrap_or(""))?;
                let labels: Vec<String> = words.map(String::from).collect();
                if on && labels.is_empty() {
                    return Err(err(n, "@classLabel true lists no labels".into()));
                }
                header.class_labels = on.then_some(labels);
            }
            _ => {}
        }
    }
    if !content {
        return Err(Error::data(path, "empty file: no header and no series"));
    }
    let Some(at) = data_line else {
        return Err(Error::data(path, "no @data line"));
    };
    if series.is_empty() {
        return Err(err(at, "no series after @data".into()));
    }
    Ok(Parsed {
        series,
        class_labels: header.class_labels,
    })
}

/// One `.ts` data line.
fn ts_series(
    line: &str,
    n: usize,
    header: &Header,
    first: Option<&Series>,
    err: &dyn Fn(usize, String) -> Error,
) -> Result<Series> {
    let mut parts: Vec<&str> = line.split(':').collect();
    let label = match &header.class_labels {
        Some(labels) => {
            let label = parts.pop().unwrap_or("").trim();
            if parts.is_empty() {
                return Err(err(n, "no values before the class label".into()));
            }
            if !labels.iter().any(|l| l == label) {
                return Err(err(
                    n,
                    format!(
                        "label `{label}` is not in @classLabel ({})",
                        labels.join(", ")
                    ),
                ));
            }
            Some(label.to_owned())
        }
        None => None,
    };
    let expected = header
        .dimensions
        .or(header.univariate.filter(|&u| u).map(|_| 1))
        .or(first.map(|s| s.dims.len()));
    if let Some(d) = expected.filter(|&d| d != parts.len()) {
        return Err(err(n, format!("{} dimensions, expected {d}", parts.len())));
    }
    let dims = parts
        .iter()
        .enumerate()
        .map(|(d, part)| {
            let mut values = part
                .split(',')
                .enumerate()
                .map(|(k, tok)| {
                    value(tok)
                        .map_err(|m| err(n, format!("dimension {}, value {}: {m}", d + 1, k + 1)))
                })
                .collect::<Result<Vec<f32>>>()?;
            if !fill_missing(&mut values) {
                return Err(err(n, format!("dimension {} has no observed value", d + 1)));
            }
            Ok(values)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Series {
        dims,
        label,
        line: n,
    })
}

/// Parses the text of a UCR `.tsv` file; `path` only names it in errors.
pub fn parse_tsv(path: &Path, text: &str) -> Result<Parsed> {
    let err = |line: usize, msg: String| Error::data(path, format!("line {line}: {msg}"));
    let mut series = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let (n, line) = (i + 1, raw.trim());
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split('\t');
        let label = fields.next().unwrap_or("").trim().to_owned();
        let mut values = fields
            .enumerate()
            .map(|(k, tok)| value(tok).map_err(|m| err(n, format!("value {}: {m}", k + 1))))
            .collect::<Result<Vec<f32>>>()?;
        while values.last().is_some_and(|v| v.is_nan()) {
            values.pop();
        }
        if values.is_empty() {
            return Err(err(
                n,
                "no values: expected the label then tab-separated values".into(),
            ));
        }
        fill_missing(&mut values);
        series.push(Series {
            dims: vec![values],
            label: Some(label),
            line: n,
        });
    }
    if series.is_empty() {
        return Err(Error::data(path, "empty file: no series"));
    }
    Ok(Parsed {
        series,
        class_labels: None,
    })
}

/// A value token: a finite number, or `NaN` for a missing one (`?` or `NaN`).
fn value(tok: &str) -> std::result::Result<f32, String> {
    let tok = tok.trim();
    if tok == "?" || tok.eq_ignore_ascii_case("nan") {
        return Ok(f32::NAN);
    }
    match tok.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("`{tok}` is not a finite number")),
        Err(_) if tok.is_empty() => Err("empty value".into()),
        Err(_) => Err(format!("`{tok}` is not a number")),
    }
}

/// Replaces each `NaN` by linear interpolation between the nearest observed values on
/// either side (the nearest observed value at the ends). False when nothing is observed.
pub fn fill_missing(v: &mut [f32]) -> bool {
    let observed: Vec<usize> = (0..v.len()).filter(|&i| !v[i].is_nan()).collect();
    let (Some(&first), Some(&last)) = (observed.first(), observed.last()) else {
        return false;
    };
    let (head, tail) = (v[first], v[last]);
    v[..first].fill(head);
    v[last + 1..].fill(tail);
    for pair in observed.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (va, vb) = (v[a], v[b]);
        for (i, x) in v.iter_mut().enumerate().take(b).skip(a + 1) {
            *x = va + (vb - va) * (i - a) as f32 / (b - a) as f32;
        }
    }
    true
}

/// `v` resampled to `len` points by linear interpolation, keeping both end points.
pub fn resample(v: &[f32], len: usize) -> Vec<f32> {
    if v.len() == len {
        return v.to_vec();
    }
    if v.len() == 1 || len == 1 {
        return vec![v[0]; len];
    }
    let step = (v.len() - 1) as f64 / (len - 1) as f64;
    (0..len)
        .map(|j| {
            let t = j as f64 * step;
            let i = (t.floor() as usize).min(v.len() - 2);
            let f = (t - i as f64) as f32;
            v[i] + (v[i + 1] - v[i]) * f
        })
        .collect()
}

/// The distinct labels of `series`, sorted numerically when all are numbers.
fn sorted_labels(series: &[Series]) -> Vec<String> {
    let mut labels: Vec<String> = series.iter().filter_map(|s| s.label.clone()).collect();
    labels.sort();
    labels.dedup();
    let numbers: Option<Vec<f64>> = labels.iter().map(|l| l.parse().ok()).collect();
    if let Some(numbers) = numbers {
        let mut pairs: Vec<(f64, String)> = numbers.into_iter().zip(labels).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        labels = pairs.into_iter().map(|(_, l)| l).collect();
    }
    labels
}

/// The number of `s`'s label among the train classes (`u32::MAX` when unlabelled).
fn label_id(s: &Series, classes: &[String], path: &Path, train: &Path) -> Result<u32> {
    let Some(label) = &s.label else {
        return Ok(u32::MAX);
    };
    classes
        .iter()
        .position(|c| c == label)
        .map(|i| i as u32)
        .ok_or_else(|| {
            Error::data(
                path,
                format!(
                    "line {}: label `{label}` is not a class of {} ({})",
                    s.line,
                    train.display(),
                    classes.join(", ")
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_values_interpolate_and_copy_at_the_ends() {
        let mut v = [f32::NAN, 1.0, f32::NAN, f32::NAN, 4.0, f32::NAN];
        assert!(fill_missing(&mut v));
        assert_eq!(v, [1.0, 1.0, 2.0, 3.0, 4.0, 4.0]);
        assert!(!fill_missing(&mut [f32::NAN; 2]));
    }

    #[test]
    fn resampling_keeps_end_points() {
        assert_eq!(resample(&[0.0, 2.0], 5), vec![0.0, 0.5, 1.0, 1.5, 2.0]);
        assert_eq!(resample(&[3.0], 3), vec![3.0; 3]);
        assert_eq!(resample(&[0.0, 1.0, 2.0], 3), vec![0.0, 1.0, 2.0]);
    }

    #[test]
    fn numeric_labels_sort_as_numbers() {
        let s = |l: &str| Series {
            dims: vec![vec![0.0]],
            label: Some(l.into()),
            line: 1,
        };
        let labels = sorted_labels(&[s("10"), s("-1"), s("2"), s("2")]);
        assert_eq!(labels, vec!["-1", "2", "10"]);
    }
}
