//! The kernels as a burn backend extension: implemented for `Flex`, differentiated by
//! hand for `Autodiff<Flex>` (burn does not derive backward passes for custom operations).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{backend_extension, Autodiff, Backend, Flex};
use burn::tensor::{Bytes, DType, Shape};

use super::{conv, infonce, linear, norm, residual, sgd};

/// Operations with hand-written CPU kernels.
#[backend_extension(Flex, Autodiff)]
pub trait FastOps: Backend {
    /// 2-D convolution of channels-last `x` (`[n, h, w, c]`) with `weight` (`[o, c, kh,
    /// kw]`), no bias, equal strides and padding; output `[n, oh, ow, o]`.
    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        pad: usize,
    ) -> FloatTensor<Self>;
    /// Per-channel batch mean and biased variance of channels-last `[..., c]`, as `[2, c]`.
    fn fast_bn_stats(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Batch norm with the given batch statistics (`[2, c]`, from [`Self::fast_bn_stats`]),
    /// then ReLU when `relu`; differentiated as training-mode batch norm.
    fn fast_bn(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        eps: f32,
        relu: bool,
    ) -> FloatTensor<Self>;
    /// The InfoNCE family over `scores` (`[rows, cols]`) with the positive map packed by
    /// [`infonce::pack`]; a one-element tensor.
    fn fast_info_nce(scores: FloatTensor<Self>, map: IntTensor<Self>) -> FloatTensor<Self>;
    /// Cosine (or dot) scores of queries `q` `[r, d]` against keys `k` `[c, d]` divided by
    /// `temperature`, then the InfoNCE family with the packed positive map.
    fn fast_contrastive(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        map: IntTensor<Self>,
        temperature: f32,
        cosine: bool,
    ) -> FloatTensor<Self>;
    /// `max(a + b, 0)` for `a` and `b` of one shape.
    fn fast_add_relu(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
    /// The SGD velocity `(wd p + g) + m v` (tensors of one shape; not differentiated).
    fn fast_sgd_velocity(
        v: FloatTensor<Self>,
        g: FloatTensor<Self>,
        p: FloatTensor<Self>,
        momentum: f32,
        weight_decay: f32,
    ) -> FloatTensor<Self>;
    /// The SGD step `p - lr d` (not differentiated).
    fn fast_sgd_descend(p: FloatTensor<Self>, d: FloatTensor<Self>, lr: f32) -> FloatTensor<Self>;
    /// `relu?(x w + b)` for `x` `[m, k]`, `w` `[k, n]` and `b` `[n]` (or `[0]`: no bias).
    fn fast_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        relu: bool,
    ) -> FloatTensor<Self>;
}

/// Contiguous f32 values of a flex tensor.
fn values(t: &FlexTensor) -> FlexTensor {
    assert_eq!(t.dtype(), DType::F32, "fast kernels take f32 tensors");
    t.to_contiguous()
}

fn tensor(data: Vec<f32>, dims: &[usize]) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(Shape::from(dims.to_vec())),
        DType::F32,
    )
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

/// Channels (the last dimension) of a channels-last tensor.
fn channels(t: &FlexTensor) -> usize {
    let s = t.layout().shape();
    s[s.num_dims() - 1]
}

/// The convolution's output, its geometry, the re-laid-out weight, which the backward
/// pass reuses, and in bf16 the input rounded for it.
fn conv_forward(
    x: &FlexTensor,
    w: &FlexTensor,
    stride: usize,
    pad: usize,
) -> (FlexTensor, conv::ConvGeom, Vec<f32>, Option<Vec<u32>>) {
    let (x, w) = (values(x), values(w));
    let g = conv::ConvGeom {
        bf16: super::bf16::enabled(),
        ..conv::ConvGeom::new(dims4(&x), dims4(&w), stride, pad)
    };
    let wt = conv::weight_kxo(&g, w.storage());
    let (y, xb) = conv::forward_keeping(&g, x.storage(), &wt);
    (tensor(y, &[g.n, g.oh, g.ow, g.o]), g, wt, xb)
}

/// The input a convolution's backward pass keeps: the tensor, or in bf16 only its copy
/// rounded and padded by the forward pass.
#[derive(Debug, Clone)]
enum KeptInput {
    F32(FlexTensor),
    Bf16(Vec<u32>),
}

fn add_relu_forward(a: &FlexTensor, b: &FlexTensor) -> FlexTensor {
    let (a, b) = (values(a), values(b));
    tensor(
        residual::forward(a.storage(), b.storage()),
        a.layout().shape(),
    )
}

