//! The index of a streamed image collection: every image's location, size stamp, label
//! and split, found once by scanning a folder, reading a manifest or listing tar shards.
//!
//! Three sources, told apart by what `data.dir` is:
//! - a folder of `.tar` shards (WebDataset layout): a sample is the members sharing a key
//!   (the file name up to its first dot), an image (`.jpg`, `.jpeg`, `.png`) and an optional
//!   `.cls` holding its class as text. Shards named `test*` or `val*` are the test split.
//! - a manifest file, CSV with a header row or JSON Lines (`.csv`, `.jsonl`): fields `path`
//!   (relative to the manifest's folder, or absolute), optional `label` and `split`
//!   (`train`, or `test`/`val`/`valid`/`validation`).
//! - any other folder, walked recursively. With `train/` (and `test/`) sub-folders those are
//!   the splits (anything else at the top is ignored); a file's class is the first folder
//!   under its split folder (under the root when there are none), and files outside any
//!   class folder are unlabelled.
//!
//! Where no split is given, a sample is held out for testing when the hash of its path
//! falls in the first `holdout` of the range, so the split of a file does not change as
//! files are added. `contrastive data index DIR` writes the index to [`INDEX_FILE`] in the
//! folder (beside a manifest, `<manifest>.index.jsonl`), with every image's size read
//! from its header, so that a run on a million files reads one file instead of walking
//! the tree.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The index file `contrastive data index` writes into an image folder or shard folder.
pub const INDEX_FILE: &str = "contrastive-index.jsonl";
/// Image file extensions (compared without case).
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png"];

/// The kind of collection an index describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Folder,
    Manifest,
    Tar,
}

/// The file size and modification time of the file an image is read from (for tar
/// members, of their shard), to notice a file that changed after it was indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub bytes: u64,
    pub mtime_ns: u128,
}

impl Stamp {
    /// The stamp of `path` as it is now.
    pub fn of(path: &Path) -> Result<Stamp> {
        let m = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let mtime_ns = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        Ok(Stamp {
            bytes: m.len(),
            mtime_ns,
        })
    }
}

/// One image of the collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The image file, or the tar shard holding it, relative to the index's root unless
    /// absolute.
    pub path: String,
    /// Byte offset and length of the image inside its tar shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<(u64, u64)>,
    pub stamp: Stamp,
    /// Index into [`Index::classes`]; `u32::MAX` when unlabelled.
    pub label: u32,
    pub test: bool,
    /// Width, height and channels from the image's header; 0 until `data index` reads
    /// them.
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
    #[serde(default)]
    pub channels: u8,
}

/// The first line of an index file.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    contrastive_index: u32,
    kind: Kind,
    classes: Vec<String>,
    entries: usize,
}

/// Every image of a collection, in a fixed order (by path, then member), with the class
/// names its labels index.
#[derive(Debug, Clone, PartialEq)]
pub struct Index {
    pub kind: Kind,
    /// The folder relative paths start from.
    pub root: PathBuf,
    pub classes: Vec<String>,
    pub entries: Vec<Entry>,
}

impl Index {
    /// The index of `path` (a folder, a shard folder or a manifest): read from its index
    /// file when one exists, else built by scanning, holding out `holdout` of the samples
    /// that have no split.
    pub fn open(path: &Path, holdout: f64) -> Result<Index> {
        let file = index_file(path);
        if file.is_file() {
            return Index::read(&file, root_of(path));
        }
        Index::scan(path, holdout)
    }

    /// Builds the index of `path` by listing it, without reading any image.
    pub fn scan(path: &Path, holdout: f64) -> Result<Index> {
        let mut index = if path.is_file() {
            manifest(path, holdout)?
        } else if !path.is_dir() {
            return Err(Error::data(path, "not found: expected an image folder, a folder of .tar shards or a .csv/.jsonl manifest"));
        } else if has_shards(path)? {
            tar_shards(path, holdout)?
        } else {
            folder(path, holdout)?
        };
        if index.entries.is_empty() {
            return Err(Error::data(
                path,
                "no images: expected .jpg, .jpeg or .png files",
            ));
        }
        index
            .entries
            .sort_by(|a, b| (a.test, &a.path, a.member).cmp(&(b.test, &b.path, b.member)));
        Ok(index)
    }

