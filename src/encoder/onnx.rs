//! A frozen encoder read from an ONNX file and run by tract, so that a teacher trained
//! elsewhere (PyTorch, JAX, ...) can provide keys without libtorch or onnxruntime.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::dims;

use crate::error::{Error, Result};

/// An ONNX graph whose first input is a batch `[n, c, h, w]` of normalised samples and whose
/// first output is their embeddings `[n, dim]`; the batch size `n` is free.
#[derive(Debug, Clone)]
pub struct OnnxEncoder {
    path: PathBuf,
    sample: [usize; 3],
    plan: Arc<TypedRunnableModel>,
    /// Width of the embeddings.
    pub dim: usize,
}

impl OnnxEncoder {
    /// Reads `path`, fixes its input to `[n, sample...]` and measures the output width on
    /// one zero sample.
    pub fn open(path: &Path, sample: [usize; 3]) -> Result<Self> {
        let fail = |e: TractError| Error::Teacher {
            path: path.to_path_buf(),
            msg: one_line(&e),
        };
        let model = tract_onnx::onnx().model_for_path(path).map_err(fail)?;
        let n = model.sym("n");
        let [c, h, w] = sample;
        let plan = model
            .with_input_fact(0, f32::fact(dims!(n, c, h, w)).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(fail)?;
        let mut enc = Self {
            path: path.to_path_buf(),
            sample,
            plan,
            dim: 0,
        };
        enc.dim = enc.embed(&vec![0.0; sample.iter().product()], 1)?.len();
        Ok(enc)
    }

    /// Embeddings `[n, dim]`, row after row, of the `n` samples stored one after another in `x`.
    pub fn embed(&self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        let fail = |msg: String| Error::Teacher {
            path: self.path.clone(),
            msg,
        };
        let [c, h, w] = self.sample;
        let input = Tensor::from_shape(&[n, c, h, w], x).map_err(|e| fail(one_line(&e)))?;
        let out = self
            .plan
            .run(tvec!(input.into_tvalue()))
            .map_err(|e| fail(one_line(&e)))?;
        let z = out
            .first()
            .ok_or_else(|| fail("the graph has no output".into()))?
            .to_plain_array_view::<f32>()
            .map_err(|e| fail(format!("its first output is not f32: {}", one_line(&e))))?;
        match z.shape() {
            [rows, _] if *rows == n => Ok(z.iter().copied().collect()),
            s => Err(fail(format!(
                "its first output has shape {s:?}; a teacher must give [batch, dim]"
            ))),
        }
    }
}

/// tract's error chain on one line.
fn one_line(e: &TractError) -> String {
    format!("{e:#}").replace('\n', " ")
}
