//! The UCI optdigits images as scikit-learn ships them (`digits.csv.gz`): one row per
//! image, 64 comma-separated pixel values in `0..=16` (8x8, row-major), then the label
//! `0..=9`. Samples are `[1, 8, 8]`, values / 16.
//!
//! There is no official train/test split. Every fourth row (rows 3, 7, 11, ... counting
//! from 0) is a test sample and the others are train: deterministic, valid for a file of
//! any size, and both splits span the whole file (1348 train and 449 test of 1797).

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use super::{numbered_classes, Dataset, Split};
use crate::error::{Error, Result};

/// The file name inside the dataset folder (read plain or with `.gz`).
pub const FILE: &str = "digits.csv";
/// Pixels per image.
pub const PIXELS: usize = 64;
/// Number of classes.
pub const CLASSES: usize = 10;

/// Loads `dir/digits.csv.gz` (or `dir/digits.csv`).
pub fn load(dir: &Path) -> Result<Dataset> {
    let path = super::idx::resolve(&dir.join(FILE))?;
    let raw = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = String::new();
        GzDecoder::new(raw.as_slice())
            .read_to_string(&mut out)
            .map_err(|e| Error::data(&path, format!("corrupt gzip stream or not text: {e}")))?;
        out
    } else {
        String::from_utf8(raw).map_err(|_| Error::data(&path, "not UTF-8 text"))?
    };
    let rows = parse(&path, &text)?;
    let mut train = empty_split();
    let mut test = empty_split();
    for (i, (pixels, label)) in rows.into_iter().enumerate() {
        let split = if i % 4 == 3 { &mut test } else { &mut train };
        split.data.extend(pixels.iter().map(|&p| p / 16.0));
        split.labels.push(label);
    }
    Ok(Dataset {
        name: "digits".into(),
        train,
        test,
        classes: CLASSES,
        class_names: numbered_classes(CLASSES),
    })
}

fn empty_split() -> Split {
    Split {
        data: Vec::new(),
        shape: [1, 8, 8],
        labels: Vec::new(),
    }
}

/// The rows of the CSV text as (pixels, label); `path` only names the file in errors.
pub fn parse(path: &Path, text: &str) -> Result<Vec<(Vec<f32>, u32)>> {
    let err = |line: usize, msg: String| Error::data(path, format!("line {line}: {msg}"));
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let (n, line) = (i + 1, line.trim());
        if line.is_empty() {
            continue;
        }
        let values = line
            .split(',')
            .enumerate()
            .map(|(k, tok)| {
                tok.trim().parse::<f32>().map_err(|_| {
                    err(
                        n,
                        format!("value {}: `{}` is not a number", k + 1, tok.trim()),
                    )
                })
            })
            .collect::<Result<Vec<f32>>>()?;
        if values.len() != PIXELS + 1 {
            return Err(err(
                n,
                format!(
                    "{} values, expected {} pixels and a label",
                    values.len(),
                    PIXELS
                ),
            ));
        }
        if let Some(k) = values[..PIXELS]
            .iter()
            .position(|v| !(0.0..=16.0).contains(v))
        {
            return Err(err(
                n,
                format!("pixel {}: {} out of range 0..=16", k + 1, values[k]),
            ));
        }
        let label = values[PIXELS];
        if label.fract() != 0.0 || !(0.0..CLASSES as f32).contains(&label) {
            return Err(err(n, format!("label {label} is not one of 0..=9")));
        }
        rows.push((values[..PIXELS].to_vec(), label as u32));
    }
    if rows.is_empty() {
        return Err(Error::data(path, "empty file: no rows"));
    }
    Ok(rows)
}
