//! 2-D convolution on channels-last (NHWC) activations as products over blocks of whole
//! images.
//!
//! burn's `flex` convolution runs one small GEMM per image (for R1's last layer a
//! 256x1152 by 1152x16 product) on NCHW data, then transposes, and its backward goes
//! through a transposed convolution. Here activations stay channels-last, so:
//! - a receptive field is `kh` runs of `kw * c` contiguous values; the forward pass reads
//!   them in place from the padded input ([`super::gathered`]) where the CPU has AVX-512
//!   (in bf16, with an even channel count), and copies them into lowered or packed rows
//!   elsewhere;
//! - one product per block of whole images has thousands of rows, and its
//!   `[positions, o]` result is the NHWC output itself;
//! - backward is `dW = colᵀ dY` over the lowered (in bf16, packed) block and, for
//!   stride 1, `dx` as the
//!   forward convolution of `dy` with the flipped weight; strided `dx` is `dcol = dY Wᵀ`
//!   folded back by the adjoint of the lowering (col2im).
//!
//! The lowered matrix `col` is `[positions, k]` with `k` ordered `(i, j, channel)`; the
//! weight, stored `[o, c, kh, kw]` as burn keeps it, is used as `wt = [k, o]`.

use std::cell::RefCell;

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::gemm::{matmul_rhs, matmul_uninit, Mat, Rhs};

/// Output positions per block: enough rows for efficient products, few enough that a
/// block's lowered or padded input stays within a few megabytes.
const BLOCK_ROWS: usize = 1024;

/// Shapes of one convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
    /// Products in bf16 with f32 accumulation ([`super::bf16`]) instead of f32.
    pub bf16: bool,
}

impl ConvGeom {
    /// Geometry of NHWC input `[n, h, w, c]` and weight `[o, c, kh, kw]`.
    pub fn new(x: [usize; 4], wt: [usize; 4], stride: usize, pad: usize) -> Self {
        let [n, h, w, c] = x;
        let [o, wc, kh, kw] = wt;
        assert_eq!(c, wc, "conv: input has {c} channels, weight expects {wc}");
        assert!(
            stride >= 1 && h + 2 * pad >= kh && w + 2 * pad >= kw,
            "conv: kernel larger than padded input"
        );
        let oh = (h + 2 * pad - kh) / stride + 1;
        let ow = (w + 2 * pad - kw) / stride + 1;
        Self {
            n,
            h,
            w,
            c,
            o,
            kh,
            kw,
            stride,
            pad,
            oh,
            ow,
            bf16: false,
        }
    }

    /// Columns of the lowered input: `kh * kw * c`.
    pub fn k(&self) -> usize {
        self.kh * self.kw * self.c
    }

    /// Output positions per image.
    pub fn spatial(&self) -> usize {
        self.oh * self.ow
    }

    /// Images per block: at most [`BLOCK_ROWS`] rows, and at least two blocks per thread
    /// (a 4x4 map fits a whole batch in one block, which left all but one core idle).
    fn images_per_block(&self) -> usize {
        let by_rows = BLOCK_ROWS / self.spatial();
        let by_threads = self.n.div_ceil(2 * rayon::current_num_threads());
        by_rows.min(by_threads).clamp(1, self.n.max(1))
    }
}

