//! Run-directory housekeeping: atomic writes, the exclusive lock a training process holds,
//! and the rules for starting a fresh run in a directory.
//!
//! What a run directory promises: every file is replaced atomically (a reader sees the old
//! or the new content, never a mix or a truncation); one process at a time trains in it;
//! a fresh run never writes into a directory that holds another run.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file inside a run directory.
pub const LOCK: &str = ".lock";

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename over
/// `path`, fsync of the folder (so that the rename itself survives a power cut).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let io = |e| Error::io(&tmp, e);
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// `path` with `.tmp` appended: where [`atomic_write`] stages its content.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".tmp");
    PathBuf::from(p)
}

/// Removes the `*.tmp` files an interrupted [`atomic_write`] left in `dir`.
pub fn remove_stale_tmp(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "tmp") {
            std::fs::remove_file(&p).map_err(|err| Error::io(&p, err))?;
        }
    }
    Ok(())
}

/// An exclusive lock on a run directory, held until dropped (or the process ends: the
/// kernel releases an `flock` with its process, so a killed run leaves no stale lock).
/// The lock file holds the holder's PID, for the error a second process gets.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock of `dir` (which must exist), or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(Error::RunDir {
                    path: dir.to_path_buf(),
                    msg: format!(
                        "in use by another contrastive process (PID {}); wait for it or stop it",
                        if holder.is_empty() { "unknown" } else { holder }
                    ),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        file.set_len(0).map_err(|e| Error::io(&path, e))?;
        writeln!(file, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
        Ok(Self { _file: file })
    }
}

/// What a fresh run found at its output directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fresh {
    /// The directory did not exist and was created: remove it if the start fails.
    Created,
    /// It existed and was empty (or was emptied by `overwrite`).
    Reused,
}

/// Prepares `dir` for a fresh run and locks it. A directory that holds anything is
/// refused, naming `--resume` and a fresh `--out`; with `overwrite`, a directory that holds
/// a run (its `config.toml`) is emptied first, under the lock. Anything else is never
/// deleted: `--overwrite` on a folder that is not a run directory is refused.
pub fn prepare_fresh(dir: &Path, overwrite: bool) -> Result<(RunLock, Fresh)> {
    let refuse = |msg: String| Error::RunDir {
        path: dir.to_path_buf(),
        msg,
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        return Ok((RunLock::acquire(dir)?, Fresh::Created));
    }
    if !dir.is_dir() {
        return Err(refuse("exists and is not a directory".into()));
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_none_or(|n| n != LOCK))
        .collect();
    if entries.is_empty() {
        return Ok((RunLock::acquire(dir)?, Fresh::Reused));
    }
    if !overwrite {
        return Err(refuse(format!(
            "already holds a run: continue it with `--resume {0}`, or give a fresh --out \
             (or --overwrite to empty it first)",
            dir.display()
        )));
    }
    if !dir.join("config.toml").is_file() {
        return Err(refuse(
            "is not empty and holds no run (no config.toml): --overwrite empties run \
             directories only"
                .into(),
        ));
    }
    let lock = RunLock::acquire(dir)?;
    for p in entries {
        let gone = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        gone.map_err(|e| Error::io(&p, e))?;
    }
    Ok((lock, Fresh::Reused))
}

/// Step checkpoints in `dir`, oldest first (`best.ckpt` excluded).
pub fn list_checkpoints(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut ckpts: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("step-") && n.ends_with(".ckpt"))
        })
        .collect();
    ckpts.sort();
    Ok(ckpts)
}

/// Removes all but the newest `keep` step checkpoints.
pub fn prune(dir: &Path, keep: usize) -> Result<()> {
    let ckpts = list_checkpoints(dir)?;
    let n = ckpts.len();
    for p in ckpts.into_iter().take(n.saturating_sub(keep)) {
        std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_and_leaves_no_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.jsonl");
        std::fs::write(&p, "old\n").unwrap();
        atomic_write(&p, b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new\n");
        assert!(!tmp_path(&p).exists());
    }

    #[test]
    fn a_second_lock_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = RunLock::acquire(dir.path()).unwrap();
        let e = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("PID {}", std::process::id())), "{e}");
        drop(held);
        RunLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn a_fresh_run_refuses_a_used_directory_and_overwrites_only_runs() {
        let root = tempfile::tempdir().unwrap();
        let run = root.path().join("r");
        let (lock, how) = prepare_fresh(&run, false).unwrap();
        assert_eq!(how, Fresh::Created);
        drop(lock);
        prepare_fresh(&run, false).unwrap();
        std::fs::write(run.join("config.toml"), "").unwrap();
        std::fs::create_dir(run.join("checkpoints")).unwrap();
        std::fs::write(run.join("checkpoints/step-1.ckpt"), "x").unwrap();
        let e = prepare_fresh(&run, false).unwrap_err().to_string();
        assert!(e.contains("--resume") && e.contains("--out"), "{e}");
        let (_lock, how) = prepare_fresh(&run, true).unwrap();
        assert_eq!(how, Fresh::Reused);
        assert!(!run.join("checkpoints").exists() && !run.join("config.toml").exists());
        let other = root.path().join("photos");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("a.jpg"), "x").unwrap();
        let e = prepare_fresh(&other, true).unwrap_err().to_string();
        assert!(e.contains("holds no run"), "{e}");
        assert!(other.join("a.jpg").exists());
    }
}
