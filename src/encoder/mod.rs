//! Backbones that turn inputs into representations `h`.

pub mod convnet;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use convnet::ConvNet;

/// Which backbone, and its sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncoderConfig {
    /// `convnet`.
    pub kind: String,
    /// Output channels of each block.
    pub channels: Vec<usize>,
    /// Stride of each block.
    pub strides: Vec<usize>,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            kind: "convnet".into(),
            channels: vec![32, 64, 128, 256],
            strides: vec![1, 2, 2, 2],
        }
    }
}

/// Encoder kinds, for errors and help.
pub const KINDS: &str = "convnet";

impl EncoderConfig {
    /// Checks sizes before anything is built.
    pub fn validate(&self) -> Result<()> {
        match self.kind.as_str() {
            "convnet" => {
                if self.channels.is_empty() || self.channels.len() != self.strides.len() {
                    return Err(Error::config(
                        "encoder.channels",
                        format!("{:?} with strides {:?}", self.channels, self.strides),
                        "a non-empty list as long as encoder.strides",
                    ));
                }
                if let Some(&s) = self.strides.iter().find(|&&s| s == 0) {
                    return Err(Error::config("encoder.strides", s, "strides >= 1"));
                }
                if self.channels.contains(&0) {
                    return Err(Error::config("encoder.channels", 0, "channel counts >= 1"));
                }
                Ok(())
            }
            other => Err(Error::config("encoder.kind", other, KINDS)),
        }
    }

    /// Builds the encoder for inputs of shape `[c, h, w]`.
    pub fn init(&self, input: [usize; 3], device: &Device) -> Result<Encoder> {
        self.validate()?;
        Ok(Encoder::ConvNet(ConvNet::new(
            input[0],
            &self.channels,
            &self.strides,
            device,
        )))
    }

    /// Size of the representation `h`.
    pub fn output_dim(&self) -> usize {
        self.channels.last().copied().unwrap_or(0)
    }
}

/// A backbone.
#[derive(Module, Debug)]
pub enum Encoder {
    ConvNet(ConvNet),
}

impl Encoder {
    /// Representations `[n, d]` of inputs `[n, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Encoder::ConvNet(m) => m.forward(x),
        }
    }
}

/// Mean over the spatial dimensions: `[n, c, h, w] -> [n, c]`.
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c])
}