    /// The file an entry is read from.
    pub fn file(&self, e: &Entry) -> PathBuf {
        self.root.join(&e.path)
    }

    /// A SHA-256 of what decides the run's samples (paths, members, stamps, labels,
    /// splits), written into checkpoints so that a resume on changed data is refused.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for c in &self.classes {
            h.update(c.as_bytes());
            h.update([0]);
        }
        for e in &self.entries {
            h.update(e.path.as_bytes());
            h.update([0]);
            let (o, l) = e.member.unwrap_or((u64::MAX, 0));
            for x in [o, l, e.stamp.bytes, u64::from(e.label), u64::from(e.test)] {
                h.update(x.to_le_bytes());
            }
            h.update(e.stamp.mtime_ns.to_le_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Writes the index as JSON Lines to `file`, atomically (a temporary file renamed).
    pub fn write(&self, file: &Path) -> Result<()> {
        let tmp = file.with_extension("jsonl.tmp");
        let out = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut out = BufWriter::new(out);
        let header = Header {
            contrastive_index: 1,
            kind: self.kind,
            classes: self.classes.clone(),
            entries: self.entries.len(),
        };
        let lines = std::iter::once(json_line(&header)).chain(self.entries.iter().map(json_line));
        for line in lines {
            out.write_all(line.as_bytes())
                .map_err(|e| Error::io(&tmp, e))?;
        }
        out.flush().map_err(|e| Error::io(&tmp, e))?;
        drop(out);
        std::fs::rename(&tmp, file).map_err(|e| Error::io(file, e))
    }

    /// Reads an index file written by [`Index::write`]; relative paths start at `root`.
    pub fn read(file: &Path, root: PathBuf) -> Result<Index> {
        let f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
        let mut lines = BufReader::new(f).lines().enumerate();
        let bad = |n: usize, msg: String| Error::data(file, format!("line {}: {msg}", n + 1));
        let (n, first) = lines
            .next()
            .ok_or_else(|| Error::data(file, "empty index file"))?;
        let first = first.map_err(|e| Error::io(file, e))?;
        let header: Header = serde_json::from_str(&first).map_err(|e| bad(n, e.to_string()))?;
        if header.contrastive_index != 1 {
            return Err(bad(
                n,
                format!("index version {}, expected 1", header.contrastive_index),
            ));
        }
        let mut entries = Vec::with_capacity(header.entries);
        for (n, line) in lines {
            let line = line.map_err(|e| Error::io(file, e))?;
            let e: Entry = serde_json::from_str(&line).map_err(|e| bad(n, e.to_string()))?;
            if e.label != u32::MAX && e.label as usize >= header.classes.len() {
                return Err(bad(
                    n,
                    format!("label {} of {} classes", e.label, header.classes.len()),
                ));
            }
            entries.push(e);
        }
        if entries.is_empty() {
            return Err(Error::data(file, "an index of no images"));
        }
        if entries.len() != header.entries {
            return Err(Error::data(
                file,
                format!(
                    "{} entries, the header says {} (a cut file?)",
                    entries.len(),
                    header.entries
                ),
            ));
        }
        Ok(Index {
            kind: header.kind,
            root,
            classes: header.classes,
            entries,
        })
    }
}

/// `v` as one JSON line.
fn json_line<T: Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string(v).expect("index entries serialise");
    s.push('\n');
    s
}

/// The index file of a collection at `path`.
pub fn index_file(path: &Path) -> PathBuf {
    if path.is_file() {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".index.jsonl");
        path.with_file_name(name)
    } else {
        path.join(INDEX_FILE)
    }
}

/// The folder relative paths of the collection at `path` start from.
fn root_of(path: &Path) -> PathBuf {
    if path.is_file() {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        path.to_path_buf()
    }
}

/// True when `path`'s extension is an image's.
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| IMAGE_EXTENSIONS.iter().any(|e| x.eq_ignore_ascii_case(e)))
}

/// Whether the sample named `key` is held out: its hash's top 53 bits, as a fraction,
/// fall below `holdout`.
fn held_out(key: &str, holdout: f64) -> bool {
    let h = Sha256::digest(key.as_bytes());
    let x = u64::from_le_bytes(h[..8].try_into().expect("8 bytes")) >> 11;
    (x as f64 / (1u64 << 53) as f64) < holdout
}

