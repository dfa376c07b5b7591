//! The trained module: an encoder `e` and a transform head `g`, `z = g(e(x))`.

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::Gradients;

use crate::config::Config;
use crate::encoder::Encoder;
use crate::error::Result;
use crate::head::context::Context;
use crate::head::projection::Projection;
use crate::head::quantizer::Quantizer;
use crate::score::Bilinear;

/// Encoder plus projection head, an optional prediction head (query side only) and the
/// learned matrix of a bilinear score.
#[derive(Module, Debug)]
pub struct Model {
    pub encoder: Encoder,
    pub head: Option<Projection>,
    pub predictor: Option<Projection>,
    pub critic: Option<Bilinear>,
    pub context: Option<Context>,
    pub quantizer: Option<Quantizer>,
    /// DIM's local encoder: the head of local features taken from an earlier stage.
    pub local_head: Option<Projection>,
    /// Encoder blocks run before the local features are read (context pairing).
    pub local_after: usize,
}

impl Model {
    /// Builds the model of `cfg` for data samples of shape `[c, h, w]`; the encoder reads
    /// what the views make of them ([`crate::config::ViewsConfig::model_input`]).
    pub fn new(cfg: &Config, sample: [usize; 3], device: &Device) -> Result<Self> {
        let encoder = cfg.encoder.init(cfg.views.model_input(sample), device)?;
        let head = cfg.head.init(cfg.encoder.output_dim(), device)?;
        let z = cfg.head.output_dim(cfg.encoder.output_dim());
        let predictor = cfg.head.init_predictor(z, device);
        let critic = cfg
            .loss
            .needs_bilinear()
            .then(|| Bilinear::new(z, z, device));
        let context = cfg.head.context.init(z, device);
        let quantizer = cfg.head.quantizer.init(z, device);
        let (local_after, local_channels) = cfg
            .encoder
            .stage_output(cfg.keys.local_stage)
            .unwrap_or_default();
        let local_head = if cfg.keys.local_stage > 0 {
            cfg.head.init(local_channels, device)?
        } else {
            None
        };
        Ok(Self {
            encoder,
            head,
            predictor,
            critic,
            context,
            quantizer,
            local_head,
            local_after,
        })
    }

    /// Representations `h` and embeddings `z` of `x`.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let h = self.encoder.forward(x);
        let z = match &self.head {
            Some(g) => g.forward(h.clone()),
            None => h.clone(),
        };
        (h, z)
    }

    /// Embeddings of the local features of `x` (feature-map positions, time steps) and of
    /// its global summary `g(h)`: `([n * positions, d], [n, d])`. The locals are the last
    /// feature map through the same head, or an earlier stage's map through the local
    /// head (DIM's local encoder).
    pub fn local_global(&self, x: Tensor<4>) -> Result<(Tensor<2>, Tensor<2>, usize)> {
        let (f, last) = self.encoder.features_split(x, self.local_after)?;
        let [n, h, w, c] = f.dims();
        let z_global = self.project(crate::encoder::global_avg_pool(last));
        let local = f.reshape([n * h * w, c]);
        let z_local = match &self.local_head {
            Some(g) => g.forward(local),
            None => self.project(local),
        };
        Ok((z_local, z_global, h * w))
    }

    /// The head applied to representations `h`.
    pub fn project(&self, h: Tensor<2>) -> Tensor<2> {
        match &self.head {
            Some(g) => g.forward(h),
            None => h,
        }
    }

    /// Every float parameter and buffer (running statistics included) by module path,
    /// e.g. `encoder.ConvNet.blocks.0.conv.weight`, with its gradient in `grads` if any: for
    /// comparing two models or exporting weights to another framework.
    pub fn named_params(&self, grads: Option<&Gradients>) -> Vec<NamedParam> {
        let mut c = Collect {
            grads,
            path: Vec::new(),
            out: Vec::new(),
        };
        self.visit(&mut c);
        c.out
    }

    /// The query-side prediction `p(z)` (the identity without a prediction head).
    pub fn predict(&self, z: Tensor<2>) -> Tensor<2> {
        match &self.predictor {
            Some(p) => p.forward(z),
            None => z,
        }
    }
}

/// One entry of [`Model::named_params`].
#[derive(Debug, Clone)]
pub struct NamedParam {
    pub path: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
    pub grad: Option<Vec<f32>>,
}

struct Collect<'a> {
    grads: Option<&'a Gradients>,
    path: Vec<String>,
    out: Vec<NamedParam>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let grad = self
            .grads
            .and_then(|g| t.grad(g))
            .map(|g| g.into_data().iter::<f32>().collect());
        self.out.push(NamedParam {
            path: self.path.join("."),
            shape: t.dims().to_vec(),
            values: t.into_data().iter::<f32>().collect(),
            grad,
        });
    }
}
