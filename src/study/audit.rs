//! `contrastive data audit`: what a dataset holds before anything trains on it (the
//! review's fourth question): class balance, near-duplicates across the train and test
//! splits, each class's mean image, and where the objects sit (the centres of mass of
//! the images' intensity).

use std::path::Path;

use image::{Rgb, RgbImage};
use rayon::prelude::*;

use crate::data::{preview, Dataset, Split};
use crate::error::Result;
use crate::report::html;

/// Bits of the average hash that may differ between two images before their pixels are
/// compared: the hash only finds the candidates.
const HASH_SLACK: u32 = 6;
/// Side of a tile of the mean-image and centre-of-mass pictures, in pixels per input pixel.
const SCALE: usize = 4;

/// A pair of near-duplicate samples: train index, test index, mean absolute difference
/// of their values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Duplicate {
    pub train: usize,
    pub test: usize,
    pub difference: f32,
}

/// What the audit found.
#[derive(Debug, Clone, PartialEq)]
pub struct Audit {
    pub name: String,
    /// Samples of each class (then the unlabelled ones) in train and test.
    pub train_counts: Vec<usize>,
    pub test_counts: Vec<usize>,
    /// Largest class over smallest (of the classes present) in the training split.
    pub imbalance: f64,
    /// Test samples with a near-duplicate in the training split (mean absolute difference
    /// at most `near`), the closest pair each, and how many of them are exact.
    pub duplicates: Vec<Duplicate>,
    pub exact: usize,
    pub near: f32,
    /// Label disagreements among the duplicate pairs.
    pub label_conflicts: usize,
    /// The training split's mean centre of mass (row, column) and its spread.
    pub centre: Option<([f64; 2], [f64; 2])>,
}

/// The 64-bit average hash of a sample: an 8 x 8 area-average of its mean over channels,
/// one bit per cell above the cells' mean (any size; series are read as one row).
pub fn average_hash(sample: &[f32], [c, h, w]: [usize; 3]) -> u64 {
    let mut cells = [0.0f32; 64];
    let mut counts = [0u32; 64];
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let cell = (y * 8 / h.max(1)) * 8 + x * 8 / w.max(1);
                cells[cell] += sample[ch * h * w + y * w + x];
                counts[cell] += 1;
            }
        }
    }
    let mut used = 0.0f32;
    let mut n = 0usize;
    for i in 0..64 {
        if counts[i] > 0 {
            cells[i] /= counts[i] as f32;
            used += cells[i];
            n += 1;
        }
    }
    let mean = used / n.max(1) as f32;
    (0..64).fold(0u64, |bits, i| {
        bits | (u64::from(counts[i] > 0 && cells[i] > mean) << i)
    })
}

/// Mean absolute difference of two samples.
fn difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len().max(1) as f32
}

/// For each test sample, its closest training sample among those whose average hash is
/// within [`HASH_SLACK`] bits, when their mean absolute difference is at most `near`.
pub fn duplicates(train: &Split, test: &Split, near: f32) -> Vec<Duplicate> {
    let hash = |s: &Split| -> Vec<u64> {
        (0..s.len())
            .into_par_iter()
            .map(|i| average_hash(s.sample(i), s.shape))
            .collect()
    };
    let (ht, hs) = (hash(train), hash(test));
    (0..test.len())
        .into_par_iter()
        .filter_map(|j| {
            ht.iter()
                .enumerate()
                .filter(|(_, &h)| (h ^ hs[j]).count_ones() <= HASH_SLACK)
                .map(|(i, _)| (i, difference(train.sample(i), test.sample(j))))
                .filter(|&(_, d)| d <= near)
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, d)| Duplicate {
                    train: i,
                    test: j,
                    difference: d,
                })
        })
        .collect()
}

/// The centre of mass `(row, column)` of a sample's intensity (mean over channels), in
/// pixels; `None` for an all-zero sample.
pub fn centre_of_mass(sample: &[f32], [c, h, w]: [usize; 3]) -> Option<[f64; 2]> {
    let (mut m, mut my, mut mx) = (0.0f64, 0.0f64, 0.0f64);
    for ch in 0..c {
        for y in 0..h {
            for x in 0..w {
                let v = f64::from(sample[ch * h * w + y * w + x].max(0.0));
                (m, my, mx) = (m + v, my + v * y as f64, mx + v * x as f64);
            }
        }
    }
    (m > 0.0).then(|| [my / m, mx / m])
}

