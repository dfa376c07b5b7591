//! Faster CPU kernels for what dominates training time — convolution, batch norm (+ ReLU),
//! residual joins, fully connected layers and the contrastive loss itself — as a burn backend extension
//! for `flex`.
//!
//! The kernels work on channels-last activations (`[n, h, w, c]`, and `[n, c]` for
//! vectors), which makes both convolution lowering and per-channel statistics stream
//! contiguous memory; the encoders keep activations channels-last between layers.
//! Each function here takes the fast path on a `flex` device (with or without autodiff)
//! and burn's own operations on any other backend, or when [`set_enabled`] turned the
//! kernels off; tests check that both paths agree.

/// Wraps a leaf loop in `#[multiversion]` for AVX-512, AVX2 + FMA, SSE4.2 and NEON, picked
/// at run time, so that it is vectorised on the machine at hand whatever the build's target
/// CPU (multiversion's own `"simd"` preset leaves AVX-512 out).
macro_rules! simd {
    ($item:item) => {
        #[multiversion::multiversion(targets(
            "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl",
            "x86_64+avx2+fma",
            "x86_64+sse4.2",
            "aarch64+neon"
        ))]
        $item
    };
}

pub mod bf16;
pub mod conv;
pub mod extension;
mod gathered;
pub mod gemm;
pub mod infonce;
pub mod linear;
pub mod mat;
pub mod norm;
pub mod residual;
pub mod sgd;
mod tile;

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::Dispatch;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu as burn_relu;
use burn::tensor::{DType, Int, TensorData};
use rayon::prelude::*;

use crate::pairs::PositiveMap;
use extension::FastOps;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the fast kernels on or off for the whole process (off = burn's operations).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether the fast kernels are on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Initialised values viewed as possibly uninitialised ones, for code that writes every
/// element through `MaybeUninit`.
///
/// # Safety
/// Nothing uninitialised may be written through the view.
unsafe fn unfilled<T>(s: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: same layout; the caller writes only initialised values through the view.
    unsafe { &mut *(s as *mut [T] as *mut [MaybeUninit<T>]) }
}

/// A new vector of `len` values written in parallel by `fill(i, chunk)` on its `i`-th
/// chunk of `chunk` elements (the last may be shorter). The vector is not zeroed first:
/// zeroing large outputs just before they are overwritten cost several percent of a step.
///
/// # Safety
/// `fill` must write every element of the chunk it is given.
unsafe fn filled<T: Send>(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync + Send,
) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, c)| fill(i, c));
    // SAFETY: the chunks tile all `len` elements and the caller's `fill` wrote each.
    unsafe { v.set_len(len) };
    v
}

/// Elements per parallel task of the element-wise kernels.
const CHUNK: usize = 1 << 14;

