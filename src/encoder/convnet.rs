//! The small ConvNet of recipe R1: conv3x3 + BN + ReLU blocks, then global average pooling.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::kernels;

/// conv3x3 (no bias) + batch norm + ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl ConvBnRelu {
    /// A 3x3 block from `cin` to `cout` channels with padding 1.
    pub fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        Self::shaped(cin, cout, [3, 3], [stride, stride], device)
    }

    /// A block with a `kernel` of odd sizes, `stride`, and "same" padding `kernel / 2`.
    pub fn shaped(
        cin: usize,
        cout: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        device: &Device,
    ) -> Self {
        let [ph, pw] = [kernel[0] / 2, kernel[1] / 2];
        Self {
            conv: Conv2dConfig::new([cin, cout], kernel)
                .with_stride(stride)
                .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(cout).init(device),
        }
    }

    /// `relu(bn(conv(x)))` on channels-last `x`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        kernels::batch_norm(&self.bn, kernels::conv2d(&self.conv, x), true)
    }
}

/// A stack of [`ConvBnRelu`] blocks; the representation is the global average pool of the
/// last feature map.
#[derive(Module, Debug)]
pub struct ConvNet {
    pub blocks: Vec<ConvBnRelu>,
}

impl ConvNet {
    /// Blocks of `channels[i]` outputs with `strides[i]`, on `cin` input channels.
    pub fn new(cin: usize, channels: &[usize], strides: &[usize], device: &Device) -> Self {
        let mut prev = cin;
        let blocks = channels
            .iter()
            .zip(strides)
            .map(|(&c, &s)| {
                let b = ConvBnRelu::new(prev, c, s, device);
                prev = c;
                b
            })
            .collect();
        Self { blocks }
    }

    /// The 1-D ConvNet for series `[channels, 1, length]`: the same blocks with kernels
    /// `1 x kernel` and strides along time only.
    pub fn temporal(
        cin: usize,
        channels: &[usize],
        strides: &[usize],
        kernel: usize,
        device: &Device,
    ) -> Self {
        let mut prev = cin;
        let blocks = channels
            .iter()
            .zip(strides)
            .map(|(&c, &s)| {
                let b = ConvBnRelu::shaped(prev, c, [1, kernel], [1, s], device);
                prev = c;
                b
            })
            .collect();
        Self { blocks }
    }

    /// The last feature map of NCHW input `x`, channels last: `[n, h', w', c]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        self.features_split(x, self.blocks.len()).1
    }

    /// The feature maps after the first `after` blocks and after all of them.
    pub fn features_split(&self, x: Tensor<4>, after: usize) -> (Tensor<4>, Tensor<4>) {
        let mut x = x.permute([0, 2, 3, 1]);
        let mut mid = x.clone();
        for (i, b) in self.blocks.iter().enumerate() {
            x = b.forward(x);
            if i + 1 == after {
                mid = x.clone();
            }
        }
        (mid, x)
    }

    /// Global average pool of [`Self::features`], `[n, c]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        super::global_avg_pool(self.features(x))
    }
}
