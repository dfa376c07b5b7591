//! Transform heads: map representations `h` to the embeddings `z` that are scored.

pub mod context;
pub mod projection;
pub mod quantizer;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use context::{ContextConfig, ContextKind};
use projection::Projection;
use quantizer::QuantizerConfig;

/// Which projection head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HeadKind {
    /// `z = h`.
    Identity,
    /// One linear map.
    Linear,
    /// `depth` linear layers with ReLU (and batch norm) between them.
    Mlp,
}

/// Which head, and its sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HeadConfig {
    pub kind: HeadKind,
    /// Width of the hidden layers of `mlp`.
    pub hidden: usize,
    /// Size of `z`.
    pub out: usize,
    /// Number of linear layers of `mlp` (2 = one hidden layer).
    pub depth: usize,
    /// Batch norm after each hidden linear layer of `mlp`.
    pub bn: bool,
    /// A prediction head on the query side only (BYOL's asymmetry): an MLP with batch norm
    /// from `z` to `z`, of `predictor_hidden` hidden units.
    pub predictor: bool,
    /// Hidden units of the prediction head.
    pub predictor_hidden: usize,
    /// The contextualisation head over sequences of embeddings (CPC).
    pub context: ContextConfig,
    /// A Gumbel-softmax product quantiser of the keys of predictive pairing (wav2vec 2.0).
    pub quantizer: QuantizerConfig,
    /// SwAV's learned prototypes (0: none): unit vectors in `z`'s space that the
    /// normalised embeddings are scored against.
    pub prototypes: usize,
}

impl Default for HeadConfig {
    fn default() -> Self {
        Self {
            kind: HeadKind::Mlp,
            hidden: 256,
            out: 128,
            depth: 2,
            bn: true,
            predictor: false,
            predictor_hidden: 256,
            context: ContextConfig::default(),
            quantizer: QuantizerConfig::default(),
            prototypes: 0,
        }
    }
}

impl HeadConfig {
    /// Checks sizes before anything is built.
    pub fn validate(&self) -> Result<()> {
        self.context.validate()?;
        self.quantizer.validate(self.out)?;
        match self.kind {
            HeadKind::Identity => Ok(()),
            HeadKind::Linear | HeadKind::Mlp => {
                if self.out == 0 {
                    return Err(Error::config("head.out", 0, "a size >= 1"));
                }
                if self.predictor && self.predictor_hidden == 0 {
                    return Err(Error::config(
                        "head.predictor_hidden",
                        0,
                        "at least 1 for a prediction head",
                    ));
                }
                if self.kind == HeadKind::Mlp && (self.hidden == 0 || self.depth < 2) {
                    return Err(Error::config(
                        "head.depth",
                        format!("{} (hidden {})", self.depth, self.hidden),
                        "depth >= 2 and hidden >= 1 for an mlp head",
                    ));
                }
                Ok(())
            }
        }
    }

    /// Size of `z` for representations of size `input`.
    pub fn output_dim(&self, input: usize) -> usize {
        if self.kind == HeadKind::Identity {
            input
        } else {
            self.out
        }
    }

    /// The prediction head for embeddings of size `z`, when configured.
    pub fn init_predictor(&self, z: usize, device: &Device) -> Option<Projection> {
        self.predictor
            .then(|| Projection::new(z, self.predictor_hidden, z, 2, true, device))
    }

    /// Builds the head for representations of size `input`; `None` is the identity.
    pub fn init(&self, input: usize, device: &Device) -> Result<Option<Projection>> {
        self.validate()?;
        Ok(match self.kind {
            HeadKind::Linear => Some(Projection::new(input, 0, self.out, 1, false, device)),
            HeadKind::Mlp => Some(Projection::new(
                input,
                self.hidden,
                self.out,
                self.depth,
                self.bn,
                device,
            )),
            HeadKind::Identity => None,
        })
    }
}