fn sgd_velocity(v: &FlexTensor, g: &FlexTensor, p: &FlexTensor, m: f32, wd: f32) -> FlexTensor {
    let (v, g, p) = (values(v), values(g), values(p));
    tensor(
        sgd::velocity(v.storage(), g.storage(), p.storage(), m, wd),
        p.layout().shape(),
    )
}

fn sgd_descend(p: &FlexTensor, d: &FlexTensor, lr: f32) -> FlexTensor {
    let (p, d) = (values(p), values(d));
    tensor(
        sgd::descend(p.storage(), d.storage(), lr),
        p.layout().shape(),
    )
}

fn bn_stats(x: &FlexTensor) -> FlexTensor {
    let x = values(x);
    let c = channels(&x);
    let (mut mean, var) = norm::stats(x.storage(), c);
    mean.extend(var);
    tensor(mean, &[2, c])
}

fn bn_forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    stats: &FlexTensor,
    eps: f32,
    relu: bool,
) -> FlexTensor {
    let (x, gamma, beta, stats) = (values(x), values(gamma), values(beta), values(stats));
    let c = channels(&x);
    let (mean, var) = stats.storage::<f32>().split_at(c);
    let y = norm::forward(
        x.storage(),
        c,
        gamma.storage(),
        beta.storage(),
        mean,
        var,
        eps,
        relu,
    );
    tensor(y, x.layout().shape())
}

fn dims2(t: &FlexTensor) -> [usize; 2] {
    let s = t.layout().shape();
    [s[0], s[1]]
}

/// The integers of a packed positive map.
fn packed(t: &FlexTensor) -> Vec<i64> {
    let t = t.to_contiguous();
    match t.dtype() {
        DType::I64 => t.storage::<i64>().to_vec(),
        DType::I32 => t.storage::<i32>().iter().map(|&v| i64::from(v)).collect(),
        other => panic!("a packed positive map is an integer tensor, not {other:?}"),
    }
}

fn parse(data: &[i64]) -> infonce::Packed<'_> {
    infonce::Packed::parse(data).expect("a positive map packed by infonce::pack")
}

/// The loss and the per-row statistics its backward pass needs.
fn info_nce_forward(scores: &FlexTensor, map: &[i64]) -> (FlexTensor, Vec<f32>, Vec<f32>) {
    let s = values(scores);
    let [_, cols] = dims2(&s);
    let (loss, lse, wsum) = infonce::forward(s.storage(), &parse(map), cols);
    (tensor(vec![loss], &[1]), lse, wsum)
}

fn contrastive_forward(
    q: &FlexTensor,
    k: &FlexTensor,
    map: &[i64],
    t: f32,
    cosine: bool,
) -> (FlexTensor, infonce::Fused) {
    let (q, k) = (values(q), values(k));
    let ([r, d], [c, _]) = (dims2(&q), dims2(&k));
    let (loss, state) =
        infonce::fused_forward(q.storage(), k.storage(), &parse(map), r, c, d, t, cosine);
    (tensor(vec![loss], &[1]), state)
}

fn linear_forward(
    x: &FlexTensor,
    w: &FlexTensor,
    b: &FlexTensor,
    relu: bool,
    bf16: bool,
) -> FlexTensor {
    let (x, w, b) = (values(x), values(w), values(b));
    let ([m, k], [_, n]) = (dims2(&x), dims2(&w));
    tensor(
        linear::forward(x.storage(), w.storage(), b.storage(), m, k, n, relu, bf16),
        &[m, n],
    )
}

impl FastOps for Flex {
    fn fast_info_nce(scores: FlexTensor, map: FlexTensor) -> FlexTensor {
        info_nce_forward(&scores, &packed(&map)).0
    }

    fn fast_contrastive(
        q: FlexTensor,
        k: FlexTensor,
        map: FlexTensor,
        temperature: f32,
        cosine: bool,
    ) -> FlexTensor {
        contrastive_forward(&q, &k, &packed(&map), temperature, cosine).0
    }

    fn fast_linear(x: FlexTensor, w: FlexTensor, b: FlexTensor, relu: bool) -> FlexTensor {
        linear_forward(&x, &w, &b, relu, super::bf16::enabled())
    }

    fn fast_add_relu(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        add_relu_forward(&a, &b)
    }