/// Class names in order: by number when every name is an integer, else by name.
fn sorted_classes(names: BTreeSet<String>) -> Vec<String> {
    let mut v: Vec<String> = names.into_iter().collect();
    if v.iter().all(|n| n.parse::<i64>().is_ok()) {
        v.sort_by_key(|n| n.parse::<i64>().expect("checked"));
    }
    v
}

/// Replaces class names by their labels in `named` (name, entry) pairs.
fn labelled(named: Vec<(Option<String>, Entry)>) -> (Vec<String>, Vec<Entry>) {
    let classes = sorted_classes(named.iter().filter_map(|(n, _)| n.clone()).collect());
    let entries = named
        .into_iter()
        .map(|(n, mut e)| {
            e.label = n.map_or(u32::MAX, |n| {
                classes.iter().position(|c| *c == n).expect("a known class") as u32
            });
            e
        })
        .collect();
    (classes, entries)
}

fn entry(path: String, stamp: Stamp, test: bool) -> Entry {
    Entry {
        path,
        member: None,
        stamp,
        label: u32::MAX,
        test,
        width: 0,
        height: 0,
        channels: 0,
    }
}

/// Files under `dir` (recursively, hidden names skipped, symbolic links to folders not
/// followed), as paths relative to `dir`, sorted.
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let abs = dir.join(&rel);
        for e in std::fs::read_dir(&abs).map_err(|e| Error::io(&abs, e))? {
            let e = e.map_err(|e| Error::io(&abs, e))?;
            let name = e.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = e.file_type().map_err(|err| Error::io(e.path(), err))?;
            if kind.is_dir() {
                todo.push(rel.join(&name));
            } else {
                out.push(rel.join(&name));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn folder(dir: &Path, holdout: f64) -> Result<Index> {
    let split_dirs = dir.join("train").is_dir();
    let mut named = Vec::new();
    for rel in walk(dir)?.into_iter().filter(|p| is_image(p)) {
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let key = parts.join("/");
        let (test, within) = match (split_dirs, parts[0].as_str()) {
            (true, "train") => (false, &parts[1..]),
            (true, "test") => (true, &parts[1..]),
            (true, _) => continue,
            (false, _) => (held_out(&key, holdout), &parts[..]),
        };
        let class = (within.len() > 1).then(|| within[0].clone());
        let stamp = Stamp::of(&dir.join(&rel))?;
        named.push((class, entry(key, stamp, test)));
    }
    let (classes, entries) = labelled(named);
    Ok(Index {
        kind: Kind::Folder,
        root: dir.to_path_buf(),
        classes,
        entries,
    })
}

/// One row of a manifest.
#[derive(Debug, Deserialize)]
struct Row {
    path: String,
    #[serde(default)]
    label: Option<serde_json::Value>,
    #[serde(default)]
    split: Option<String>,
}

fn manifest(file: &Path, holdout: f64) -> Result<Index> {
    let root = root_of(file);
    let ext = file.extension().and_then(|x| x.to_str()).unwrap_or("");
    let rows: Vec<(usize, Row)> = match ext.to_ascii_lowercase().as_str() {
        "csv" => {
            let mut r =
                csv::Reader::from_path(file).map_err(|e| Error::data(file, e.to_string()))?;
            let headers = r
                .headers()
                .map_err(|e| Error::data(file, e.to_string()))?
                .clone();
            let mut rows = Vec::new();
            for (n, rec) in r.records().enumerate() {
                let rec = rec.map_err(|e| Error::data(file, e.to_string()))?;
                let field = |name: &str| {
                    headers
                        .iter()
                        .position(|h| h.trim() == name)
                        .and_then(|i| rec.get(i))
                        .map(|v| v.trim().to_owned())
                        .filter(|v| !v.is_empty())
                };
                let path = field("path").ok_or_else(|| {
                    Error::data(
                        file,
                        format!("row {}: no `path` column or an empty path", n + 2),
                    )
                })?;
                let label = field("label").map(serde_json::Value::String);
                rows.push((
                    n + 2,
                    Row {
                        path,
                        label,
                        split: field("split"),
                    },
                ));
            }
            rows
        }
        "jsonl" | "ndjson" => {
            let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
            let mut rows = Vec::new();
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let row: Row = serde_json::from_str(line)
                    .map_err(|e| Error::data(file, format!("line {}: {e}", n + 1)))?;
                rows.push((n + 1, row));
            }
            rows
        }
        _ => {
            return Err(Error::data(
                file,
                "not a manifest: expected a .csv (with a header row) or .jsonl file",
            ))
        }
    };
    let mut named = Vec::with_capacity(rows.len());
    for (n, row) in rows {
        let label = match row.label {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s),
            Some(serde_json::Value::Number(x)) => Some(x.to_string()),
            Some(other) => {
                return Err(Error::data(
                    file,
                    format!("line {n}: label {other}: expected a class name or number"),
                ))
            }
        };
        let test = match row.split.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None => held_out(&row.path, holdout),
            Some("train") => false,
            Some("test" | "val" | "valid" | "validation") => true,
            Some(other) => {
                return Err(Error::data(
                    file,
                    format!("line {n}: split `{other}`: expected train, test or val"),
                ))
            }
        };
        let stamp = Stamp::of(&root.join(&row.path))
            .map_err(|e| Error::data(file, format!("line {n}: {e}")))?;
        named.push((label, entry(row.path, stamp, test)));
    }
    let (classes, entries) = labelled(named);
    Ok(Index {
        kind: Kind::Manifest,
        root,
        classes,
        entries,
    })
}