thread_local! {
    /// Per-thread scratch (lowered or padded input, lowered gradient), reused across calls
    /// so that multi-megabyte buffers are not faulted in afresh every step. Nothing run
    /// while it is borrowed may be parallel: a task rayon steals meanwhile would borrow it
    /// again.
    static SCRATCH: RefCell<[Vec<f32>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

fn with_scratch<R>(f: impl FnOnce(&mut [Vec<f32>; 2]) -> R) -> R {
    SCRATCH.with(|s| f(&mut s.borrow_mut()))
}

fn sized(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// The weight `[o, c, kh, kw]` as `[k, o]` with `k = (i, j, c)`: `t[(ij, c), o] = w[o, c, ij]`.
/// Parallel over blocks of 16 rows of `t` (one tap, 16 channels), whose reads share the
/// same `o` cache lines of `w` while they are in L1.
pub fn weight_kxo(g: &ConvGeom, w: &[f32]) -> Vec<f32> {
    let (kk, c, o) = (g.kh * g.kw, g.c, g.o);
    let mut t = vec![0.0; g.k() * o];
    t.par_chunks_mut(16 * o).enumerate().for_each(|(b, rows)| {
        for (r, row) in rows.chunks_exact_mut(o).enumerate() {
            let (ij, ch) = ((b * 16 + r) / c, (b * 16 + r) % c);
            for (oi, v) in row.iter_mut().enumerate() {
                *v = w[(oi * c + ch) * kk + ij];
            }
        }
    });
    t
}

/// The inverse of [`weight_kxo`], parallel over output channels: `w[o, c, ij] = t[(ij, c), o]`.
fn weight_ockk(g: &ConvGeom, t: &[f32]) -> Vec<f32> {
    let (kk, c, o) = (g.kh * g.kw, g.c, g.o);
    let mut w = vec![0.0; g.k() * o];
    w.par_chunks_mut(c * kk).enumerate().for_each(|(oi, row)| {
        for (r, v) in row.iter_mut().enumerate() {
            let (ch, ij) = (r / kk, r % kk);
            *v = t[(ij * c + ch) * o + oi];
        }
    });
    w
}

/// The valid kernel columns `j0..j0 + count` of each output column `ox`: those whose input
/// column `ox * stride + j - pad` lies inside the image.
fn column_taps(g: &ConvGeom) -> Vec<(usize, usize)> {
    let (s, p) = (g.stride as isize, g.pad as isize);
    (0..g.ow as isize)
        .map(|ox| {
            let lo = (p - ox * s).max(0);
            let hi = (g.w as isize + p - ox * s).min(g.kw as isize);
            (lo as usize, (hi - lo).max(0) as usize)
        })
        .collect()
}

/// The input row under kernel row `i` at output row `oy`, if inside the image.
fn input_row(g: &ConvGeom, oy: usize, i: usize) -> Option<usize> {
    (oy * g.stride + i)
        .checked_sub(g.pad)
        .filter(|&iy| iy < g.h)
}

/// Lowers images `n0..n0+nb` of NHWC `x` into `col` (`[nb * spatial, k]`): each row holds
/// the receptive field of one output position, zeros in the padding.
pub fn im2col(g: &ConvGeom, x: &[f32], n0: usize, nb: usize, col: &mut [f32]) {
    let taps = column_taps(g);
    for (q, row) in col[..nb * g.spatial() * g.k()]
        .chunks_exact_mut(g.k())
        .enumerate()
    {
        lower_row(g, &taps, x, n0, q, row);
    }
}

/// Adds the lowered gradient `col` back into `dx` (the adjoint of [`im2col`]); `dx` holds
/// just the block's `nb` images.
pub fn col2im(g: &ConvGeom, col: &[f32], nb: usize, dx: &mut [f32]) {
    let (k, c, seg) = (g.k(), g.c, g.kw * g.c);
    let img = g.h * g.w * c;
    let taps = column_taps(g);
    for b in 0..nb {
        let plane = &mut dx[b * img..][..img];
        for oy in 0..g.oh {
            for (ox, &(j0, count)) in taps.iter().enumerate() {
                let row = &col[((b * g.oh + oy) * g.ow + ox) * k..][..k];
                for (i, part) in row.chunks_exact(seg).enumerate() {
                    if let (Some(iy), true) = (input_row(g, oy, i), count > 0) {
                        let ix = ox * g.stride + j0 - g.pad;
                        let src = &part[j0 * c..(j0 + count) * c];
                        let dst = &mut plane[(iy * g.w + ix) * c..][..src.len()];
                        dst.iter_mut().zip(src).for_each(|(d, v)| *d += v);
                    }
                }
            }
        }
    }
}

/// Row `q` of images `n0..`'s lowered input into `out` (`k` values): the receptive field
/// of one output position, zeros in the padding. The valid taps of one kernel row are
/// `count * c` contiguous inputs, copied at once.
fn lower_row(
    g: &ConvGeom,
    taps: &[(usize, usize)],
    x: &[f32],
    n0: usize,
    q: usize,
    out: &mut [f32],
) {
    let (c, seg, img) = (g.c, g.kw * g.c, g.h * g.w * g.c);
    let (b, oy, ox) = (q / g.spatial(), q % g.spatial() / g.ow, q % g.ow);
    let plane = &x[(n0 + b) * img..][..img];
    let (j0, count) = taps[ox];
    for (i, part) in out.chunks_exact_mut(seg).enumerate() {
        match input_row(g, oy, i) {
            Some(iy) if count > 0 => {
                let ix = ox * g.stride + j0 - g.pad;
                let (lo, hi) = (j0 * c, (j0 + count) * c);
                part[..lo].fill(0.0);
                part[lo..hi].copy_from_slice(&plane[(iy * g.w + ix) * c..][..hi - lo]);
                part[hi..].fill(0.0);
            }
            _ => part.fill(0.0),
        }
    }
}

/// Where, in values of a padded input (f32 values, or the halves of
/// [`super::bf16::rounded_padded`]), the receptive field of position `q` of images `n0..`
/// starts: its first kernel row's run of `kw * c` values; run `i` lies `i` padded rows
/// further on.
fn field_start(g: &ConvGeom, n0: usize, q: usize) -> usize {
    let (hp, wp) = (g.h + 2 * g.pad, g.w + 2 * g.pad);
    let (b, oy, ox) = (q / g.spatial(), q % g.spatial() / g.ow, q % g.ow);
    (((n0 + b) * hp + oy * g.stride) * wp + ox * g.stride) * g.c
}

/// Row `q` of images `n0..`'s lowered input, in bf16, from the padded input `xp`: `kh`
/// runs of `kw * c` values, copied. For the weight gradient's packed operand, and for the
/// forward pass where a run does not start on a word (odd `c`).
fn lower_padded(g: &ConvGeom, xp: &[u16], n0: usize, q: usize, out: &mut [u16]) {
    let (start, seg, row) = (field_start(g, n0, q), g.kw * g.c, (g.w + 2 * g.pad) * g.c);
    for (i, part) in out.chunks_exact_mut(seg).enumerate() {
        part.copy_from_slice(&xp[start + i * row..][..seg]);
    }
}

/// The weight gradient laid out `[o, k]` (`k = (i, j, c)`, as the bf16 path computes
/// `dYᵀ col`) as burn keeps it, `[o, c, kh, kw]`, parallel over output channels.
fn weight_from_oxk(g: &ConvGeom, t: &[f32]) -> Vec<f32> {
    let (kk, c) = (g.kh * g.kw, g.c);
    let mut w = vec![0.0; g.k() * g.o];
    w.par_chunks_mut(c * kk)
        .zip(t.par_chunks(c * kk))
        .for_each(|(row, src)| {
            for (r, v) in row.iter_mut().enumerate() {
                let (ch, ij) = (r / kk, r % kk);
                *v = src[ij * c + ch];
            }
        });
    w
}

/// Convolution of NHWC `x` with the weight as [`weight_kxo`] lays it out (`wt`, `[k, o]`):
/// NHWC output `[n, oh, ow, o]`. The caller keeps `wt` for [`backward`].
pub fn forward(g: &ConvGeom, x: &[f32], wt: &[f32]) -> Vec<f32> {
    forward_keeping(g, x, wt).0
}

/// A convolution's input as its backward pass reads it: f32, or rounded to bf16 and
/// padded once by the forward pass ([`forward_keeping`], as
/// [`super::bf16::rounded_padded`] lays it out) and kept, so that the weight gradient does
/// not round it again: one pass over the input less per convolution, 5% of a bf16 ResNet
/// step.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    F32(&'a [f32]),
    Bf16(&'a [u32]),
}

/// The input rounded to bf16 and padded, as [`Input::Bf16`] holds it.
fn kept_bf16(g: &ConvGeom, x: &[f32]) -> Vec<u32> {
    super::bf16::rounded_padded([g.n, g.h, g.w, g.c], g.pad, x)
}

/// [`forward`], also returning the input rounded to bf16 and padded when `g.bf16`, which
/// [`backward_from`] takes instead of `x`.
///
/// Where the CPU allows, every receptive field is `kh` runs of the padded input, which the
/// product reads in place ([`super::gathered`]): nothing is lowered or packed. In bf16 a
/// run must start on a word, so an odd channel count (an RGB stem) copies the fields into
/// packed rows instead; f32 without AVX-512 goes through im2col and the `gemm` crate.
pub fn forward_keeping(g: &ConvGeom, x: &[f32], wt: &[f32]) -> (Vec<f32>, Option<Vec<u32>>) {
    assert_eq!(x.len(), g.n * g.h * g.w * g.c, "conv: input length");
    assert_eq!(wt.len(), g.o * g.k(), "conv: weight length");
    if g.bf16 {
        let xb = kept_bf16(g, x);
        let y = forward_bf16(g, &xb, wt);
        return (y, Some(xb));
    }
    match super::gathered::supported() {
        true => (forward_gathered(g, x, wt), None),
        false => (forward_lowered(g, x, wt), None),
    }
}

/// The output `[n, oh, ow, o]` filled block by block of whole images, in parallel by
/// `block(n0, rows, out)`, for images from `n0` on.
///
/// # Safety
/// `block` writes every one of its `rows x o` outputs (row stride `o`) from `out` on.
unsafe fn by_blocks(
    g: &ConvGeom,
    block: impl Fn(usize, usize, *mut f32) + Sync + Send,
) -> Vec<f32> {
    let per = g.images_per_block();
    // SAFETY: each block writes every one of its elements (the caller's promise).
    unsafe {
        super::filled(
            g.n * g.spatial() * g.o,
            per * g.spatial() * g.o,
            |bi, out| block(bi * per, out.len() / g.o, out.as_mut_ptr().cast()),
        )
    }
}

/// The runs of a receptive field, `kh` of `kw * c` values one padded row apart, in
/// elements of `per` values (1 for f32, 2 for bf16 words; `c` a multiple of it).
fn runs(g: &ConvGeom, per: usize) -> super::gathered::Runs {
    debug_assert!(g.c.is_multiple_of(per), "conv: runs split a value");
    super::gathered::Runs {
        count: g.kh,
        stride: (g.w + 2 * g.pad) * g.c / per,
        len: g.kw * g.c / per,
    }
}

/// f32 forward pass, fields read in place from each block's images padded into scratch
/// (padding the whole input at once sent it through memory twice more).
fn forward_gathered(g: &ConvGeom, x: &[f32], wt: &[f32]) -> Vec<f32> {
    let data = super::gathered::panels_f32(Mat::rows(wt, g.k(), g.o));
    let b = super::gathered::Panels {
        data: &data,
        rows: g.k(),
        cols: g.o,
    };
    let (img, padded) = (g.h * g.w * g.c, (g.h + 2 * g.pad) * (g.w + 2 * g.pad) * g.c);
    let block = |n0: usize, rows: usize, dst: *mut f32| {
        let nb = rows / g.spatial();
        with_scratch(|[xp, _]| {
            let xp = sized(xp, nb * padded);
            let src = &x[n0 * img..][..nb * img];
            super::gathered::pad_images([nb, g.h, g.w, g.c], g.pad, src, xp);
            let at = |q: usize| field_start(g, 0, q);
            // SAFETY: AVX-512F and FMA are present (`supported`); `dst` holds `rows x o`
            // (`by_blocks`), apart from the scratch and the panels.
            unsafe { super::gathered::product((dst, g.o), rows, (xp, &at), runs(g, 1), &b) }
        })
    };
    // SAFETY: the product writes every one of the block's `rows x o` outputs.
    unsafe { by_blocks(g, block) }
}

/// f32 forward pass through im2col and the `gemm` crate.
fn forward_lowered(g: &ConvGeom, x: &[f32], wt: &[f32]) -> Vec<f32> {
    let (k, s) = (g.k(), g.spatial());
    let wt = Rhs::F32(Mat::rows(wt, k, g.o));
    let block = |n0: usize, rows: usize, dst: *mut f32| {
        with_scratch(|[col, _]| {
            let col = sized(col, rows * k);
            im2col(g, x, n0, rows / s, col);
            // SAFETY: `dst` holds `rows x o` (`by_blocks`).
            let out = unsafe { std::slice::from_raw_parts_mut(dst.cast(), rows * g.o) };
            matmul_uninit(out, g.o, Mat::rows(col, rows, k), &wt);
        })
    };
    // SAFETY: the product writes every one of the block's `rows x o` outputs.
    unsafe { by_blocks(g, block) }
}

/// bf16 forward pass from the rounded, padded input `xb`.
fn forward_bf16(g: &ConvGeom, xb: &[u32], wt: &[f32]) -> Vec<f32> {
    let k = g.k();
    let wt = super::bf16::Packed::new(&Mat::rows(wt, k, g.o));
    let block = |n0: usize, rows: usize, dst: *mut f32| {
        if g.c.is_multiple_of(2) {
            let at = |q: usize| field_start(g, n0, q) / 2;
            // SAFETY: AVX512-BF16 is present (`Packed::new` checked); `dst` holds `rows x o`
            // (`by_blocks`), apart from `xb` and the packed weight.
            unsafe {
                super::gathered::product((dst, g.o), rows, (xb, &at), runs(g, 2), &wt.panels())
            }
        } else {
            let xp = super::bf16::halves_of(xb);
            let row = |q: usize, r: &mut [u16]| lower_padded(g, xp, n0, q, r);
            // SAFETY: as above; nothing accumulated.
            unsafe { super::bf16::product_rows(dst, g.o, rows, k, &row, &wt, false) }
        }
    };
    // SAFETY: either product writes every one of the block's `rows x o` outputs.
    unsafe { by_blocks(g, block) }
}

/// A block of images: its first image and, when `dx` is wanted, its slice of `dx` (not yet
/// initialised: the block's worker zeroes it just before adding into it, in parallel and
/// while it is in cache, instead of one serial pass over all of `dx`).
type Block<'a> = (usize, Option<&'a mut [MaybeUninit<f32>]>);

/// Gradients of [`forward`] given NHWC `dy` and the same `wt`: `dx` (NHWC) when `need_dx`,
/// and `dw` (`[o, c, kh, kw]`).
pub fn backward(
    g: &ConvGeom,
    x: &[f32],
    wt: &[f32],
    dy: &[f32],
    need_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>) {
    backward_from(g, Input::F32(x), wt, dy, need_dx)
}

/// [`backward`] from the input as the forward pass kept it: in bf16, the rounded, padded
/// copy of [`forward_keeping`] (an f32 input is rounded and padded here).
pub fn backward_from(
    g: &ConvGeom,
    input: Input,
    wt: &[f32],
    dy: &[f32],
    need_dx: bool,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let (k, s, img) = (g.k(), g.spatial(), g.h * g.w * g.c);
    let kept;
    let (x, xb): (&[f32], &[u32]) = match input {
        Input::F32(x) if g.bf16 => {
            kept = kept_bf16(g, x);
            (&[], &kept)
        }
        Input::F32(x) => (x, &[]),
        Input::Bf16(xb) => {
            assert!(g.bf16, "conv: a bf16 input for f32 products");
            (&[], xb)
        }
    };
    match g.bf16 {
        true => {
            let padded = g.n * (g.h + 2 * g.pad) * (g.w + 2 * g.pad) * g.c;
            assert_eq!(xb.len(), padded.div_ceil(2), "conv: kept input length");
        }
        false => assert_eq!(x.len(), g.n * img, "conv: input length"),
    }
    let xp = super::bf16::halves_of(xb);
    assert_eq!(dy.len(), g.n * s * g.o, "conv: output-gradient length");
    assert_eq!(wt.len(), g.o * k, "conv: weight length");
    let per = g.images_per_block();
    // With stride 1, `dx` is the convolution of `dy` with the weight flipped and its
    // channels swapped, padded by `kh - 1 - pad`: the forward pass computes it, with no
    // lowered gradient to scatter back (`col2im`).
    let flipped = need_dx && g.stride == 1 && g.kh == g.kw && g.pad < g.kh && g.h * g.w > 0;
    let dx_flipped = flipped.then(|| {
        let g2 = ConvGeom {
            bf16: g.bf16,
            ..ConvGeom::new(
                [g.n, g.oh, g.ow, g.o],
                [g.c, g.o, g.kh, g.kw],
                1,
                g.kh - 1 - g.pad,
            )
        };
        forward(&g2, dy, &flip_kxo(g, wt))
    });
    let need_dx = need_dx && !flipped;
    let mut dx = Vec::with_capacity(if need_dx { g.n * img } else { 0 });
    let blocks: Vec<Block> = if need_dx {
        dx.spare_capacity_mut()[..g.n * img]
            .chunks_mut(per * img)
            .enumerate()
            .map(|(i, d)| (i * per, Some(d)))
            .collect()
    } else {
        (0..g.n).step_by(per).map(|n0| (n0, None)).collect()
    };
    // One contiguous run of blocks per thread, each summed in order, then the runs in
    // order: the same floating-point sum whatever the scheduling, so runs reproduce.
    let per_thread = blocks.len().div_ceil(rayon::current_num_threads()).max(1);
    let wt_t = need_dx.then(|| Rhs::new(Mat::rows(wt, k, g.o).t(), g.bf16));
    let mut runs: Vec<Vec<Block>> = Vec::new();
    let mut it = blocks.into_iter().peekable();
    while it.peek().is_some() {
        runs.push(it.by_ref().take(per_thread).collect());
    }
    let partial: Vec<Vec<f32>> = runs
        .into_par_iter()
        .map(|run| {
            let mut dwt = vec![0.0f32; k * g.o];
            for (n0, dxb) in run {
                let nb = per.min(g.n - n0);
                let rows = nb * s;
                let dyb = &dy[n0 * s * g.o..][..rows * g.o];
                with_scratch(|[col, dcol]| {
                    if g.bf16 {
                        // dWᵀ = dYᵀ col over chunks of positions, each chunk of `col` packed
                        // row by row straight from the kept copy `xp` (a whole block's took
                        // up to 4.7 MB).
                        for q0 in (0..rows).step_by(super::bf16::CHUNK_ROWS) {
                            let len = super::bf16::CHUNK_ROWS.min(rows - q0);
                            let row = |q: usize, r: &mut [u16]| lower_padded(g, xp, n0, q0 + q, r);
                            let col = Rhs::Bf16(super::bf16::Packed::from_rows(len, k, &row));
                            let dyc = Mat::rows(&dyb[q0 * g.o..], len, g.o).t();
                            matmul_rhs(&mut dwt, k, dyc, &col, true);
                        }
                    } else {
                        let col = sized(col, rows * k);
                        im2col(g, x, n0, nb, col);
                        matmul_rhs(
                            &mut dwt,
                            g.o,
                            Mat::rows(col, rows, k).t(),
                            &Rhs::F32(Mat::rows(dyb, rows, g.o)),
                            true,
                        );
                    }
                    if let (Some(dxb), Some(wt_t)) = (dxb, &wt_t) {
                        let dxb = super::zeroed(dxb);
                        let dcol = sized(dcol, rows * k);
                        matmul_rhs(dcol, k, Mat::rows(dyb, rows, g.o), wt_t, false);
                        col2im(g, dcol, nb, dxb);
                    }
                });
            }
            dwt
        })
        .collect();
    if need_dx {
        // SAFETY: the blocks tile `dx`, and each block's worker initialised its slice.
        unsafe { dx.set_len(g.n * img) };
    }
    let mut dwt = vec![0.0f32; k * g.o];
    for p in partial {
        dwt.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
    }
    let dw = match g.bf16 {
        true => weight_from_oxk(g, &dwt),
        false => weight_ockk(g, &dwt),
    };
    (dx_flipped.or(need_dx.then_some(dx)), dw)
}

/// The `[k, o]` weight `wt` of `g` as the `[k', c]` weight of the flipped convolution in
/// [`backward`]: `t[(ij', o), c] = wt[(kk - 1 - ij', c), o]`, the taps reversed.
fn flip_kxo(g: &ConvGeom, wt: &[f32]) -> Vec<f32> {
    let (kk, c, o) = (g.kh * g.kw, g.c, g.o);
    let mut t = vec![0.0; kk * o * c];
    t.par_chunks_mut(c).enumerate().for_each(|(r, row)| {
        let (ij, oi) = (r / o, r % o);
        for (ci, v) in row.iter_mut().enumerate() {
            *v = wt[((kk - 1 - ij) * c + ci) * o + oi];
        }
    });
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct convolution on NHWC data, the definition.
    fn naive(g: &ConvGeom, x: &[f32], w: &[f32]) -> Vec<f32> {
        let mut y = vec![0.0; g.n * g.spatial() * g.o];
        for n in 0..g.n {
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    for o in 0..g.o {
                        let mut acc = 0.0;
                        for c in 0..g.c {
                            for i in 0..g.kh {
                                for j in 0..g.kw {
                                    let iy = (oy * g.stride + i) as isize - g.pad as isize;
                                    let ix = (ox * g.stride + j) as isize - g.pad as isize;
                                    if iy >= 0
                                        && ix >= 0
                                        && (iy as usize) < g.h
                                        && (ix as usize) < g.w
                                    {
                                        acc += x[((n * g.h + iy as usize) * g.w + ix as usize)
                                            * g.c
                                            + c]
                                            * w[((o * g.c + c) * g.kh + i) * g.kw + j];
                                    }
                                }
                            }
                        }
                        y[((n * g.oh + oy) * g.ow + ox) * g.o + o] = acc;
                    }
                }
            }
        }
        y
    }

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16) % 200) as f32
                    / 100.0
                    - 1.0
            })
            .collect()
    }

    #[test]
    fn forward_and_backward_match_the_definition() {
        for (x, wt, stride, pad) in [
            ([3, 7, 6, 2], [4, 2, 3, 3], 1, 1),
            ([5, 9, 9, 3], [2, 3, 3, 3], 2, 1),
            ([2, 5, 5, 4], [3, 4, 1, 1], 2, 0),
            ([200, 4, 4, 1], [3, 1, 3, 3], 1, 1),
            ([2, 8, 8, 3], [4, 3, 7, 7], 2, 3),
            // Stride 1 with other paddings: the flipped input gradient's padding kh - 1 - pad.
            ([2, 6, 5, 3], [4, 3, 3, 3], 1, 0),
            ([2, 4, 5, 3], [2, 3, 1, 1], 1, 0),
            ([2, 7, 6, 2], [3, 2, 5, 5], 1, 1),
            // Stride 3, and a map the last kernel window does not reach the end of.
            ([2, 10, 8, 4], [5, 4, 3, 3], 3, 0),
        ] {
            let g = ConvGeom::new(x, wt, stride, pad);
            let xs = data(x.iter().product(), 1);
            let ws = data(wt.iter().product(), 2);
            let wt = weight_kxo(&g, &ws);
            let y = forward(&g, &xs, &wt);
            let want = naive(&g, &xs, &ws);
            for (a, b) in y.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b}");
            }
            // L = sum(y * r) is linear in x and in w: a unit step gives the exact gradient.
            let r = data(y.len(), 3);
            let (dx, dw) = backward(&g, &xs, &wt, &r, true);
            let dx = dx.unwrap();
            let loss = |xs: &[f32], ws: &[f32]| -> f64 {
                naive(&g, xs, ws)
                    .iter()
                    .zip(&r)
                    .map(|(a, b)| f64::from(a * b))
                    .sum()
            };
            for idx in [0, xs.len() / 2, xs.len() - 1] {
                let mut xp = xs.clone();
                xp[idx] += 1.0;
                let d = loss(&xp, &ws) - loss(&xs, &ws);
                assert!(
                    (d - f64::from(dx[idx])).abs() < 1e-3,
                    "dx[{idx}] {d} vs {}",
                    dx[idx]
                );
            }
            for idx in [0, ws.len() / 2, ws.len() - 1] {
                let mut wp = ws.clone();
                wp[idx] += 1.0;
                let d = loss(&xs, &wp) - loss(&xs, &ws);
                assert!(
                    (d - f64::from(dw[idx])).abs() < 1e-2 * d.abs().max(1.0),
                    "dw[{idx}] {d} vs {}",
                    dw[idx]
                );
            }
        }
    }

    /// One in-place test case: input `[n, h, w, c]`, weight `[o, c, kh, kw]`, stride, pad.
    type Case = ([usize; 4], [usize; 4], usize, usize);

    /// In-place cases with even channel counts (which bf16 reads in place): rows across
    /// images and past tiles of 12, output channels past a panel of 32, strides 1 to 3, 1x1
    /// to 5x5 kernels, runs longer than a cache block of 128 pairs, many images per block
    /// with a partial last one (on two threads), and empty images (all padding).
    const EVEN: [Case; 7] = [
        ([2, 9, 7, 4], [40, 4, 3, 3], 1, 1),
        ([3, 8, 8, 6], [33, 6, 3, 3], 2, 1),
        ([2, 6, 5, 8], [5, 8, 1, 1], 2, 0),
        ([2, 10, 9, 2], [7, 2, 5, 5], 3, 2),
        ([1, 6, 7, 96], [64, 96, 3, 3], 1, 1),
        ([201, 4, 4, 2], [5, 2, 3, 3], 1, 1),
        ([2, 0, 3, 2], [4, 2, 3, 3], 1, 2),
    ];

    /// Runs `check` on every case on a pool of two threads, so that blocks of images run
    /// side by side whatever the machine's core count.
    fn on_two_threads(cases: &[Case], check: impl Fn(Case) + Send + Sync) {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build();
        pool.expect("a pool of two threads")
            .install(|| cases.iter().for_each(|&case| check(case)));
    }

    #[test]
    fn f32_fields_read_in_place_equal_im2col_and_gemm() {
        if !crate::kernels::gathered::supported() {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        // The even cases, and odd channel counts with a 7x7 kernel.
        let odd = [
            ([2, 9, 7, 3], [40, 3, 3, 3], 1, 1),
            ([3, 8, 8, 5], [33, 5, 3, 3], 2, 1),
            ([2, 11, 10, 3], [4, 3, 7, 7], 2, 3),
        ];
        on_two_threads(&[&EVEN[..], &odd].concat(), |(x, wt, stride, pad)| {
            let g = ConvGeom::new(x, wt, stride, pad);
            let (xs, w) = (data(x.iter().product(), 7), data(wt.iter().product(), 8));
            let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
            let (w, wabs) = (weight_kxo(&g, &w), weight_kxo(&g, &abs(&w)));
            let got = forward_gathered(&g, &xs, &w);
            let want = forward_lowered(&g, &xs, &w);
            // Two f32 sums of the same k products in different orders differ by at most
            // about k u Σ|x||w| (u = 2⁻²⁴).
            let bound = forward_lowered(&g, &abs(&xs), &wabs);
            let k = g.k() as f32;
            assert_eq!(got.len(), want.len());
            for (i, ((a, b), m)) in got.iter().zip(&want).zip(&bound).enumerate() {
                let tol = k * m / 16_777_216.0 + 1e-6;
                assert!(
                    (a - b).abs() <= tol,
                    "{x:?} {wt:?} [{i}]: {a} vs {b} (bound {tol})"
                );
            }
        });
    }

    #[test]
    fn bf16_fields_read_in_place_equal_packed_rows_bit_for_bit() {
        use crate::kernels::bf16;
        if !bf16::supported() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
            return;
        }
        on_two_threads(&EVEN, |(x, wt, stride, pad)| {
            let g = ConvGeom {
                bf16: true,
                ..ConvGeom::new(x, wt, stride, pad)
            };
            let (xs, w) = (data(x.iter().product(), 5), data(wt.iter().product(), 6));
            let w = weight_kxo(&g, &w);
            let y = forward(&g, &xs, &w);
            // The same product with every receptive field copied into packed rows.
            let xp = kept_bf16(&g, &xs);
            let xp = bf16::halves_of(&xp);
            let row = |q: usize, r: &mut [u16]| lower_padded(&g, xp, 0, q, r);
            let m = g.n * g.spatial();
            let mut want = vec![f32::NAN; m * g.o];
            let b = bf16::Packed::new(&Mat::rows(&w, g.k(), g.o));
            // SAFETY: AVX512-BF16 is present; `want` holds `m x o`.
            unsafe { bf16::product_rows(want.as_mut_ptr(), g.o, m, g.k(), &row, &b, false) };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&y), bits(&want), "{x:?} {wt:?} s{stride} p{pad}");
        });
    }

    #[test]
    fn bf16_products_stay_within_their_rounding_bound() {
        if !crate::kernels::bf16::supported() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
            return;
        }
        // Rounding an operand to bf16 (8 significant bits, to nearest) moves it by at most
        // u = 2⁻⁸ of itself, so a product by at most (2u + u²)|xw| < 1.01 · 2⁻⁷ |xw|, and a
        // sum of products by at most that times Σ|x||w|, which is the same convolution of
        // |x| and |w|; f32 summation adds 1e-5.
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
        let within = |got: &[f32], want: &[f32], bound: &[f32], what: &str| {
            for (i, ((a, b), c)) in got.iter().zip(want).zip(bound).enumerate() {
                let tol = 1.01 * c / 128.0 + 1e-5;
                assert!(
                    (a - b).abs() <= tol,
                    "{what}[{i}]: {a} vs {b} (bound {tol})"
                );
            }
        };
        for (x, wt, stride, pad) in [
            ([3, 7, 6, 2], [4, 2, 3, 3], 1, 1),
            // Strided: odd and even sizes, a 1x1 shortcut, a 7x7 stem, stride 3.
            ([4, 9, 9, 33], [40, 33, 3, 3], 2, 1),
            ([3, 8, 6, 5], [7, 5, 3, 3], 2, 1),
            ([3, 8, 7, 6], [9, 6, 1, 1], 2, 0),
            ([2, 11, 10, 3], [4, 3, 7, 7], 2, 3),
            ([2, 10, 8, 4], [5, 4, 3, 3], 3, 0),
        ] {
            let g = ConvGeom::new(x, wt, stride, pad);
            let gb = ConvGeom { bf16: true, ..g };
            let (xs, ws) = (data(x.iter().product(), 1), data(wt.iter().product(), 2));
            let (w32, wabs) = (weight_kxo(&g, &ws), weight_kxo(&g, &abs(&ws)));
            let y = forward(&g, &xs, &w32);
            within(
                &forward(&gb, &xs, &w32),
                &y,
                &forward(&g, &abs(&xs), &wabs),
                "y",
            );
            let r = data(y.len(), 3);
            let (dx, dw) = backward(&g, &xs, &w32, &r, true);
            let (dxb, dwb) = backward(&gb, &xs, &w32, &r, true);
            // The rounded input the forward pass keeps gives the very same gradients.
            let (yk, kept) = forward_keeping(&gb, &xs, &w32);
            let kept = kept.expect("bf16 keeps its rounded input");
            assert_eq!(yk, forward(&gb, &xs, &w32));
            let (dxk, dwk) = backward_from(&gb, Input::Bf16(&kept), &w32, &r, true);
            assert_eq!((&dxk, &dwk), (&dxb, &dwb));
            let (dxa, dwa) = backward(&g, &abs(&xs), &wabs, &abs(&r), true);
            within(
                &dxb.unwrap(),
                &dx.unwrap(),
                &dxa.unwrap(),
                &format!("dx of {x:?} {wt:?} s{stride} p{pad}"),
            );
            within(
                &dwb,
                &dw,
                &dwa,
                &format!("dw of {x:?} {wt:?} s{stride} p{pad}"),
            );
        }
    }
}
