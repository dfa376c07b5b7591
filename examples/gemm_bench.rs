//! The GEMM rate of this machine as the kernels reach it: a square product in f32 (the
//! `gemm` crate) and in bf16 with f32 accumulation (`kernels::bf16`, where the CPU has
//! AVX512-BF16), on all of rayon's threads. The Rust side of `benches/gemm_rate.py`.
//!
//! usage: gemm_bench [size=2048] [repeats=5]; prints the median GFLOP/s of each.

use std::time::Instant;

use contrastive::kernels::bf16;
use contrastive::kernels::gemm::{product_at, Mat};

fn main() {
    contrastive::backend::keep_freed_memory();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|s| s.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(2048);
    let reps = args.get(1).copied().unwrap_or(5).max(1);
    let a: Vec<f32> = (0..n * n)
        .map(|i| ((i * 7919 % 1000) as f32) / 500.0 - 1.0)
        .collect();
    let b: Vec<f32> = (0..n * n)
        .map(|i| ((i * 104729 % 1000) as f32) / 500.0 - 1.0)
        .collect();
    let flop = 2.0 * (n as f64).powi(3);
    let mut line = format!("RESULT size={n} threads={}", rayon::current_num_threads());
    for precision in ["f32", "bf16"] {
        let half = precision == "bf16";
        if half && !bf16::supported() {
            line += " bf16_gflops=unsupported";
            continue;
        }
        let mut t: Vec<f64> = (0..reps + 1)
            .map(|_| {
                let t0 = Instant::now();
                std::hint::black_box(product_at(Mat::rows(&a, n, n), Mat::rows(&b, n, n), half));
                t0.elapsed().as_secs_f64()
            })
            .skip(1)
            .collect();
        t.sort_by(f64::total_cmp);
        line += &format!(" {precision}_gflops={:.1}", flop / t[reps / 2] / 1e9);
    }
    println!("{line}");
}
