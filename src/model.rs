//! The trained module: an encoder `e` and a transform head `g`, `z = g(e(x))`.

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::{Gradients, TensorData};

use crate::config::Config;
use crate::encoder::Encoder;
use crate::error::Result;
use crate::head::context::Context;
use crate::head::projection::Projection;
use crate::head::quantizer::Quantizer;
use crate::loss::LossParams;

/// Encoder plus projection head, an optional prediction head (query side only) and what
/// the loss learns ([`LossParams`]).
#[derive(Module, Debug)]
pub struct Model {
    pub encoder: Encoder,
    /// The encoders of views 1, 2, ... when each view has its own (`encoder.per_view`);
    /// view 0 uses `encoder`.
    pub view_encoders: Vec<Encoder>,
    pub head: Option<Projection>,
    pub predictor: Option<Projection>,
    pub context: Option<Context>,
    pub quantizer: Option<Quantizer>,
    /// DIM's local encoder: the head of local features taken from an earlier stage.
    pub local_head: Option<Projection>,
    /// Encoder blocks run before the local features are read (context pairing).
    pub local_after: usize,
    /// The bilinear score's `W` and SwAV's prototypes.
    pub loss: LossParams,
}

impl Model {
    /// The parameters a step applies after the embedded rows are gathered across ranks
    /// (the predictor and the loss's own): every rank computes their whole gradient.
    pub fn after_gather_params(&self) -> Vec<burn::module::ParamId> {
        let mut ids = crate::dist::param_ids(&self.loss);
        if let Some(p) = &self.predictor {
            ids.extend(crate::dist::param_ids(p));
        }
        ids
    }

