//! Checkpoint files: named byte sections behind a JSON header and a SHA-256 checksum,
//! written atomically (temporary file, fsync, rename, fsync of the folder).
//!
//! Layout: `CTRCKPT1` | header length (u64 LE) | header JSON | sections, back to back.
//! The header lists each section's name and length and the SHA-256 of all section bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"CTRCKPT1";

#[derive(Serialize, Deserialize)]
struct Header {
    meta: serde_json::Value,
    sections: Vec<(String, u64)>,
    sha256: String,
}

/// A checkpoint's content: JSON metadata and named binary sections.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    pub meta: serde_json::Value,
    pub sections: Vec<(String, Vec<u8>)>,
}

impl Checkpoint {
    /// The bytes of section `name`.
    pub fn section(&self, name: &str) -> Option<&[u8]> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// Writes the checkpoint to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut h = Sha256::new();
        for (_, b) in &self.sections {
            h.update(b);
        }
        let header = Header {
            meta: self.meta.clone(),
            sections: self
                .sections
                .iter()
                .map(|(n, b)| (n.clone(), b.len() as u64))
                .collect(),
            sha256: format!("{:x}", h.finalize()),
        };
        let header = serde_json::to_vec(&header).map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        let tmp = tmp_path(path);
        let io = |e| Error::io(&tmp, e);
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(MAGIC).map_err(io)?;
        f.write_all(&(header.len() as u64).to_le_bytes())
            .map_err(io)?;
        f.write_all(&header).map_err(io)?;
        for (_, b) in &self.sections {
            f.write_all(b).map_err(io)?;
        }
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        if let Some(dir) = path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Reads and verifies the checkpoint at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad = |msg: String| Error::Checkpoint {
            path: path.to_path_buf(),
            msg,
        };
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(bad(
                "not a contrastive checkpoint (bad magic or truncated header)".into(),
            ));
        }
        let hlen = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or([0; 8])) as usize;
        let body = 16usize.checked_add(hlen).filter(|&e| e <= bytes.len());
        let Some(body) = body else {
            return Err(bad(format!(
                "truncated: header of {hlen} bytes, file of {}",
                bytes.len()
            )));
        };
        let header: Header = serde_json::from_slice(&bytes[16..body])
            .map_err(|e| bad(format!("corrupt header: {e}")))?;
        let total: u64 = header.sections.iter().map(|(_, l)| l).sum();
        if (bytes.len() - body) as u64 != total {
            return Err(bad(format!(
                "truncated or padded: sections need {total} bytes, file has {}",
                bytes.len() - body
            )));
        }
        let sha = format!("{:x}", Sha256::digest(&bytes[body..]));
        if sha != header.sha256 {
            return Err(bad(format!(
                "checksum mismatch: content {sha}, header {}",
                header.sha256
            )));
        }
        let mut at = body;
        let sections = header
            .sections
            .into_iter()
            .map(|(name, len)| {
                let b = bytes[at..at + len as usize].to_vec();
                at += len as usize;
                (name, b)
            })
            .collect();
        Ok(Self {
            meta: header.meta,
            sections,
        })
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".tmp");
    PathBuf::from(p)
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
}
