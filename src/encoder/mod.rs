//! Backbones that turn inputs into representations `h`.

pub mod convnet;
pub mod mlp;
#[cfg(feature = "onnx")]
pub mod onnx;
#[cfg(not(feature = "onnx"))]
#[path = "onnx_absent.rs"]
pub mod onnx;
pub mod resnet;
pub mod vit;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use convnet::ConvNet;
use mlp::Mlp;
use resnet::ResNet;
use vit::{Vit, VitConfig};

/// Which backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderKind {
    /// Fully connected layers over the flattened input.
    Mlp,
    /// Conv blocks (3x3 conv, batch norm, ReLU) with global average pooling.
    Convnet,
    /// The same blocks over time, `[channels, 1, length]` series.
    Conv1d,
    /// A ResNet of basic blocks with `channels` and `blocks` per stage.
    Resnet,
    /// ResNet-18: widths 64-512, blocks [2, 2, 2, 2].
    Resnet18,
    /// ResNet-34: widths 64-512, blocks [3, 4, 6, 3].
    Resnet34,
    /// A Vision Transformer, sizes in `[encoder.vit]`.
    Vit,
}

impl EncoderKind {
    fn is_resnet(self) -> bool {
        matches!(self, Self::Resnet | Self::Resnet18 | Self::Resnet34)
    }
}

/// The first layers of a ResNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Stem {
    /// A 3x3 conv, no max-pool (small images).
    Cifar,
    /// A 7x7 conv of stride 2 and a max-pool.
    Imagenet,
}

/// Which backbone, and its sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EncoderConfig {
    pub kind: EncoderKind,
    /// Widths: output channels of each conv block or ResNet stage, units of each MLP layer.
    pub channels: Vec<usize>,
    /// Stride of each `convnet` block.
    pub strides: Vec<usize>,
    /// Basic blocks per stage of `resnet`.
    pub blocks: Vec<usize>,
    /// ResNet stem.
    pub stem: Stem,
    /// Batch norm in `mlp` layers.
    pub bn: bool,
    /// Kernel length of `conv1d` (odd).
    pub kernel: usize,
    /// One encoder of this kind per view instead of one for all (CMC's `f_1`, `f_2`:
    /// each sense its own encoder); only with `views.kind = "modalities"`. The views share
    /// the head.
    pub per_view: bool,
    /// The sizes of `vit`.
    pub vit: VitConfig,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            kind: EncoderKind::Convnet,
            channels: vec![32, 64, 128, 256],
            strides: vec![1, 2, 2, 2],
            blocks: vec![1, 1, 1, 1],
            stem: Stem::Cifar,
            bn: false,
            kernel: 7,
            per_view: false,
            vit: VitConfig::default(),
        }
    }
}

const RESNET_WIDTHS: [usize; 4] = [64, 128, 256, 512];

impl EncoderConfig {
    /// Widths and blocks per stage of a ResNet kind.
    fn resnet_shape(&self) -> (Vec<usize>, Vec<usize>) {
        match self.kind {
            EncoderKind::Resnet18 => (RESNET_WIDTHS.to_vec(), vec![2, 2, 2, 2]),
            EncoderKind::Resnet34 => (RESNET_WIDTHS.to_vec(), vec![3, 4, 6, 3]),
            _ => (self.channels.clone(), self.blocks.clone()),
        }
    }

