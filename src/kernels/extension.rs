//! The kernels as a burn backend extension: implemented for `Flex`, differentiated by
//! hand for `Autodiff<Flex>` (burn does not derive backward passes for custom operations).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Flex};
use burn::tensor::{Bytes, DType, Shape};

use super::{conv, norm};

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

fn conv_forward(x: &FlexTensor, w: &FlexTensor, stride: usize, pad: usize) -> FlexTensor {
    let (x, w) = (values(x), values(w));
    let g = conv::ConvGeom::new(dims4(&x), dims4(&w), stride, pad);
    tensor(
        conv::forward(&g, x.storage(), w.storage()),
        &[g.n, g.oh, g.ow, g.o],
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

impl FastOps for Flex {
    fn fast_conv2d(x: FlexTensor, weight: FlexTensor, stride: usize, pad: usize) -> FlexTensor {
        conv_forward(&x, &weight, stride, pad)
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
    type State = (FlexTensor, FlexTensor, usize, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = values(&grads.consume::<Flex>(&ops.node));
        let (x, w, stride, pad) = ops.state;
        let (x, w) = (values(&x), values(&w));
        let g = conv::ConvGeom::new(dims4(&x), dims4(&w), stride, pad);
        let (dx, dw) = conv::backward(&g, x.storage(), w.storage(), dy.storage(), node_x.is_some());
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, tensor(dx, &[g.n, g.h, g.w, g.c]));
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, tensor(dw, &[g.o, g.c, g.kh, g.kw]));
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

impl<C: CheckpointStrategy> FastOps for Autodiff<Flex, C> {
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
                let out = conv_forward(x.primitive(), weight.primitive(), stride, pad);
                prep.finish(
                    (x.into_primitive(), weight.into_primitive(), stride, pad),
                    out,
                )
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(conv_forward(x.primitive(), weight.primitive(), stride, pad))
            }
        }
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