/// Audits `ds`; near-duplicates are pairs within a mean absolute difference of `near`.
pub fn audit(ds: &Dataset, near: f32) -> Audit {
    let counts = |s: &Split| {
        let mut c = s.label_counts(ds.classes);
        c.push(s.len() - c.iter().sum::<usize>());
        c
    };
    let (train_counts, test_counts) = (counts(&ds.train), counts(&ds.test));
    let present: Vec<usize> = train_counts[..ds.classes]
        .iter()
        .copied()
        .filter(|&c| c > 0)
        .collect();
    let imbalance = match (present.iter().max(), present.iter().min()) {
        (Some(&a), Some(&b)) if b > 0 => a as f64 / b as f64,
        _ => 1.0,
    };
    let duplicates = duplicates(&ds.train, &ds.test, near);
    let exact = duplicates.iter().filter(|d| d.difference == 0.0).count();
    let label_conflicts = duplicates
        .iter()
        .filter(|d| ds.train.labels[d.train] != ds.test.labels[d.test])
        .count();
    let centre = (!preview::is_series(ds.train.shape))
        .then(|| centre_stats(&ds.train))
        .flatten();
    Audit {
        name: ds.name.clone(),
        train_counts,
        test_counts,
        imbalance,
        duplicates,
        exact,
        near,
        label_conflicts,
        centre,
    }
}

/// Mean and standard deviation of the centres of mass of a split's samples.
fn centre_stats(s: &Split) -> Option<([f64; 2], [f64; 2])> {
    let centres: Vec<[f64; 2]> = (0..s.len())
        .filter_map(|i| centre_of_mass(s.sample(i), s.shape))
        .collect();
    let n = centres.len() as f64;
    if n == 0.0 {
        return None;
    }
    let mean = [0, 1].map(|k| centres.iter().map(|c| c[k]).sum::<f64>() / n);
    let std = [0, 1].map(|k| {
        (centres
            .iter()
            .map(|c| (c[k] - mean[k]).powi(2))
            .sum::<f64>()
            / n)
            .sqrt()
    });
    Some((mean, std))
}

/// Each class's mean image side by side (the unlabelled samples last, when any), values
/// stretched to the picture's range.
pub fn mean_images(ds: &Dataset) -> RgbImage {
    let s = &ds.train;
    let [c, h, w] = s.shape;
    let len = c * h * w;
    let groups = ds.classes + 1;
    let mut sums = vec![vec![0.0f32; len]; groups];
    let mut counts = vec![0usize; groups];
    for i in 0..s.len() {
        let g = (s.labels[i] as usize).min(ds.classes);
        sums[g]
            .iter_mut()
            .zip(s.sample(i))
            .for_each(|(a, b)| *a += b);
        counts[g] += 1;
    }
    let shown: Vec<Vec<f32>> = (0..groups)
        .filter(|&g| counts[g] > 0)
        .map(|g| sums[g].iter().map(|v| v / counts[g] as f32).collect())
        .collect();
    let (lo, hi) = shown
        .iter()
        .flatten()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = (hi - lo).max(1e-6);
    let mut img = RgbImage::from_pixel(
        (shown.len() * (w * SCALE + 4)) as u32,
        (h * SCALE) as u32,
        Rgb([255, 255, 255]),
    );
    for (k, mean) in shown.iter().enumerate() {
        let stretched: Vec<f32> = mean.iter().map(|v| (v - lo) / span).collect();
        preview::draw(
            &mut img,
            &stretched,
            s.shape,
            SCALE,
            ((k * (w * SCALE + 4)) as u32, 0),
        );
    }
    img
}

/// A heat map of where the training images' centres of mass fall: one cell per input
/// pixel, darker where more centres fall.
pub fn centre_map(s: &Split) -> RgbImage {
    let [_, h, w] = s.shape;
    let mut grid = vec![0usize; h * w];
    for i in 0..s.len() {
        if let Some([y, x]) = centre_of_mass(s.sample(i), s.shape) {
            let (y, x) = (
                (y.round() as usize).min(h - 1),
                (x.round() as usize).min(w - 1),
            );
            grid[y * w + x] += 1;
        }
    }
    let top = grid.iter().copied().max().unwrap_or(1).max(1) as f32;
    let heat: Vec<f32> = grid
        .iter()
        .map(|&n| 1.0 - (n as f32 / top).sqrt())
        .collect();
    let mut img = RgbImage::new((w * SCALE) as u32, (h * SCALE) as u32);
    preview::draw(&mut img, &heat, [1, h, w], SCALE, (0, 0));
    img
}

