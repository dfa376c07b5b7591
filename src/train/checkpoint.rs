//! Checkpoint files: named byte sections behind a JSON header, sealed by a SHA-256 of
//! every byte before it, written atomically (temporary file, fsync, rename, fsync of the
//! folder).
//!
//! Layout: `CTRCKPT2` | header length (u64 LE) | header JSON | sections, back to back |
//! SHA-256 of all that precedes it (32 bytes). The header lists each section's name and
//! length. The checksum is verified before anything is parsed, so no byte that is read
//! back (position, metrics count, config) can change unnoticed.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::rundir::atomic_write;
use crate::error::{Error, Result};
use crate::loss::LossState;
use crate::pairs::Tag;

const MAGIC: &[u8; 8] = b"CTRCKPT2";
/// The first format, whose checksum left the header out.
const MAGIC_V1: &[u8; 8] = b"CTRCKPT1";
const SHA_LEN: usize = 32;

#[derive(Serialize, Deserialize)]
struct Header {
    meta: serde_json::Value,
    sections: Vec<(String, u64)>,
}

/// Named byte sections, in file order.
pub type Sections = Vec<(String, Vec<u8>)>;

/// A checkpoint's content: JSON metadata and named binary sections.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    pub meta: serde_json::Value,
    pub sections: Sections,
}

/// What a training checkpoint's header holds besides the section list: where the loop
/// stands and what it has summed so far, so that a resumed run continues exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The next step to run: epoch (from 0) and step within it.
    pub epoch: usize,
    pub step: usize,
    /// Lines of `metrics.jsonl` written up to this point (later ones are dropped on resume).
    pub metrics_lines: usize,
    /// The best online kNN accuracy so far (`best.ckpt`).
    pub best_knn: Option<f64>,
    /// Steps per epoch of the run that wrote it (another batch size or dataset differs).
    pub steps_per_epoch: usize,
    /// Sums over the current epoch's steps: loss, InfoNCE bound, and their count.
    pub epoch_sums: (f64, f64, usize),
    /// Values the loss holds across steps.
    #[serde(default)]
    pub loss_state: LossState,
    /// The config the run was written under, as TOML.
    pub config: String,
    /// Data-parallel ranks that trained it (1 before scale-out existed).
    #[serde(default = "one")]
    pub ranks: usize,
    /// A streamed collection's fingerprint ([`crate::data::stream::index::Index::fingerprint`]):
    /// a resume on files that were added, removed, relabelled or changed is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

fn one() -> usize {
    1
}

impl Meta {
    /// The metadata of checkpoint `c`; the error names the field at fault.
    pub fn of(c: &Checkpoint) -> std::result::Result<Self, String> {
        serde_json::from_value(c.meta.clone()).map_err(|e| format!("corrupt header: {e}"))
    }
}

impl Checkpoint {
    /// The bytes of section `name`.
    pub fn section(&self, name: &str) -> Option<&[u8]> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let header = Header {
            meta: self.meta.clone(),
            sections: self
                .sections
                .iter()
                .map(|(n, b)| (n.clone(), b.len() as u64))
                .collect(),
        };
        let header = serde_json::to_vec(&header)
            .map_err(|e| Error::Invalid(format!("checkpoint header: {e}")))?;
        let body: usize = self.sections.iter().map(|(_, b)| b.len()).sum();
        let mut out = Vec::with_capacity(16 + header.len() + body + SHA_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        for (_, b) in &self.sections {
            out.extend_from_slice(b);
        }
        let sha = Sha256::digest(&out);
        out.extend_from_slice(&sha);
        Ok(out)
    }

    /// Writes the checkpoint to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        atomic_write(path, &self.to_bytes()?)
    }

    /// Reads and verifies the checkpoint at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes).map_err(|msg| Error::Checkpoint {
            path: path.to_path_buf(),
            msg,
        })
    }

    /// Parses and verifies checkpoint bytes; the error says what is wrong with them.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Self, String> {
        if bytes.len() >= 8 && &bytes[..8] == MAGIC_V1 {
            return Err(
                "written by an older version whose checksum left the header out; \
                        not read (train it again, or read it with that version)"
                    .into(),
            );
        }
        if bytes.len() < 16 + SHA_LEN || &bytes[..8] != MAGIC {
            return Err("not a contrastive checkpoint (bad magic or truncated)".into());
        }
        let (content, sha) = bytes.split_at(bytes.len() - SHA_LEN);
        if Sha256::digest(content).as_slice() != sha {
            return Err("checksum mismatch (truncated or corrupt)".into());
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&content[8..16]);
        let hlen = u64::from_le_bytes(len);
        let body = usize::try_from(hlen)
            .ok()
            .and_then(|h| h.checked_add(16))
            .filter(|&e| e <= content.len())
            .ok_or_else(|| format!("header of {hlen} bytes in a file of {}", bytes.len()))?;
        let header: Header = serde_json::from_slice(&content[16..body])
            .map_err(|e| format!("corrupt header: {e}"))?;
        let mut at = body;
        let mut sections = Vec::with_capacity(header.sections.len());
        for (name, len) in header.sections {
            let end = usize::try_from(len)
                .ok()
                .and_then(|l| at.checked_add(l))
                .filter(|&e| e <= content.len())
                .ok_or_else(|| format!("section `{name}` of {len} bytes runs past the end"))?;
            sections.push((name, content[at..end].to_vec()));
            at = end;
        }
        if at != content.len() {
            return Err(format!(
                "{} bytes after the last section",
                content.len() - at
            ));
        }
        Ok(Self {
            meta: header.meta,
            sections,
        })
    }
}