    /// Builds the model of `cfg` for data samples of shape `[c, h, w]`; the encoder reads
    /// what the views make of them ([`crate::config::ViewsConfig::model_input`]).
    pub fn new(cfg: &Config, sample: [usize; 3], device: &Device) -> Result<Self> {
        let input = cfg.views.model_input(sample);
        let encoder = cfg.encoder.init(input, device)?;
        let views = if cfg.encoder.per_view {
            cfg.views.modalities.len()
        } else {
            1
        };
        let view_encoders = (1..views)
            .map(|_| cfg.encoder.init(input, device))
            .collect::<Result<Vec<_>>>()?;
        let head = cfg.head.init(cfg.encoder.output_dim(), device)?;
        let z = cfg.head.output_dim(cfg.encoder.output_dim());
        let predictor = cfg.head.init_predictor(z, device);
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
            loss: LossParams::new(&cfg.loss, z, cfg.head.prototypes, device),
            encoder,
            view_encoders,
            head,
            predictor,
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

    /// Like [`Model::forward`], with row `i` of `x` from view `views[i]` read by that
    /// view's encoder; the rows keep their order.
    pub fn forward_views(&self, x: Tensor<4>, views: &[u16]) -> (Tensor<2>, Tensor<2>) {
        if self.view_encoders.is_empty() {
            return self.forward(x);
        }
        debug_assert_eq!(views.len(), x.dims()[0], "one view per row");
        debug_assert!(
            views
                .iter()
                .all(|&v| usize::from(v) <= self.view_encoders.len()),
            "a view without an encoder"
        );
        let mut order = Vec::with_capacity(views.len());
        let mut parts = Vec::new();
        for (v, encoder) in std::iter::once(&self.encoder)
            .chain(&self.view_encoders)
            .enumerate()
        {
            let mine: Vec<usize> = (0..views.len())
                .filter(|&i| usize::from(views[i]) == v)
                .collect();
            if !mine.is_empty() {
                parts.push(encoder.forward(select(&x, &mine)));
                order.extend(mine);
            }
        }
        let mut back = vec![0; order.len()];
        for (k, &r) in order.iter().enumerate() {
            back[r] = k;
        }
        let h = select(&Tensor::cat(parts, 0), &back);
        let z = self.project(h.clone());
        (h, z)
    }

    /// The model that reads every input as view `v` would be read: `v`'s encoder in
    /// place of view 0's, for evaluating one sense at a time.
    pub fn for_view(&self, v: usize) -> Model {
        debug_assert!(v <= self.view_encoders.len(), "view {v} has no encoder");
        let mut m = self.clone();
        if let Some(e) = v.checked_sub(1).and_then(|i| self.view_encoders.get(i)) {
            m.encoder = e.clone();
        }
        m.view_encoders.clear();
        m
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

/// Rows `rows` of `t`, in that order.
pub fn select<const D: usize>(t: &Tensor<D>, rows: &[usize]) -> Tensor<D> {
    let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    let n = idx.len();
    t.clone().select(
        0,
        Tensor::<1, Int>::from_data(TensorData::new(idx, [n]), &t.device()),
    )
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// Two one-channel senses of 6x6 samples, each with its own small ConvNet, and the
    /// model of that config (for the tests of every module that routes senses).
    pub(crate) fn per_view_model(device: &Device) -> (Config, Model) {
        let cfg = Config::parse(
            "[views]\nkind = \"modalities\"\nmodalities = [[0], [1]]\n[keys]\npairing = \"cross\"\n\
             [encoder]\nkind = \"convnet\"\nchannels = [4, 8]\nstrides = [1, 2]\nper_view = true\n\
             [head]\nkind = \"mlp\"\nhidden = 8\nout = 4\n",
            std::path::Path::new("test.toml"),
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let model = Model::new(&cfg, [2, 6, 6], device).unwrap_or_else(|e| panic!("{e}"));
        (cfg, model)
    }

    fn close(a: Tensor<2>, b: Tensor<2>) -> bool {
        assert_eq!(a.dims(), b.dims());
        let (a, b) = (a.into_data(), b.into_data());
        let close = a
            .iter::<f32>()
            .zip(b.iter::<f32>())
            .all(|(x, y)| (x - y).abs() < 1e-5);
        close
    }

    #[test]
    fn each_view_is_read_by_its_own_encoder_in_row_order() {
        let device = Device::flex();
        let (_, m) = per_view_model(&device);
        assert_eq!(m.view_encoders.len(), 1);
        let x = Tensor::<4>::random([4, 1, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let (h, z) = m.forward_views(x.clone(), &[0, 1, 1, 0]);
        let h0 = m.encoder.forward(select(&x, &[0, 3]));
        let h1 = m.view_encoders[0].forward(select(&x, &[1, 2]));
        let want = Tensor::cat(
            vec![
                h0.clone().narrow(0, 0, 1),
                h1.clone().narrow(0, 0, 1),
                h1.clone().narrow(0, 1, 1),
                h0.clone().narrow(0, 1, 1),
            ],
            0,
        );
        assert!(close(h.clone(), want.clone()), "h");
        assert!(close(z, m.project(want)), "z = g(h)");
        assert!(
            !close(h0, m.view_encoders[0].forward(select(&x, &[0, 3]))),
            "encoders differ"
        );
        let (h_as_1, _) = m.for_view(1).forward(select(&x, &[1, 2]));
        assert!(close(h_as_1, h1), "for_view(1) reads with view 1's encoder");
    }

    #[test]
    fn gradients_reach_every_view_encoder() {
        let device = Device::flex().autodiff();
        let (_, m) = per_view_model(&device);
        let x = Tensor::<4>::random([4, 1, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let (_, z) = m.forward_views(x, &[0, 0, 1, 1]);
        let grads = z.powf_scalar(2.0).sum().backward();
        for prefix in ["encoder.", "view_encoders."] {
            let got: Vec<NamedParam> = m
                .named_params(Some(&grads))
                .into_iter()
                .filter(|p| p.path.starts_with(prefix) && p.path.ends_with("weight"))
                .collect();
            assert!(!got.is_empty(), "{prefix}");
            for p in got {
                let g = p.grad.unwrap_or_default();
                assert!(g.iter().any(|v| *v != 0.0), "no gradient for {}", p.path);
            }
        }
    }
}
