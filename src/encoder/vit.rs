//! A small Vision Transformer (Dosovitskiy et al. 2021), as DINO and MoCo v3 train:
//! non-overlapping patches embedded linearly, a class token, learned position embeddings,
//! pre-norm transformer blocks, and a final layer norm of the class token as `h`.
//!
//! The blocks are written here rather than taken from burn's `TransformerEncoder`: its
//! linear layers multiply rank-3 tensors on burn's `flex` backend, while these reshape to
//! rank 2 for [`crate::kernels::linear`]; DINO's preset with the ViT trained at 6 images/s
//! through burn's blocks and at 20 through these (1,024 images, 2 cores).

use burn::module::Param;
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kernels;

/// The sizes of a ViT (`encoder.kind = "vit"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct VitConfig {
    /// Side of the square patches; every input side must be a multiple of it.
    pub patch: usize,
    /// Token width, the size of `h`.
    pub dim: usize,
    /// Transformer blocks.
    pub depth: usize,
    /// Attention heads per block (`dim` must be a multiple).
    pub heads: usize,
    /// Width of each block's MLP as a multiple of `dim`.
    pub mlp_ratio: usize,
}

impl Default for VitConfig {
    /// A small ViT for 28 x 28 inputs: 4 px patches (49 tokens), width 128, 4 blocks of 4
    /// heads, about 0.8 M parameters (ViT-Tiny, 5.7 M, has width 192 and 12 blocks over
    /// 196 tokens of 224 px images).
    fn default() -> Self {
        Self {
            patch: 4,
            dim: 128,
            depth: 4,
            heads: 4,
            mlp_ratio: 4,
        }
    }
}

impl VitConfig {
    /// Checks the sizes, naming the key at fault.
    pub fn validate(&self) -> Result<()> {
        for (key, v) in [
            ("encoder.vit.patch", self.patch),
            ("encoder.vit.dim", self.dim),
            ("encoder.vit.depth", self.depth),
            ("encoder.vit.heads", self.heads),
            ("encoder.vit.mlp_ratio", self.mlp_ratio),
        ] {
            if v == 0 {
                return Err(Error::config(key, 0, "at least 1"));
            }
        }
        if !self.dim.is_multiple_of(self.heads) {
            return Err(Error::config(
                "encoder.vit.heads",
                self.heads,
                format!("a divisor of encoder.vit.dim = {}", self.dim),
            ));
        }
        Ok(())
    }

    /// Checks that an input side `side` (named by `key`) is cut into whole patches.
    pub fn fits(&self, key: &str, side: usize) -> Result<()> {
        if side < self.patch || !side.is_multiple_of(self.patch) {
            return Err(Error::config(
                key,
                side,
                format!("a multiple of encoder.vit.patch = {}", self.patch),
            ));
        }
        Ok(())
    }
}

/// The ViT: patch embedding, class token, position embeddings for the grid of the input
/// size it was built for (interpolated bilinearly for other sizes, as DINO does for its
/// local crops), the blocks and the final norm.
#[derive(Module, Debug)]
pub struct Vit {
    pub patch_embed: Linear,
    pub class_token: Param<Tensor<3>>,
    pub positions: Param<Tensor<3>>,
    pub blocks: Vec<Block>,
    pub norm: LayerNorm,
    pub patch: usize,
    /// Patches per side of the grid the position embeddings were built for.
    pub grid: [usize; 2],
}

impl Vit {
    /// A ViT of `cfg`'s sizes for inputs `[c, h, w]`.
    pub fn new(cfg: &VitConfig, input: [usize; 3], device: &Device) -> Self {
        let [c, h, w] = input;
        let p = cfg.patch;
        let grid = [h / p, w / p];
        let trunc = Initializer::Normal {
            mean: 0.0,
            std: 0.02,
        };
        Self {
            patch_embed: LinearConfig::new(c * p * p, cfg.dim).init(device),
            class_token: trunc.init([1, 1, cfg.dim], device),
            positions: trunc.init([1, 1 + grid[0] * grid[1], cfg.dim], device),
            blocks: (0..cfg.depth)
                .map(|_| Block::new(cfg.dim, cfg.heads, cfg.dim * cfg.mlp_ratio, device))
                .collect(),
            norm: LayerNormConfig::new(cfg.dim)
                .with_epsilon(1e-6)
                .init(device),
            patch: p,
            grid,
        }
    }

    /// The position embeddings of a `gh x gw` grid: the class token's as built, the
    /// patches' resampled bilinearly from the built grid when it differs.
    fn positions_for(&self, gh: usize, gw: usize) -> Tensor<3> {
        let pos = self.positions.val();
        let [_, tokens, d] = pos.dims();
        if [gh, gw] == self.grid {
            return pos;
        }
        let [h0, w0] = self.grid;
        let class = pos.clone().slice([0..1, 0..1, 0..d]);
        let patches = pos
            .slice([0..1, 1..tokens, 0..d])
            .reshape([1, h0, w0, d])
            .permute([0, 3, 1, 2]);
        let options = InterpolateOptions::new(InterpolateMode::Bilinear)
            .with_output_size([gh, gw])
            .with_align_corners(false);
        let resized = interpolate(patches, options)
            .permute([0, 2, 3, 1])
            .reshape([1, gh * gw, d]);
        Tensor::cat(vec![class, resized], 1)
    }

