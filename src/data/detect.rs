//! Which dataset a path holds, for commands given a path but no dataset name.
//!
//! A file selects its folder and is recognised by name; a folder by the files in it:
//! IDX files (`*-ubyte`, `*-ubyte.gz`) are MNIST-like (`fashion-mnist` when the path
//! says so), `*.bin` are CIFAR (`train.bin`/`test.bin` CIFAR-100, else CIFAR-10),
//! `*.ts`/`*.tsv` are a UCR/UEA problem, `digits.csv(.gz)` is `digits`, and anything
//! else is an image folder.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The dataset name [`super::load`] should read `path` with, and the folder to read.
pub fn infer(path: &Path) -> Result<(String, PathBuf)> {
    if !path.exists() {
        return Err(Error::data(path, "not found"));
    }
    if path.is_file() {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        let name = by_file_name(file, path).unwrap_or_else(|| "folder".into());
        return Ok((name, dir));
    }
    let mut names: Vec<String> = std::fs::read_dir(path)
        .map_err(|e| Error::io(path, e))?
        .filter_map(|e| e.ok()?.file_name().to_str().map(String::from))
        .collect();
    names.sort();
    if names.iter().any(|n| n == "cifar-10-batches-bin") {
        return Ok(("cifar10".into(), path.to_path_buf()));
    }
    if names.iter().any(|n| n == "cifar-100-binary") {
        return Ok(("cifar100".into(), path.to_path_buf()));
    }
    let name = names
        .iter()
        .filter_map(|n| by_file_name(n, path))
        .map(|n| {
            if n.starts_with("ucr/") {
                "ucr".into()
            } else {
                n
            }
        })
        .next()
        .unwrap_or_else(|| "folder".into());
    Ok((name, path.to_path_buf()))
}

/// The dataset a file of this name belongs to; `path` tells MNIST from Fashion-MNIST.
fn by_file_name(file: &str, path: &Path) -> Option<String> {
    if file.ends_with("-ubyte") || file.ends_with("-ubyte.gz") {
        let fashion = path
            .to_string_lossy()
            .to_ascii_lowercase()
            .contains("fashion");
        return Some(if fashion { "fashion-mnist" } else { "mnist" }.into());
    }
    if file == "train.bin" || file == "test.bin" {
        return Some("cifar100".into());
    }
    if file.ends_with(".bin") {
        return Some("cifar10".into());
    }
    if file == "digits.csv" || file == "digits.csv.gz" {
        return Some("digits".into());
    }
    let stem = file
        .strip_suffix(".ts")
        .or_else(|| file.strip_suffix(".tsv"))?;
    let problem = stem
        .strip_suffix("_TRAIN")
        .or_else(|| stem.strip_suffix("_TEST"));
    Some(problem.map_or_else(|| "ucr".into(), |p| format!("ucr/{p}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_select_the_reader() {
        let p = Path::new("x");
        let f = |n: &str| by_file_name(n, p);
        assert_eq!(f("t10k-images-idx3-ubyte.gz").as_deref(), Some("mnist"));
        assert_eq!(f("data_batch_3.bin").as_deref(), Some("cifar10"));
        assert_eq!(f("test.bin").as_deref(), Some("cifar100"));
        assert_eq!(f("GunPoint_TEST.ts").as_deref(), Some("ucr/GunPoint"));
        assert_eq!(f("Coffee_TRAIN.tsv").as_deref(), Some("ucr/Coffee"));
        assert_eq!(f("digits.csv.gz").as_deref(), Some("digits"));
        assert_eq!(f("cat.png"), None);
        let fashion = by_file_name("train-images-idx3-ubyte", Path::new("data/fashion-mnist"));
        assert_eq!(fashion.as_deref(), Some("fashion-mnist"));
    }
}