fn has_shards(dir: &Path) -> Result<bool> {
    Ok(shards(dir)?.next().is_some())
}

fn shards(dir: &Path) -> Result<impl Iterator<Item = PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("tar")))
        .collect();
    v.sort();
    Ok(v.into_iter())
}

/// A shard's samples by key: the image member (offset, length) and the class text.
type Members = std::collections::BTreeMap<String, (Option<(u64, u64)>, Option<String>)>;

fn tar_shards(dir: &Path, holdout: f64) -> Result<Index> {
    let mut named = Vec::new();
    let mut any_test = false;
    let mut all = Vec::new();
    for shard in shards(dir)? {
        let name = shard
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let lower = name.to_ascii_lowercase();
        let test = lower.starts_with("test") || lower.starts_with("val");
        any_test |= test;
        let stamp = Stamp::of(&shard)?;
        let f = std::fs::File::open(&shard).map_err(|e| Error::io(&shard, e))?;
        let mut archive = tar::Archive::new(f);
        let mut samples = Members::new();
        let entries = archive.entries().map_err(|e| Error::io(&shard, e))?;
        for member in entries {
            let mut member =
                member.map_err(|e| Error::data(&shard, format!("not a tar file: {e}")))?;
            if !member.header().entry_type().is_file() {
                continue;
            }
            let path = member
                .path()
                .map_err(|e| Error::io(&shard, e))?
                .into_owned();
            let base = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let Some((stem, ext)) = base.split_once('.') else {
                continue;
            };
            let key = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => format!("{}/{stem}", p.display()),
                _ => stem.to_owned(),
            };
            let slot = samples.entry(key).or_default();
            let ext = ext.to_ascii_lowercase();
            if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
                slot.0 = Some((member.raw_file_position(), member.size()));
            } else if ext == "cls" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut member, &mut text)
                    .map_err(|e| Error::data(&shard, format!("{}: {e}", path.display())))?;
                slot.1 = Some(text.trim().to_owned()).filter(|t| !t.is_empty());
            }
        }
        for (key, (image, class)) in samples {
            if let Some(member) = image {
                all.push((
                    format!("{name}:{key}"),
                    name.clone(),
                    member,
                    stamp,
                    test,
                    class,
                ));
            }
        }
    }
    for (key, shard, member, stamp, test, class) in all {
        let test = if any_test {
            test
        } else {
            held_out(&key, holdout)
        };
        let mut e = entry(shard, stamp, test);
        e.member = Some(member);
        named.push((class, e));
    }
    let (classes, entries) = labelled(named);
    Ok(Index {
        kind: Kind::Tar,
        root: dir.to_path_buf(),
        classes,
        entries,
    })
}
