//! Times the fast kernels layer by layer on R1's shapes (batch 512 = two views of 256),
//! the ResNet step's 3x3 convolutions in f32 and bf16, and
//! GEMM alone on the shapes they produce.
//!
//! usage: kernel_bench [repeats=5]; prints median milliseconds.

use std::time::Instant;

use contrastive::kernels::gemm::{matmul, Mat};
use contrastive::kernels::{conv, norm};

fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn data(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect()
}

/// A 3x3, padding-1 layer of `n` images `side` pixels square: its geometry, input and
/// weight (`[cout, cin, 3, 3]`).
fn layer(
    n: usize,
    (cin, cout, side, stride): (usize, usize, usize, usize),
) -> (conv::ConvGeom, Vec<f32>, Vec<f32>) {
    let g = conv::ConvGeom::new([n, side, side, cin], [cout, cin, 3, 3], stride, 1);
    (g, data(n * cin * side * side), data(cout * cin * 9))
}

/// Multiply-adds of one forward pass, as GFLOP.
fn gflop(g: &conv::ConvGeom) -> f64 {
    2.0 * (g.n * g.o * g.spatial() * g.k()) as f64 / 1e9
}

fn main() {
    contrastive::backend::keep_freed_memory();
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let n = 512;
    let mut total = 0.0;
    for (cin, cout, side, stride) in [
        (1, 32, 28, 1),
        (32, 64, 28, 2),
        (64, 128, 14, 2),
        (128, 256, 7, 2),
    ] {
        let (g, x, w) = layer(n, (cin, cout, side, stride));
        let wt = conv::weight_kxo(&g, &w);
        let y = conv::forward(&g, &x, &wt);
        let fwd = median_ms(reps, || {
            drop(conv::forward(&g, &x, &conv::weight_kxo(&g, &w)))
        });
        let bwd = median_ms(reps, || drop(conv::backward(&g, &x, &wt, &y, cin > 1)));
        let (mean, var) = norm::stats(&y, cout);
        let (gamma, beta) = (vec![1.0; cout], vec![0.0; cout]);
        let z = norm::forward(&y, cout, &gamma, &beta, &mean, &var, 1e-5, true);
        let bn_f = median_ms(reps, || {
            let (m, v) = norm::stats(&y, cout);
            drop(norm::forward(&y, cout, &gamma, &beta, &m, &v, 1e-5, true))
        });
        let bn_b = median_ms(reps, || {
            drop(norm::backward(
                &y, &z, &y, cout, &gamma, &mean, &var, 1e-5, true,
            ))
        });
        let gflop = gflop(&g);
        println!(
            "conv {cin:>3}->{cout:<3} {side:>2}x{side:<2} s{stride}: fwd {fwd:6.1} ms ({:5.1} GFLOP/s)  bwd {bwd:6.1} ms   bn+relu fwd {bn_f:5.1} ms  bwd {bn_b:5.1} ms",
            gflop / fwd * 1e3
        );
        total += fwd + bwd + bn_f + bn_b;
    }
    println!("total {total:.1} ms");
    arithmetic(reps);
    lowering();
    for (m, k, nn) in [
        (2048, 288, 64),
        (2048, 576, 128),
        (2048, 1152, 256),
        (2048, 9, 32),
    ] {
        let (a, b) = (data(m * k), data(k * nn));
        let mut c = vec![0.0; m * nn];
        let ms = median_ms(reps, || {
            matmul(&mut c, nn, Mat::rows(&a, m, k), Mat::rows(&b, k, nn), false)
        });
        println!(
            "gemm {m}x{k} * {k}x{nn}: {ms:.2} ms, {:.1} GFLOP/s (one thread)",
            2.0 * (m * k * nn) as f64 / ms / 1e6
        );
    }
}

/// The ResNet step's 3x3 convolutions (one view of 128 images, 32x32 input) in f32
/// (im2col and the `gemm` crate) and bf16 (direct): forward and backward milliseconds,
/// forward GFLOP/s.
fn arithmetic(reps: usize) {
    let n = 128;
    for (cin, cout, side, stride) in [
        (32, 32, 32, 1),
        (32, 64, 32, 2),
        (64, 64, 16, 1),
        (128, 128, 8, 1),
        (256, 256, 4, 1),
    ] {
        let (g, x, w) = layer(n, (cin, cout, side, stride));
        let (wt, gflop) = (conv::weight_kxo(&g, &w), gflop(&g));
        let mut line = format!("conv {cin:>3}->{cout:<3} {side:>2}x{side:<2} s{stride}:");
        for (name, bf16) in [("f32", false), ("bf16", true)] {
            if bf16 && !contrastive::kernels::bf16::supported() {
                continue;
            }
            let g = conv::ConvGeom { bf16, ..g };
            let y = conv::forward(&g, &x, &wt);
            let fwd = median_ms(reps, || drop(conv::forward(&g, &x, &wt)));
            let bwd = median_ms(reps, || drop(conv::backward(&g, &x, &wt, &y, true)));
            line += &format!(
                "  {name} {fwd:5.1}+{bwd:5.1} ms ({:3.0} GFLOP/s fwd)",
                gflop / fwd * 1e3
            );
        }
        println!("{line}");
    }
}

/// Lowering alone on one thread, for a block of 10 images of each layer.
fn lowering() {
    for (cin, side, stride) in [(32, 28, 2), (64, 14, 2), (128, 7, 2), (1, 28, 1)] {
        let g = conv::ConvGeom::new([10, side, side, cin], [8, cin, 3, 3], stride, 1);
        let x = data(10 * cin * side * side);
        let mut col = vec![0.0; g.k() * 10 * g.spatial()];
        let a = median_ms(9, || conv::im2col(&g, &x, 0, 10, &mut col));
        let mut dx = vec![0.0; x.len()];
        let b = median_ms(9, || conv::col2im(&g, &col, 10, &mut dx));
        println!("lowering {cin}ch {side}x{side} s{stride}: im2col {a:.3} ms ({:.1} GB/s written), col2im {b:.3} ms", (col.len() * 4) as f64 / a / 1e6);
    }
}
