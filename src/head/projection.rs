//! Projection heads: `z = g(h)`, linear or an MLP with batch norm.

use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use crate::kernels;

/// Linear (no bias when batch norm follows) + optional batch norm + ReLU.
#[derive(Module, Debug)]
pub struct Hidden {
    pub linear: Linear,
    pub bn: Option<BatchNorm>,
}

/// `depth - 1` [`Hidden`] layers of `hidden` units, then a linear map to `out`.
/// Depth 1 is a linear projection.
#[derive(Module, Debug)]
pub struct Projection {
    pub hidden: Vec<Hidden>,
    pub out: Linear,
}

impl Projection {
    /// A projection from `input` to `out` features.
    pub fn new(
        input: usize,
        hidden: usize,
        out: usize,
        depth: usize,
        bn: bool,
        device: &Device,
    ) -> Self {
        let mut prev = input;
        let layers = (1..depth.max(1))
            .map(|_| {
                let l = Hidden {
                    linear: LinearConfig::new(prev, hidden).with_bias(!bn).init(device),
                    bn: bn.then(|| BatchNormConfig::new(hidden).init(device)),
                };
                prev = hidden;
                l
            })
            .collect();
        Self {
            hidden: layers,
            out: LinearConfig::new(prev, out).init(device),
        }
    }

    /// `z = out(relu(bn(linear(...h))))`.
    pub fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        for l in &self.hidden {
            x = match &l.bn {
                Some(bn) => kernels::batch_norm(bn, kernels::linear(&l.linear, x, false), true),
                None => kernels::linear(&l.linear, x, true),
            };
        }
        kernels::linear(&self.out, x, false)
    }
}
