//! ResNets of basic blocks (He et al. 2016): ResNet-18 and -34 and smaller variants.
//!
//! Two stems: `cifar` (3x3 conv, stride 1, no max-pool, for small images) and
//! `imagenet` (7x7 conv, stride 2, then 3x3 max-pool with stride 2).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::kernels;

fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(false)
        .init(device)
}

/// Two 3x3 conv+BN layers with an identity or 1x1 projection shortcut.
#[derive(Module, Debug)]
pub struct BasicBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub shortcut: Option<Shortcut>,
}

/// 1x1 strided conv + BN, where a block changes width or resolution.
#[derive(Module, Debug)]
pub struct Shortcut {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl BasicBlock {
    /// A block from `cin` to `cout` channels with `stride`.
    pub fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv1: conv(cin, cout, 3, stride, device),
            bn1: BatchNormConfig::new(cout).init(device),
            conv2: conv(cout, cout, 3, 1, device),
            bn2: BatchNormConfig::new(cout).init(device),
            shortcut: (stride != 1 || cin != cout).then(|| Shortcut {
                conv: conv(cin, cout, 1, stride, device),
                bn: BatchNormConfig::new(cout).init(device),
            }),
        }
    }

    /// `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))` on channels-last `x`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = kernels::batch_norm(&self.bn1, kernels::conv2d(&self.conv1, x.clone()), true);
        let out = kernels::batch_norm(&self.bn2, kernels::conv2d(&self.conv2, out), false);
        let sc = match &self.shortcut {
            Some(s) => kernels::batch_norm(&s.bn, kernels::conv2d(&s.conv, x), false),
            None => x,
        };
        kernels::add_relu(out, sc)
    }
}

/// Stem, stages of basic blocks, global average pool.
#[derive(Module, Debug)]
pub struct ResNet {
    pub stem: Conv2d,
    pub stem_bn: BatchNorm,
    pub pool: Option<MaxPool2d>,
    pub blocks: Vec<BasicBlock>,
}

impl ResNet {
    /// `blocks[i]` basic blocks of `channels[i]` channels per stage; every stage after
    /// the first halves the resolution. `imagenet_stem` selects the 7x7/2 + max-pool stem.
    pub fn new(
        cin: usize,
        channels: &[usize],
        blocks: &[usize],
        imagenet_stem: bool,
        device: &Device,
    ) -> Self {
        let c0 = channels[0];
        let (stem, pool) = if imagenet_stem {
            let pool = MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init();
            (conv(cin, c0, 7, 2, device), Some(pool))
        } else {
            (conv(cin, c0, 3, 1, device), None)
        };
        let mut prev = c0;
        let mut layers = Vec::new();
        for (stage, (&c, &n)) in channels.iter().zip(blocks).enumerate() {
            for b in 0..n {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                layers.push(BasicBlock::new(prev, c, stride, device));
                prev = c;
            }
        }
        Self {
            stem,
            stem_bn: BatchNormConfig::new(c0).init(device),
            pool,
            blocks: layers,
        }
    }

    /// The last feature map of NCHW input `x`, channels last: `[n, h', w', c]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<4> {
        self.features_split(x, self.blocks.len()).1
    }

    /// The feature maps after the first `after` basic blocks (0: the stem's) and after
    /// all of them.
    pub fn features_split(&self, x: Tensor<4>, after: usize) -> (Tensor<4>, Tensor<4>) {
        let x = x.permute([0, 2, 3, 1]);
        let mut x = kernels::batch_norm(&self.stem_bn, kernels::conv2d(&self.stem, x), true);
        if let Some(p) = &self.pool {
            x = p.forward(x.permute([0, 3, 1, 2])).permute([0, 2, 3, 1]);
        }
        let mut mid = x.clone();
        for (i, b) in self.blocks.iter().enumerate() {
            x = b.forward(x);
            if i + 1 == after {
                mid = x.clone();
            }
        }
        (mid, x)
    }

    /// Global average pool of the last feature map.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        super::global_avg_pool(self.features(x))
    }
}