/// A new vector of `len` values written in parallel, [`CHUNK`] at a time, by
/// `fill(range, out)`, `out` being the elements `range` of the result.
///
/// # Safety
/// `fill` must write every element of `out`.
unsafe fn elementwise(
    len: usize,
    fill: impl Fn(Range<usize>, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    // SAFETY: the caller's `fill` writes every element of each chunk it is given.
    unsafe {
        filled(len, CHUNK, |i, out| {
            fill(i * CHUNK..i * CHUNK + out.len(), out)
        })
    }
}

simd! {
fn gate_chunk(g: &mut [MaybeUninit<f32>], dy: &[f32], y: &[f32]) {
    for ((g, &d), &y) in g.iter_mut().zip(dy).zip(y) {
        g.write(if y > 0.0 { d } else { 0.0 });
    }
}
}

/// ReLU's backward from its output `y`: `dy * [y > 0]`.
pub(crate) fn relu_gate(y: &[f32], dy: &[f32]) -> Vec<f32> {
    assert_eq!(y.len(), dy.len(), "relu gate: gradient differs in length");
    // SAFETY: `gate_chunk` writes every element of its chunk.
    unsafe { elementwise(y.len(), |r, g| gate_chunk(g, &dy[r.clone()], &y[r])) }
}

/// `s` filled with zeros, as initialised values.
fn zeroed(s: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    s.iter_mut().for_each(|v| {
        v.write(0.0);
    });
    // SAFETY: every element was just written, and `MaybeUninit<f32>` has `f32`'s layout.
    unsafe { &mut *(s as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Whether `x` takes the fast path.
fn fast<const D: usize>(x: &Tensor<D>) -> bool {
    enabled() && x.dtype() == DType::F32 && x.device().inner() == Device::flex()
}

/// The padding of `conv` when the kernel covers the layer (no bias, one group, no
/// dilation, equal strides, equal explicit padding on every side).
fn covered(conv: &Conv2d) -> Option<usize> {
    let pad = match &conv.padding {
        PaddingConfig2d::Explicit(t, l, b, r) if t == l && l == b && b == r => *t,
        PaddingConfig2d::Valid => 0,
        _ => return None,
    };
    let ok = conv.bias.is_none()
        && conv.groups == 1
        && conv.dilation == [1, 1]
        && conv.stride[0] == conv.stride[1];
    ok.then_some(pad)
}

/// `conv` applied to channels-last `x` (`[n, h, w, c]`), giving `[n, oh, ow, o]`.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match covered(conv) {
        Some(pad) if fast(&x) => Tensor::from_dispatch(<Dispatch as FastOps>::fast_conv2d(
            x.into_dispatch(),
            conv.weight.val().into_dispatch(),
            conv.stride[0],
            pad,
        )),
        _ => conv.forward(x.permute([0, 3, 1, 2])).permute([0, 2, 3, 1]),
    }
}

/// `bn` over the last dimension of `x` (channels last), then ReLU when `relu`: batch
/// statistics and a running-statistics update in training (autodiff device, module in
/// training mode), running statistics otherwise.
pub fn batch_norm<const D: usize>(bn: &BatchNorm, x: Tensor<D>, relu: bool) -> Tensor<D> {
    let autodiff = x.device().is_autodiff();
    let training = autodiff && bn.training.is_enabled();
    // Inference on an autodiff device keeps burn's path: its gradient treats the running
    // statistics as constants, which the fast backward (training mode) does not.
    if !fast(&x) || (autodiff && !training) {
        let dims = x.dims();
        let c = dims[D - 1];
        let y: Tensor<2> = bn.forward(x.reshape([dims.iter().product::<usize>() / c, c]));
        sync_running(bn);
        let y = if relu { burn_relu(y) } else { y };
        return y.reshape(dims);
    }
    let stats: Tensor<2> = if training {
        let stats: Tensor<2> = Tensor::from_dispatch(<Dispatch as FastOps>::fast_bn_stats(
            x.clone().into_dispatch(),
        ));
        let c = stats.dims()[1];
        let mean = stats.clone().slice([0..1, 0..c]).reshape([c]);
        let var = stats.clone().slice([1..2, 0..c]).reshape([c]);
        update_running(bn, mean, var);
        stats
    } else {
        let device = x.device();
        Tensor::stack(
            vec![
                bn.running_mean.value().to_device(&device),
                bn.running_var.value().to_device(&device),
            ],
            0,
        )
    };
    Tensor::from_dispatch(<Dispatch as FastOps>::fast_bn(
        x.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        stats.into_dispatch(),
        bn.epsilon as f32,
        relu,
    ))
}

/// The positive map as the integer tensor the loss kernels read.
fn packed_map(map: &PositiveMap, device: &Device) -> Tensor<1, Int> {
    let data = infonce::pack(map);
    let n = data.len();
    Tensor::from_data(TensorData::new(data, [n]), device)
}

/// The InfoNCE family over `scores` with `map`, when the fast path applies; `None` tells
/// the caller to compose the loss from burn operations.
pub fn info_nce(scores: &Tensor<2>, map: &PositiveMap) -> Option<Tensor<1>> {
    if !fast(scores) {
        return None;
    }
    let map = packed_map(map, &scores.device());
    Some(Tensor::from_dispatch(<Dispatch as FastOps>::fast_info_nce(
        scores.clone().into_dispatch(),
        map.into_dispatch(),
    )))
}

/// Cosine (or dot) scores of `q` against `k` over `temperature` and the InfoNCE family
/// with `map`, fused, when the fast path applies; `None` tells the caller to compose the
/// loss from burn operations.
pub fn contrastive(
    q: &Tensor<2>,
    k: &Tensor<2>,
    temperature: f64,
    cosine: bool,
    map: &PositiveMap,
) -> Option<Tensor<1>> {
    if !fast(q) {
        return None;
    }
    let map = packed_map(map, &q.device());
    Some(Tensor::from_dispatch(
        <Dispatch as FastOps>::fast_contrastive(
            q.clone().into_dispatch(),
            k.clone().into_dispatch(),
            map.into_dispatch(),
            temperature as f32,
            cosine,
        ),
    ))
}

/// `layer(x)`, then ReLU when `relu`, for `x` `[m, d_input]`.
pub fn linear(layer: &Linear, x: Tensor<2>, relu: bool) -> Tensor<2> {
    if !fast(&x) {
        let y = layer.forward(x);
        return if relu { burn_relu(y) } else { y };
    }
    // The weight is read before the bias, as burn's `Linear` does: lazy initialisation
    // draws from the device RNG in access order.
    let weight = layer.weight.val();
    let bias = match &layer.bias {
        Some(b) => b.val(),
        None => Tensor::<1>::zeros([0], &x.device()),
    };
    Tensor::from_dispatch(<Dispatch as FastOps>::fast_linear(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        relu,
    ))
}

/// `max(a + b, 0)` for tensors of one shape: a residual join, one parallel pass each way.
pub fn add_relu<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    if !fast(&a) || a.dims() != b.dims() {
        return burn_relu(a + b);
    }
    Tensor::from_dispatch(<Dispatch as FastOps>::fast_add_relu(
        a.into_dispatch(),
        b.into_dispatch(),
    ))
}

/// The SGD velocity `(wd p + g) + m v`, for tensors of one shape.
pub fn sgd_velocity<const D: usize>(
    v: Tensor<D>,
    g: Tensor<D>,
    p: Tensor<D>,
    momentum: f32,
    weight_decay: f32,
) -> Tensor<D> {
    if !fast(&p) {
        return p
            .mul_scalar(weight_decay)
            .add(g)
            .add(v.mul_scalar(momentum));
    }
    Tensor::from_dispatch(<Dispatch as FastOps>::fast_sgd_velocity(
        v.into_dispatch(),
        g.into_dispatch(),
        p.into_dispatch(),
        momentum,
        weight_decay,
    ))
}

/// The SGD step `p - lr d`.
pub fn sgd_descend<const D: usize>(p: Tensor<D>, d: Tensor<D>, lr: f32) -> Tensor<D> {
    if !fast(&p) {
        return p - d.mul_scalar(lr);
    }
    Tensor::from_dispatch(<Dispatch as FastOps>::fast_sgd_descend(
        p.into_dispatch(),
        d.into_dispatch(),
        lr,
    ))
}

/// `running = (1 - momentum) * running + momentum * batch`, as burn's `BatchNorm` does.
fn update_running(bn: &BatchNorm, mean: Tensor<1>, var: Tensor<1>) {
    let device = mean.device();
    let m = bn.momentum;
    let rm = bn.running_mean.value_sync().to_device(&device);
    let rv = bn.running_var.value_sync().to_device(&device);
    bn.running_mean
        .update(rm.mul_scalar(1.0 - m).add(mean.mul_scalar(m)).detach());
    bn.running_var
        .update(rv.mul_scalar(1.0 - m).add(var.mul_scalar(m)).detach());
    sync_running(bn);
}

/// Folds this step's running-statistics update into the stored value. burn's
/// `RunningState` keeps an update pending until the next read; a checkpoint taken in
/// between would miss it (and a resumed run would diverge).
fn sync_running(bn: &BatchNorm) {
    bn.running_mean.value_sync();
    bn.running_var.value_sync();
}