    /// `h`, the normalised class token, of inputs `[n, c, h, w]` whose sides are multiples
    /// of the patch.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [n, c, h, w] = x.dims();
        let p = self.patch;
        let (gh, gw) = (h / p, w / p);
        let patches = x
            .slice([0..n, 0..c, 0..gh * p, 0..gw * p])
            .reshape([n, c, gh, p, gw, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([n, gh * gw, c * p * p]);
        let tokens = self.patch_embed.forward(patches);
        let d = tokens.dims()[2];
        let class = self.class_token.val().expand([n, 1, d]);
        let x = Tensor::cat(vec![class, tokens], 1) + self.positions_for(gh, gw);
        let x = self.blocks.iter().fold(x, |x, b| b.forward(x));
        let first = x.slice([0..n, 0..1, 0..d]).reshape([n, d]);
        self.norm.forward(first)
    }
}

/// A pre-norm transformer block: `x + attn(norm(x))`, then `x + mlp(norm(x))`, with
/// multi-head self-attention `softmax(q kᵀ / sqrt(d_h)) v` and a GELU MLP.
#[derive(Module, Debug)]
pub struct Block {
    pub norm1: LayerNorm,
    pub qkv: Linear,
    pub proj: Linear,
    pub norm2: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
    pub heads: usize,
}

impl Block {
    fn new(dim: usize, heads: usize, hidden: usize, device: &Device) -> Self {
        let norm = || LayerNormConfig::new(dim).with_epsilon(1e-6).init(device);
        Self {
            norm1: norm(),
            qkv: LinearConfig::new(dim, 3 * dim).init(device),
            proj: LinearConfig::new(dim, dim).init(device),
            norm2: norm(),
            fc1: LinearConfig::new(dim, hidden).init(device),
            fc2: LinearConfig::new(hidden, dim).init(device),
            heads,
        }
    }

    /// The block on tokens `[n, t, d]`.
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [n, t, d] = x.dims();
        let (h, dh) = (self.heads, d / self.heads);
        let rows = |x: Tensor<3>| x.reshape([n * t, d]);
        let qkv = kernels::linear(&self.qkv, rows(self.norm1.forward(x.clone())), false)
            .reshape([n, t, 3, h, dh])
            .permute([2, 0, 3, 1, 4]);
        let part = |i: usize| {
            qkv.clone()
                .slice([i..i + 1, 0..n, 0..h, 0..t, 0..dh])
                .reshape([n, h, t, dh])
        };
        let (q, k, v) = (part(0), part(1), part(2));
        let attn = softmax(
            q.matmul(k.swap_dims(2, 3)).div_scalar((dh as f64).sqrt()),
            3,
        );
        let mixed = attn.matmul(v).swap_dims(1, 2).reshape([n * t, d]);
        let x = x + kernels::linear(&self.proj, mixed, false).reshape([n, t, d]);
        let hidden = gelu(kernels::linear(
            &self.fc1,
            rows(self.norm2.forward(x.clone())),
            false,
        ));
        x + kernels::linear(&self.fc2, hidden, false).reshape([n, t, d])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs of the built size and of a smaller multiple of the patch (a local crop) both
    /// give `[n, dim]`, and the gradient reaches the position embeddings through the
    /// resampling.
    #[test]
    fn any_multiple_of_the_patch_embeds_to_h() {
        let device = Device::flex().autodiff();
        let cfg = VitConfig {
            patch: 4,
            dim: 16,
            depth: 2,
            heads: 2,
            mlp_ratio: 2,
        };
        let vit = Vit::new(&cfg, [1, 8, 8], &device);
        let big = vit.forward(Tensor::<4>::ones([2, 1, 8, 8], &device));
        assert_eq!(big.dims(), [2, 16]);
        let x: Vec<f32> = (0..3 * 144).map(|i| (i as f32 * 0.37).cos()).collect();
        let x = Tensor::<4>::from_data(burn::tensor::TensorData::new(x, [3, 1, 12, 12]), &device);
        let small = vit.forward(x);
        assert_eq!(small.dims(), [3, 16]);
        let weights = Tensor::<2>::from_data(
            burn::tensor::TensorData::new(
                (0..48).map(|i| (i as f32 * 0.7).sin()).collect(),
                [3, 16],
            ),
            &device,
        );
        let grads = (small * weights).sum().backward();
        let g = vit
            .positions
            .grad(&grads)
            .expect("gradient on the positions");
        let total: f32 = g.abs().sum().into_scalar();
        assert!(total > 0.0);
    }
}