/// Little-endian bytes of `v`.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The `f32`s of little-endian bytes (a trailing partial value is dropped).
pub fn bytes_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Little-endian bytes of `v`.
pub fn u32_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The `u32`s of little-endian bytes (a trailing partial value is dropped).
pub fn bytes_u32(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Bytes of one serialised [`Tag`]: instance, label, view, time, cluster.
const TAG_BYTES: usize = 18;

/// Tags as fixed-width little-endian records.
pub fn tag_bytes(tags: &[Tag]) -> Vec<u8> {
    tags.iter()
        .flat_map(|t| {
            t.instance
                .to_le_bytes()
                .into_iter()
                .chain(t.label.to_le_bytes())
                .chain(t.view.to_le_bytes())
                .chain(t.time.to_le_bytes())
                .chain(t.cluster.to_le_bytes())
        })
        .collect()
}

/// The tags of [`tag_bytes`]; `None` when the length is not a whole number of records.
pub fn bytes_tags(b: &[u8]) -> Option<Vec<Tag>> {
    let word = |c: &[u8], at: usize| u32::from_le_bytes([c[at], c[at + 1], c[at + 2], c[at + 3]]);
    if !b.len().is_multiple_of(TAG_BYTES) {
        return None;
    }
    Some(
        b.chunks_exact(TAG_BYTES)
            .map(|c| Tag {
                instance: word(c, 0),
                label: word(c, 4),
                view: u16::from_le_bytes([c[8], c[9]]),
                time: word(c, 10),
                cluster: word(c, 14),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            meta: serde_json::json!({"epoch": 3}),
            sections: vec![
                ("model".into(), vec![1, 2, 3]),
                ("optim".into(), vec![4; 100]),
            ],
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.ckpt");
        sample().save(&p).unwrap();
        assert_eq!(Checkpoint::load(&p).unwrap(), sample());
    }

    #[test]
    fn corruption_and_truncation_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.ckpt");
        sample().save(&p).unwrap();
        let mut b = std::fs::read(&p).unwrap();
        let n = b.len();
        b[n - 5] ^= 0xff;
        std::fs::write(&p, &b).unwrap();
        let e = Checkpoint::load(&p).unwrap_err().to_string();
        assert!(e.contains("checksum mismatch"), "{e}");
        std::fs::write(&p, &b[..n - 10]).unwrap();
        let e = Checkpoint::load(&p).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }

    /// Issue 18, item 3: the header (epoch, step, metrics count) is under the checksum.
    #[test]
    fn an_edited_header_is_refused() {
        let good = sample().to_bytes().unwrap();
        let at = good
            .windows(9)
            .position(|w| w == b"\"epoch\":3")
            .expect("the header holds the epoch");
        let mut edited = good.clone();
        edited[at + 8] = b'4';
        let e = Checkpoint::from_bytes(&edited).unwrap_err();
        assert!(e.contains("checksum mismatch"), "{e}");
    }

    /// Crafted section lengths with a valid checksum (a sealed but lying header) give an
    /// error, never a panic.
    #[test]
    fn crafted_lengths_are_errors() {
        for lens in [
            vec![u64::MAX, 1],
            vec![u64::MAX / 2, u64::MAX / 2 + 10],
            vec![2, 200],
        ] {
            let header =
                serde_json::json!({"meta": {}, "sections": [["a", lens[0]], ["b", lens[1]]]});
            let header = serde_json::to_vec(&header).unwrap();
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&(header.len() as u64).to_le_bytes());
            b.extend_from_slice(&header);
            b.extend_from_slice(&[7; 103]);
            let sha = Sha256::digest(&b);
            b.extend_from_slice(&sha);
            assert!(Checkpoint::from_bytes(&b).is_err(), "{lens:?}");
        }
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        let sha = Sha256::digest(&b);
        b.extend_from_slice(&sha);
        assert!(Checkpoint::from_bytes(&b).is_err());
    }
}
