//! A multilayer perceptron on flattened inputs.

use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;

use crate::kernels;

/// Linear + optional batch norm + ReLU.
#[derive(Module, Debug)]
pub struct Layer {
    pub linear: Linear,
    pub bn: Option<BatchNorm>,
}

/// `relu(bn(linear(x)))` layers; the representation is the last layer's output.
#[derive(Module, Debug)]
pub struct Mlp {
    pub layers: Vec<Layer>,
}

impl Mlp {
    /// Layers of `widths` units on `input` features.
    pub fn new(input: usize, widths: &[usize], bn: bool, device: &Device) -> Self {
        let mut prev = input;
        let layers = widths
            .iter()
            .map(|&w| {
                let l = Layer {
                    linear: LinearConfig::new(prev, w).with_bias(!bn).init(device),
                    bn: bn.then(|| BatchNormConfig::new(w).init(device)),
                };
                prev = w;
                l
            })
            .collect();
        Self { layers }
    }

    /// Representation of flattened `x`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.layers.iter().fold(x, |x, l| match &l.bn {
            Some(bn) => kernels::batch_norm(bn, kernels::linear(&l.linear, x, false), true),
            None => kernels::linear(&l.linear, x, true),
        })
    }
}