    fn fast_sgd_velocity(
        v: FlexTensor,
        g: FlexTensor,
        p: FlexTensor,
        momentum: f32,
        weight_decay: f32,
    ) -> FlexTensor {
        sgd_velocity(&v, &g, &p, momentum, weight_decay)
    }

    fn fast_sgd_descend(p: FlexTensor, d: FlexTensor, lr: f32) -> FlexTensor {
        sgd_descend(&p, &d, lr)
    }

    fn fast_conv2d(x: FlexTensor, weight: FlexTensor, stride: usize, pad: usize) -> FlexTensor {
        conv_forward(&x, &weight, stride, pad).0
    }

    fn fast_bn_stats(x: FlexTensor) -> FlexTensor {
        bn_stats(&x)
    }

    fn fast_bn(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        stats: FlexTensor,
        eps: f32,
        relu: bool,
    ) -> FlexTensor {
        bn_forward(&x, &gamma, &beta, &stats, eps, relu)
    }
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    /// Input, the weight as laid out for the GEMMs, geometry.
    type State = (KeptInput, Vec<f32>, conv::ConvGeom);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let (kept, wt, g) = ops.state;
        let x32;
        let input = match &kept {
            KeptInput::F32(x) => {
                x32 = values(x);
                conv::Input::F32(x32.storage())
            }
            KeptInput::Bf16(xb) => conv::Input::Bf16(xb),
        };
        let (dx, dw) = conv::backward_from(&g, input, &wt, dy.storage(), node_x.is_some());
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, tensor(dx, &[g.n, g.h, g.w, g.c]));
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, tensor(dw, &[g.o, g.c, g.kh, g.kw]));
        }
    }
}

#[derive(Debug)]
struct AddReluBackward;

impl Backward<Flex, 2> for AddReluBackward {
    /// The output.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_a, node_b] = ops.parents;
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let y = values(&ops.state);
        let g = tensor(
            super::relu_gate(y.storage(), dy.storage()),
            y.layout().shape(),
        );
        if let Some(node) = node_a {
            grads.register::<Flex>(node.id, g.clone());
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, g);
        }
    }
}

#[derive(Debug)]
struct BnBackward;

impl Backward<Flex, 3> for BnBackward {
    /// Input, output, gamma, statistics, epsilon, ReLU.
    type State = (FlexTensor, FlexTensor, FlexTensor, FlexTensor, f32, bool);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let (x, y, gamma, stats, eps, relu) = ops.state;
        let (x, y, gamma, stats) = (values(&x), values(&y), values(&gamma), values(&stats));
        let c = channels(&x);
        let (mean, var) = stats.storage::<f32>().split_at(c);
        let (dx, dgamma, dbeta) = norm::backward(
            x.storage(),
            y.storage(),
            dy.storage(),
            c,
            gamma.storage(),
            mean,
            var,
            eps,
            relu,
        );
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, tensor(dx, x.layout().shape()));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, tensor(dgamma, &[c]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, tensor(dbeta, &[c]));
        }
    }
}

#[derive(Debug)]
struct InfoNceBackward;

impl Backward<Flex, 1> for InfoNceBackward {
    /// Scores, packed map, per-row log-sum-exp and weight sums.
    type State = (FlexTensor, Vec<i64>, Vec<f32>, Vec<f32>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let g = values(&grads.consume::<Flex>(&ops.node)).storage::<f32>()[0];
        let (s, map, lse, wsum) = ops.state;
        if let Some(node) = node {
            let s = values(&s);
            let [_, cols] = dims2(&s);
            let ds = infonce::backward(s.storage(), &parse(&map), cols, &lse, &wsum, g);
            grads.register::<Flex>(node.id, tensor(ds, s.layout().shape()));
        }
    }
}

#[derive(Debug)]
struct ContrastiveBackward;

impl Backward<Flex, 2> for ContrastiveBackward {
    /// Packed map, saved forward state, shapes `(r, c, d)`, temperature, cosine, whether
    /// the queries are the keys.
    type State = (Vec<i64>, infonce::Fused, [usize; 3], f32, bool, bool);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_q, node_k] = ops.parents;
        let g = values(&grads.consume::<Flex>(&ops.node)).storage::<f32>()[0];
        let (map, state, [r, c, d], t, cosine, shared) = ops.state;
        let (dq, dk) = infonce::fused_backward(&state, &parse(&map), r, c, d, t, cosine, shared, g);
        if let Some(node) = node_q {
            grads.register::<Flex>(node.id, tensor(dq, &[r, d]));
        }
        if let (Some(node), false) = (node_k, shared) {
            grads.register::<Flex>(node.id, tensor(dk, &[c, d]));
        }
    }
}

