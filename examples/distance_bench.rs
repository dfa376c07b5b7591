//! What the exact distances cost: `score::sq_distances` (product form, then the cancelled
//! entries recomputed from differences) against the bare product form
//! `|q|^2 + |k|^2 - 2 q.k`, forward and backward, on 2N unit rows of dimension 128 that are
//! spread (no entry recomputed) and collapsed (every entry recomputed, as in a
//! batch-hard run that has collapsed).
//!
//! usage: distance_bench [n=256] [rounds=7]; prints the median milliseconds of
//! interleaved rounds and the ratio.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use contrastive::score::{l2_normalise, sq_distances};

fn product_form(q: Tensor<2>, k: Tensor<2>) -> Tensor<2> {
    let qq = q.clone().powi_scalar(2).sum_dim(1);
    let kk = k.clone().powi_scalar(2).sum_dim(1).transpose();
    (qq + kk - q.matmul(k.transpose()).mul_scalar(2.0)).clamp_min(0.0)
}

fn time(f: impl Fn() -> Tensor<2>, z: &Tensor<2>) -> f64 {
    let t0 = Instant::now();
    let d = f();
    let g = d.sum().backward();
    let _ = z.grad(&g).map(|g| g.into_data());
    t0.elapsed().as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(256);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(7);
    let device = Device::flex().autodiff();
    device.seed(0);
    let spread = Tensor::<2>::random([2 * n, 128], Distribution::Normal(0.0, 1.0), &device);
    let base = Tensor::<2>::random([1, 128], Distribution::Normal(0.0, 1.0), &device);
    let noise = Tensor::<2>::random([2 * n, 128], Distribution::Normal(0.0, 1e-3), &device);
    let collapsed = base.repeat_dim(0, 2 * n) + noise;
    for (name, rows) in [("spread", spread), ("collapsed", collapsed)] {
        let z = l2_normalise(rows).detach().require_grad();
        let (mut exact, mut plain) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            exact.push(time(|| sq_distances(z.clone(), z.clone()), &z));
            plain.push(time(|| product_form(z.clone(), z.clone()), &z));
        }
        let (e, p) = (median(exact), median(plain));
        println!(
            "{name}: {} x {} rows, exact {e:.2} ms, product form {p:.2} ms, ratio {:.2}",
            2 * n,
            2 * n,
            e / p
        );
    }
}
