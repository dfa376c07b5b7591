//! Library errors. Each message is one line that names the file, key or value at fault.

use std::path::PathBuf;

/// Everything the library can refuse.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error on a named file. (`cause`, not `source`: as a source it
    /// would be printed a second time in the CLI's error chain.)
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A dataset file whose content is not what its format promises.
    #[error("{}: {msg}", path.display())]
    Data { path: PathBuf, msg: String },
    /// A configuration value that is out of range or of the wrong kind.
    #[error("config key `{key}` = {value}: expected {allowed}")]
    Config {
        key: String,
        value: String,
        allowed: String,
    },
    /// A configuration file that cannot be parsed.
    #[error("{}: {msg}", path.display())]
    ConfigFile { path: PathBuf, msg: String },
    /// A run directory that cannot be used as asked (in use, holds another run).
    #[error("run directory {}: {msg}", path.display())]
    RunDir { path: PathBuf, msg: String },
    /// Training stopped by a signal after writing a checkpoint of where it stood.
    #[error(
        "stopped by {} at epoch {epoch}, step {step}, checkpoint written: continue with `contrastive train --resume {}`",
        signal_name(*signal), dir.display()
    )]
    Interrupted {
        signal: i32,
        epoch: usize,
        step: usize,
        dir: PathBuf,
    },
    /// A checkpoint that cannot be read or fails its checksum.
    #[error("checkpoint {}: {msg}", path.display())]
    Checkpoint { path: PathBuf, msg: String },
    /// A teacher model file (ONNX) that cannot be read or run on the data.
    #[error("teacher {}: {msg}", path.display())]
    Teacher { path: PathBuf, msg: String },
    /// A loss or score called with inputs it cannot use.
    #[error("{0}")]
    Invalid(String),
    /// Training produced a loss that is NaN or infinite.
    #[error("non-finite loss {loss} at step {step} (epoch {epoch}); {}", match kept {
        Some(p) => format!("the last good checkpoint, {}, is kept", p.display()),
        None => "no checkpoint had been written yet".to_string(),
    })]
    NonFinite {
        step: usize,
        epoch: usize,
        loss: f32,
        /// The newest checkpoint on disk, if any.
        kept: Option<PathBuf>,
    },
    /// A plot, picture, page or array file that could not be drawn or written.
    #[error("{}: {msg}", path.display())]
    Output { path: PathBuf, msg: String },
    /// No source could provide a dataset.
    #[error("could not fetch {dataset}: {msg}")]
    Fetch { dataset: String, msg: String },
}

fn signal_name(signal: i32) -> String {
    match signal {
        2 => "SIGINT".into(),
        15 => "SIGTERM".into(),
        s => format!("signal {s}"),
    }
}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }

    /// An [`Error::Data`] for `path`.
    pub fn data(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// An [`Error::Config`] for `key`.
    pub fn config(
        key: impl Into<String>,
        value: impl ToString,
        allowed: impl Into<String>,
    ) -> Self {
        Error::Config {
            key: key.into(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

/// The name a config file uses for `kind` (a serde enum's variant), for messages.
pub fn kind_name(kind: &impl serde::Serialize) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => format!("({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 18, item 14: the message names the checkpoint that is kept, or says there is
    /// none yet, instead of promising one that does not exist.
    #[test]
    fn a_non_finite_loss_names_only_a_checkpoint_that_exists() {
        let e = |kept: Option<&str>| {
            Error::NonFinite {
                step: 2,
                epoch: 1,
                loss: f32::NAN,
                kept: kept.map(PathBuf::from),
            }
            .to_string()
        };
        assert!(e(None).ends_with("no checkpoint had been written yet"));
        assert!(e(Some("r/checkpoints/step-1.ckpt"))
            .ends_with("the last good checkpoint, r/checkpoints/step-1.ckpt, is kept"));
    }
}
