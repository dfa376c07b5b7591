//! The input gradient of a strided bf16 convolution, phase by phase, without a lowered
//! gradient to scatter back (`col2im`).
//!
//! With stride `s`, input row `iy` is reached only by the kernel rows `i` with
//! `i ≡ iy + pad (mod s)`, from output row `oy = (iy + pad - i) / s`; the same holds for
//! columns. So the inputs fall into `s²` phases by `((iy + pad) % s, (ix + pad) % s)`, and
//! within a phase `dx` is a plain product: each input position's row holds `dy` at the
//! output positions its phase's taps reach (zeros outside the map), times the weight
//! restricted to those taps, `[taps * o, c]`. The rows are packed straight from the
//! rounded `dy` into the product ([`super::bf16::product_rows`]), and each phase's result
//! is copied to its positions of `dx`: one write per value, where `col2im` added `kh * kw`
//! lowered values into each.

use super::bf16::{product_rows, rounded, Packed};
use super::conv::ConvGeom;
use super::mat::Mat;

/// The taps of one phase along one axis: for the inputs `t` of the phase (`first + s * t`),
/// the kernel offsets `i` that reach them, each with the output it reads from,
/// `(t * s + first + pad - i) / s`, written here as `t + shift` (`shift` may be negative).
struct Axis {
    /// Inputs of this phase: `first, first + s, …` below the map's size.
    inputs: Vec<usize>,
    /// Per tap: the kernel offset and the output index minus `t`.
    taps: Vec<(usize, isize)>,
}

impl Axis {
    /// The phase `r` (`(input + pad) % s == r`) of an axis of `size` inputs and `k` kernel
    /// taps.
    fn new(r: usize, size: usize, k: usize, s: usize, pad: usize) -> Self {
        // Smallest input with (input + pad) % s == r.
        let first = (r + s - pad % s) % s;
        let inputs: Vec<usize> = (first..size).step_by(s).collect();
        let taps = (r..k)
            .step_by(s)
            .map(|i| {
                // (first + pad - i) is divisible by s: first + pad ≡ r ≡ i (mod s).
                let shift = (first as isize + pad as isize - i as isize).div_euclid(s as isize);
                (i, shift)
            })
            .collect();
        Self { inputs, taps }
    }

    /// The output under tap `shift` for input `t` of the phase, if inside `0..out`.
    fn output(shift: isize, t: usize, out: usize) -> Option<usize> {
        usize::try_from(t as isize + shift)
            .ok()
            .filter(|&o| o < out)
    }
}

/// `dx` (NHWC) of the convolution `g` (stride > 1, bf16) given `dy` and its weight as
/// [`super::conv::weight_kxo`] lays it out (`wt`, `[k, o]`).
pub(super) fn input_gradient(g: &ConvGeom, dy: &[f32], wt: &[f32]) -> Vec<f32> {
    let (s, img, o, c) = (g.stride, g.h * g.w * g.c, g.o, g.c);
    let dyr = rounded(dy);
    let phases: Vec<(Axis, Axis)> = (0..s)
        .flat_map(|ry| (0..s).map(move |rx| (ry, rx)))
        .map(|(ry, rx)| {
            (
                Axis::new(ry, g.h, g.kh, s, g.pad),
                Axis::new(rx, g.w, g.kw, s, g.pad),
            )
        })
        .filter(|(ay, ax)| !ay.inputs.is_empty() && !ax.inputs.is_empty())
        .collect();
    // Each phase's weight, `[taps * o, c]`: row `((a, b), oo)` is `w[oo, :, i_a, j_b]`.
    let weights: Vec<Option<Packed>> = phases
        .iter()
        .map(|(ay, ax)| {
            let rows = ay.taps.len() * ax.taps.len() * o;
            (rows > 0).then(|| {
                let mut w = Vec::with_capacity(rows * c);
                for &(i, _) in &ay.taps {
                    for &(j, _) in &ax.taps {
                        for oo in 0..o {
                            let tap = (i * g.kw + j) * c;
                            w.extend((0..c).map(|cc| wt[(tap + cc) * o + oo]));
                        }
                    }
                }
                Packed::new(&Mat::rows(&w, rows, c))
            })
        })
        .collect();
    // Blocks of whole images, each written by one task: every phase's product into a
    // scratch matrix, then its rows copied to their positions.
    let per = g.n.div_ceil(2 * rayon::current_num_threads()).max(1);
    // SAFETY: each block's task writes every position of its images: the phases cover
    // all of them, a phase without taps with zeros.
    unsafe {
        super::filled(g.n * img, per * img, |bi, out| {
            let (n0, nb) = (bi * per, out.len() / img);
            for ((ay, ax), w) in phases.iter().zip(&weights) {
                let (ny, nx) = (ay.inputs.len(), ax.inputs.len());
                let m = nb * ny * nx;
                let mut res = vec![0.0f32; m * c];
                if let Some(w) = w {
                    let k = w.rows();
                    let row = |q: usize, r: &mut [u16]| {
                        let (b, ty, tx) = (q / (ny * nx), q / nx % ny, q % nx);
                        let plane = &dyr[(n0 + b) * g.oh * g.ow * o..][..g.oh * g.ow * o];
                        let mut parts = r.chunks_exact_mut(o);
                        for &(_, sy) in &ay.taps {
                            for &(_, sx) in &ax.taps {
                                let part = parts.next().expect("a row holds every tap");
                                match (Axis::output(sy, ty, g.oh), Axis::output(sx, tx, g.ow)) {
                                    (Some(oy), Some(ox)) => {
                                        part.copy_from_slice(&plane[(oy * g.ow + ox) * o..][..o])
                                    }
                                    _ => part.fill(0),
                                }
                            }
                        }
                    };
                    // SAFETY: bf16 is supported (a packed weight exists); `res` holds
                    // `m x c`.
                    product_rows(res.as_mut_ptr(), c, m, k, &row, w, false);
                }
                for (q, v) in res.chunks_exact(c).enumerate() {
                    let (b, ty, tx) = (q / (ny * nx), q / nx % ny, q % nx);
                    let (iy, ix) = (ay.inputs[ty], ax.inputs[tx]);
                    let dst = &mut out[b * img + (iy * g.w + ix) * c..][..c];
                    for (d, &x) in dst.iter_mut().zip(v) {
                        d.write(x);
                    }
                }
            }
        })
    }
}