/// The audit as Markdown.
pub fn markdown(a: &Audit, class_names: &[String]) -> String {
    let mut out = format!(
        "# Data audit: {}\n\n## Class balance\n\n| class | train | test |\n|---|---|---|\n",
        a.name
    );
    let names = class_names
        .iter()
        .cloned()
        .chain(["unlabelled".to_string()]);
    for ((name, tr), te) in names.zip(&a.train_counts).zip(&a.test_counts) {
        if tr + te > 0 {
            out += &format!("| {name} | {tr} | {te} |\n");
        }
    }
    out += &format!(
        "\nLargest over smallest class in train: {:.2}.\n\n",
        a.imbalance
    );
    out += &format!(
        "## Near-duplicates across train and test\n\n{} test samples have a training sample within a mean absolute difference of {} ({} identical); {} of those pairs disagree on the label.\n",
        a.duplicates.len(),
        a.near,
        a.exact,
        a.label_conflicts
    );
    if !a.duplicates.is_empty() {
        out += "\n| test | train | difference |\n|---|---|---|\n";
        for d in a.duplicates.iter().take(20) {
            out += &format!("| {} | {} | {:.4} |\n", d.test, d.train, d.difference);
        }
    }
    if let Some((m, s)) = a.centre {
        out += &format!(
            "\n## Where the objects sit\n\nCentre of mass of the training images' intensity: row {:.2} ± {:.2}, column {:.2} ± {:.2} (pixels).\n",
            m[0], s[0], m[1], s[1]
        );
    }
    out
}

/// Writes `audit.md`, `audit.html`, every duplicate pair with both labels in
/// `duplicates.csv`, and the pictures (images only) into `dir`.
pub fn write(ds: &Dataset, a: &Audit, dir: &Path) -> Result<()> {
    let err = |p: &Path, e: std::io::Error| crate::error::Error::io(p, e);
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    let mut csv = String::from("test,train,difference,test_label,train_label\n");
    for d in &a.duplicates {
        let (lt, lr) = (ds.test.labels[d.test], ds.train.labels[d.train]);
        csv += &format!("{},{},{},{lt},{lr}\n", d.test, d.train, d.difference);
    }
    let path = dir.join("duplicates.csv");
    std::fs::write(&path, csv).map_err(|e| err(&path, e))?;
    let md = markdown(a, &ds.class_names);
    let path = dir.join("audit.md");
    std::fs::write(&path, &md).map_err(|e| err(&path, e))?;
    let mut body = format!("<pre>{}</pre>\n", html::escape(&md));
    if !preview::is_series(ds.train.shape) {
        preview::save(&mean_images(ds), &dir.join("class-means.png"))?;
        preview::save(&centre_map(&ds.train), &dir.join("centres.png"))?;
        body += &html::figure(
            "class-means.png",
            "Each class's mean training image, in class order.",
        );
        body += &html::figure(
            "centres.png",
            "Where the training images' centres of mass fall (darker: more).",
        );
    }
    let path = dir.join("audit.html");
    std::fs::write(&path, html::page(&format!("Data audit: {}", a.name), &body))
        .map_err(|e| err(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(data: Vec<f32>, n: usize, labels: Vec<u32>) -> Split {
        let side = ((data.len() / n) as f64).sqrt() as usize;
        Split {
            data,
            shape: [1, side, side],
            labels,
        }
    }

    /// A test image planted in the training split (and one nudged by a little noise) is
    /// found, with its label conflict; unrelated images are not.
    #[test]
    fn planted_duplicates_are_found() {
        let img = |seed: u32| -> Vec<f32> {
            (0..64)
                .map(|i| (((i * 7 + seed * 13) % 17) as f32) / 16.0)
                .collect()
        };
        let train = split([img(1), img(2), img(3)].concat(), 3, vec![0, 1, 2]);
        let nudged: Vec<f32> = img(3).iter().map(|v| v + 0.001).collect();
        let test = split([img(2), img(9), nudged].concat(), 3, vec![1, 0, 0]);
        let found = duplicates(&train, &test, 0.01);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            (found[0].train, found[0].test, found[0].difference),
            (1, 0, 0.0)
        );
        assert_eq!((found[1].train, found[1].test), (2, 2));
        let ds = Dataset {
            name: "planted".into(),
            train,
            test,
            classes: 3,
            class_names: vec!["a".into(), "b".into(), "c".into()],
        };
        let a = audit(&ds, 0.01);
        assert_eq!((a.exact, a.label_conflicts), (1, 1));
        assert!(markdown(&a, &ds.class_names).contains("2 test samples have a training sample"));
    }

    #[test]
    fn the_centre_of_mass_of_one_bright_pixel_is_that_pixel() {
        let mut s = vec![0.0; 25];
        s[3 * 5 + 1] = 1.0;
        assert_eq!(centre_of_mass(&s, [1, 5, 5]), Some([3.0, 1.0]));
        assert_eq!(centre_of_mass(&[0.0; 4], [1, 2, 2]), None);
    }
}
