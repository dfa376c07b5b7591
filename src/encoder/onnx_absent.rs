//! ONNX teachers in a build without the `onnx` feature: opening one is a clear error, and
//! the type cannot be constructed, so nothing downstream can run one.

use std::path::Path;

use crate::error::{Error, Result};

/// Stands in for the tract-backed encoder; never constructed.
#[derive(Debug, Clone)]
pub struct OnnxEncoder {
    /// Width of the embeddings.
    pub dim: usize,
    never: std::convert::Infallible,
}

impl OnnxEncoder {
    /// Refuses: this build cannot read ONNX files.
    pub fn open(path: &Path, _sample: [usize; 3]) -> Result<Self> {
        Err(Error::config(
            "keys.teacher",
            path.display(),
            "a run directory or .ckpt file: this build has no `onnx` feature (build with \
             `--features onnx`)",
        ))
    }

    /// Unreachable: there is no value to call it on.
    pub fn embed(&self, _x: &[f32], _n: usize) -> Result<Vec<f32>> {
        match self.never {}
    }
}