    /// Checks sizes before anything is built.
    pub fn validate(&self) -> Result<()> {
        if self.channels.is_empty() || self.channels.contains(&0) {
            return Err(Error::config(
                "encoder.channels",
                format!("{:?}", self.channels),
                "a non-empty list of sizes >= 1",
            ));
        }
        match self.kind {
            EncoderKind::Mlp => Ok(()),
            EncoderKind::Vit => self.vit.validate(),
            EncoderKind::Convnet | EncoderKind::Conv1d => {
                if self.kind == EncoderKind::Conv1d && self.kernel.is_multiple_of(2) {
                    return Err(Error::config(
                        "encoder.kernel",
                        self.kernel,
                        "an odd length",
                    ));
                }
                if self.channels.len() != self.strides.len() {
                    return Err(Error::config(
                        "encoder.strides",
                        format!("{:?}", self.strides),
                        format!(
                            "one stride per block, {} for channels {:?}",
                            self.channels.len(),
                            self.channels
                        ),
                    ));
                }
                if self.strides.contains(&0) {
                    return Err(Error::config(
                        "encoder.strides",
                        format!("{:?}", self.strides),
                        "strides >= 1",
                    ));
                }
                Ok(())
            }
            EncoderKind::Resnet | EncoderKind::Resnet18 | EncoderKind::Resnet34 => {
                let (c, b) = self.resnet_shape();
                if c.len() != b.len() || b.contains(&0) {
                    return Err(Error::config(
                        "encoder.blocks",
                        format!("{b:?}"),
                        format!("one count >= 1 per stage, {} for channels {c:?}", c.len()),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Builds the encoder for inputs of shape `[c, h, w]`.
    pub fn init(&self, input: [usize; 3], device: &Device) -> Result<Encoder> {
        self.validate()?;
        Ok(match self.kind {
            EncoderKind::Mlp => Encoder::Mlp(Mlp::new(
                input.iter().product(),
                &self.channels,
                self.bn,
                device,
            )),
            EncoderKind::Convnet => Encoder::ConvNet(ConvNet::new(
                input[0],
                &self.channels,
                &self.strides,
                device,
            )),
            EncoderKind::Conv1d => Encoder::ConvNet(ConvNet::temporal(
                input[0],
                &self.channels,
                &self.strides,
                self.kernel,
                device,
            )),
            EncoderKind::Vit => {
                self.vit.fits("data (image height)", input[1])?;
                self.vit.fits("data (image width)", input[2])?;
                Encoder::Vit(Vit::new(&self.vit, input, device))
            }
            EncoderKind::Resnet | EncoderKind::Resnet18 | EncoderKind::Resnet34 => {
                let (c, b) = self.resnet_shape();
                Encoder::ResNet(ResNet::new(
                    input[0],
                    &c,
                    &b,
                    self.stem == Stem::Imagenet,
                    device,
                ))
            }
        })
    }

    /// Where encoder stage `stage` (1-based: a conv block, or a ResNet stage of blocks;
    /// 0: the last) ends: the blocks run through it and its channels; `None` for an `mlp`
    /// or a stage past the last.
    pub fn stage_output(&self, stage: usize) -> Option<(usize, usize)> {
        let (channels, blocks) = match self.kind {
            EncoderKind::Convnet | EncoderKind::Conv1d => {
                (self.channels.clone(), vec![1; self.channels.len()])
            }
            k if k.is_resnet() => self.resnet_shape(),
            _ => return None,
        };
        let stage = if stage == 0 { channels.len() } else { stage };
        (1..=channels.len())
            .contains(&stage)
            .then(|| (blocks[..stage].iter().sum(), channels[stage - 1]))
    }

    /// Size of the representation `h`.
    pub fn output_dim(&self) -> usize {
        match self.kind {
            EncoderKind::Resnet18 | EncoderKind::Resnet34 => RESNET_WIDTHS[3],
            EncoderKind::Vit => self.vit.dim,
            _ => self.channels.last().copied().unwrap_or(0),
        }
    }
}

/// A backbone. (Variants are unboxed: burn's `Module` derive does not see through `Box`,
/// and an encoder is built once per run.)
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Encoder {
    Mlp(Mlp),
    ConvNet(ConvNet),
    ResNet(ResNet),
    Vit(Vit),
}

impl Encoder {
    /// Representations `[n, d]` of inputs `[n, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Encoder::Mlp(m) => {
                let [n, c, h, w] = x.dims();
                m.forward(x.reshape([n, c * h * w]))
            }
            Encoder::ConvNet(m) => m.forward(x),
            Encoder::ResNet(m) => m.forward(x),
            Encoder::Vit(m) => m.forward(x),
        }
    }

    /// The feature map after the first `blocks` blocks and the last one, both channels
    /// last: DIM's local features from an earlier layer, and the map that gives `h`.
    pub fn features_split(&self, x: Tensor<4>, blocks: usize) -> Result<(Tensor<4>, Tensor<4>)> {
        match self {
            Encoder::Mlp(_) => Err(Error::Invalid(
                "an mlp encoder has no feature map for local features".into(),
            )),
            Encoder::ConvNet(m) => Ok(m.features_split(x, blocks)),
            Encoder::ResNet(m) => Ok(m.features_split(x, blocks)),
            Encoder::Vit(_) => Err(Error::Invalid(
                "a vit encoder has no feature map for local features".into(),
            )),
        }
    }
}

/// Mean over the spatial dimensions of a channels-last map: `[n, h, w, c] -> [n, c]`.
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [n, h, w, c] = x.dims();
    x.reshape([n, h * w, c]).mean_dim(1).reshape([n, c])
}
