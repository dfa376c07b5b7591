//! CIFAR-10 and CIFAR-100 in their binary layout (the `*-binary.tar.gz` archives).
//!
//! A file is a sequence of fixed-size records: the label byte(s), then 3072 pixel bytes,
//! the 1024 red values first, then green, then blue, each 32 rows of 32 (CHW order).
//! CIFAR-10 records carry one label byte; CIFAR-100 records carry the coarse label
//! (0..20) and then the fine label (0..100), and the fine label is the one used.

use std::path::{Path, PathBuf};

use super::{numbered_classes, Dataset, Split};
use crate::error::{Error, Result};

/// Side of a CIFAR image.
pub const SIDE: usize = 32;
/// Pixel bytes of one record.
pub const PIXELS: usize = 3 * SIDE * SIDE;

/// Which of the two datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Cifar10,
    Cifar100,
}

impl Variant {
    /// The dataset name `data::load` knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Cifar10 => "cifar10",
            Variant::Cifar100 => "cifar100",
        }
    }

    /// Label bytes at the start of each record.
    pub fn label_bytes(self) -> usize {
        match self {
            Variant::Cifar10 => 1,
            Variant::Cifar100 => 2,
        }
    }

    /// Bytes of one record.
    pub fn record(self) -> usize {
        self.label_bytes() + PIXELS
    }

    /// Number of (fine) classes.
    pub fn classes(self) -> usize {
        match self {
            Variant::Cifar10 => 10,
            Variant::Cifar100 => 100,
        }
    }

    /// The training files, read in this order.
    pub fn train_files(self) -> &'static [&'static str] {
        match self {
            Variant::Cifar10 => &[
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
            ],
            Variant::Cifar100 => &["train.bin"],
        }
    }

    /// The test file.
    pub fn test_file(self) -> &'static str {
        match self {
            Variant::Cifar10 => "test_batch.bin",
            Variant::Cifar100 => "test.bin",
        }
    }

    /// The folder the official archive unpacks to.
    fn archive_folder(self) -> &'static str {
        match self {
            Variant::Cifar10 => "cifar-10-batches-bin",
            Variant::Cifar100 => "cifar-100-binary",
        }
    }

    /// The archive's text file of class names, one a line.
    fn names_file(self) -> &'static str {
        match self {
            Variant::Cifar10 => "batches.meta.txt",
            Variant::Cifar100 => "fine_label_names.txt",
        }
    }
}

/// Loads CIFAR from `dir`, or from the folder the official archive unpacks to inside it.
pub fn load(variant: Variant, dir: &Path) -> Result<Dataset> {
    let dir = files_dir(variant, dir);
    let read = |names: &[&str]| -> Result<Split> {
        let mut split = Split {
            data: Vec::new(),
            shape: [3, SIDE, SIDE],
            labels: Vec::new(),
        };
        for name in names {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(Error::data(&path, "not found"));
            }
            let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let (data, labels) = parse(variant, &path, &bytes)?;
            split.data.extend(data);
            split.labels.extend(labels);
        }
        Ok(split)
    };
    let train = read(variant.train_files())?;
    let test = read(&[variant.test_file()])?;
    Ok(Dataset {
        name: variant.name().into(),
        train,
        test,
        classes: variant.classes(),
        class_names: class_names(variant, &dir)?,
    })
}

/// Decodes the records of one file into values in `[0, 1]` and labels; `path` only names
/// the file in errors.
pub fn parse(variant: Variant, path: &Path, bytes: &[u8]) -> Result<(Vec<f32>, Vec<u32>)> {
    let record = variant.record();
    if bytes.is_empty() {
        return Err(Error::data(path, "empty: no records"));
    }
    if !bytes.len().is_multiple_of(record) {
        return Err(Error::data(
            path,
            format!(
                "truncated: {} bytes is not a multiple of the {record}-byte record ({} whole records and {} bytes)",
                bytes.len(),
                bytes.len() / record,
                bytes.len() % record
            ),
        ));
    }
    let n = bytes.len() / record;
    let mut data = Vec::with_capacity(n * PIXELS);
    let mut labels = Vec::with_capacity(n);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let (head, pixels) = rec.split_at(variant.label_bytes());
        if variant == Variant::Cifar100 && head[0] >= 20 {
            return Err(Error::data(
                path,
                format!("record {i}: coarse label {} out of range 0..20", head[0]),
            ));
        }
        let label = head[head.len() - 1];
        if usize::from(label) >= variant.classes() {
            return Err(Error::data(
                path,
                format!(
                    "record {i}: label {label} out of range 0..{}",
                    variant.classes()
                ),
            ));
        }
        labels.push(u32::from(label));
        data.extend(pixels.iter().map(|&b| f32::from(b) / 255.0));
    }
    Ok((data, labels))
}

/// `dir` when it holds the first training file, else the archive's folder inside it when
/// that does, else `dir` (whose missing files the reader then names).
fn files_dir(variant: Variant, dir: &Path) -> PathBuf {
    let first = variant.train_files()[0];
    let nested = dir.join(variant.archive_folder());
    if !dir.join(first).exists() && nested.join(first).exists() {
        nested
    } else {
        dir.to_path_buf()
    }
}

/// The class names from the archive's names file when present, else the label numbers.
fn class_names(variant: Variant, dir: &Path) -> Result<Vec<String>> {
    let path = dir.join(variant.names_file());
    if !path.is_file() {
        return Ok(numbered_classes(variant.classes()));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.len() != variant.classes() {
        return Err(Error::data(
            &path,
            format!(
                "{} class names, expected {}",
                names.len(),
                variant.classes()
            ),
        ));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(labels: &[u8], fill: u8) -> Vec<u8> {
        let mut r = labels.to_vec();
        r.extend(std::iter::repeat_n(fill, PIXELS));
        r
    }

    #[test]
    fn cifar100_uses_the_fine_label() {
        let mut bytes = record(&[3, 42], 255);
        bytes.extend(record(&[19, 99], 0));
        let (data, labels) = parse(Variant::Cifar100, Path::new("t.bin"), &bytes).unwrap();
        assert_eq!(labels, vec![42, 99]);
        assert_eq!(data.len(), 2 * PIXELS);
        assert_eq!((data[0], data[PIXELS]), (1.0, 0.0));
    }

    #[test]
    fn truncated_file_names_sizes() {
        let mut bytes = record(&[1], 0);
        bytes.extend(record(&[2], 0));
        bytes.truncate(5000);
        let e = parse(Variant::Cifar10, Path::new("data_batch_1.bin"), &bytes)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("data_batch_1.bin: truncated: 5000 bytes")
                && e.contains("3073-byte record"),
            "{e}"
        );
    }

    #[test]
    fn coarse_label_out_of_range() {
        let bytes = record(&[20, 1], 0);
        let e = parse(Variant::Cifar100, Path::new("train.bin"), &bytes)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("record 0: coarse label 20 out of range 0..20"),
            "{e}"
        );
    }
}