#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    /// Input, weight, output, ReLU, bf16 products.
    type State = (FlexTensor, FlexTensor, FlexTensor, bool, bool);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let (x, w, y, relu, bf16) = ops.state;
        let (x, w, y) = (values(&x), values(&w), values(&y));
        let ([m, k], [_, n]) = (dims2(&x), dims2(&w));
        let (dx, dw, db) = linear::backward(
            x.storage(),
            w.storage(),
            y.storage(),
            dy.storage(),
            m,
            k,
            n,
            relu,
            node_b.is_some(),
            node_x.is_some(),
            bf16,
        );
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, tensor(dx, &[m, k]));
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, tensor(dw, &[k, n]));
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, tensor(db, &[n]));
        }
    }
}

impl<C: CheckpointStrategy> FastOps for Autodiff<Flex, C> {
    fn fast_contrastive(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        map: IntTensor<Self>,
        temperature: f32,
        cosine: bool,
    ) -> FloatTensor<Self> {
        let map = packed(&map);
        let (loss, state) =
            contrastive_forward(q.primitive(), k.primitive(), &map, temperature, cosine);
        match ContrastiveBackward
            .prepare::<C>([q.node(), k.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let ([r, d], [c, _]) = (dims2(q.primitive()), dims2(k.primitive()));
                let shared = q.id() == k.id();
                prep.finish((map, state, [r, c, d], temperature, cosine, shared), loss)
            }
            OpsKind::UnTracked(prep) => prep.finish(loss),
        }
    }

    fn fast_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        relu: bool,
    ) -> FloatTensor<Self> {
        let bf16 = super::bf16::enabled();
        let out = linear_forward(x.primitive(), w.primitive(), b.primitive(), relu, bf16);
        match LinearBackward
            .prepare::<C>([x.node(), w.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                (
                    x.into_primitive(),
                    w.into_primitive(),
                    out.clone(),
                    relu,
                    bf16,
                ),
                out,
            ),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn fast_info_nce(scores: FloatTensor<Self>, map: IntTensor<Self>) -> FloatTensor<Self> {
        let map = packed(&map);
        let (loss, lse, wsum) = info_nce_forward(scores.primitive(), &map);
        match InfoNceBackward
            .prepare::<C>([scores.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((scores.into_primitive(), map, lse, wsum), loss),
            OpsKind::UnTracked(prep) => prep.finish(loss),
        }
    }

    fn fast_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        pad: usize,
    ) -> FloatTensor<Self> {
        match ConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, g, wt, xb) = conv_forward(x.primitive(), weight.primitive(), stride, pad);
                let kept = match xb {
                    Some(xb) => KeptInput::Bf16(xb),
                    None => KeptInput::F32(x.into_primitive()),
                };
                prep.finish((kept, wt, g), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(conv_forward(x.primitive(), weight.primitive(), stride, pad).0)
            }
        }
    }

    fn fast_add_relu(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        let out = add_relu_forward(a.primitive(), b.primitive());
        match AddReluBackward
            .prepare::<C>([a.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(out.clone(), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn fast_sgd_velocity(
        v: FloatTensor<Self>,
        g: FloatTensor<Self>,
        p: FloatTensor<Self>,
        momentum: f32,
        weight_decay: f32,
    ) -> FloatTensor<Self> {
        <FloatTensor<Self>>::new(sgd_velocity(
            v.primitive(),
            g.primitive(),
            p.primitive(),
            momentum,
            weight_decay,
        ))
    }

    fn fast_sgd_descend(p: FloatTensor<Self>, d: FloatTensor<Self>, lr: f32) -> FloatTensor<Self> {
        <FloatTensor<Self>>::new(sgd_descend(p.primitive(), d.primitive(), lr))
    }

    fn fast_bn_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
        <FloatTensor<Self>>::new(bn_stats(x.primitive()))
    }

    fn fast_bn(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        eps: f32,
        relu: bool,
    ) -> FloatTensor<Self> {
        let out = bn_forward(
            x.primitive(),
            gamma.primitive(),
            beta.primitive(),
            stats.primitive(),
            eps,
            relu,
        );
        match BnBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = (
                    x.into_primitive(),
                    out.clone(),
                    gamma.into_primitive(),
                    stats.into_primitive(),
                    eps,
                    relu,
                );
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}
