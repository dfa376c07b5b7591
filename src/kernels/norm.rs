//! Batch normalisation with batch statistics on channels-last data `[m, c]`, optionally
//! followed by ReLU: two passes forward, two backward.
//!
//! burn's generic `batch_norm_train` builds the statistics from transposes, reshapes and
//! reductions (each a full copy of the activations), and ReLU is another pass with its
//! own mask. With channels last, every pass here streams rows and updates `c`-wide
//! vectors of per-channel sums, which the compiler vectorises.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

/// Rows per parallel task.
const ROWS: usize = 256;

/// Whether training-mode statistics and their gradient sums are taken over every rank's
/// rows (synchronised batch norm, `train.sync_bn`), not this rank's alone.
static SYNC: AtomicBool = AtomicBool::new(false);

/// Turns synchronised batch norm on or off for the steps that follow. Every rank must
/// run the same batch norms while it is on: each one is a collective.
pub fn set_sync(on: bool) {
    SYNC.store(on, Ordering::SeqCst);
}

/// `sums` (with the row count `m` last) over every rank when batch norm is synchronised.
fn synced(mut sums: Vec<f64>) -> Vec<f64> {
    if SYNC.load(Ordering::SeqCst) {
        crate::dist::world().all_reduce_sum_f64(&mut sums);
    }
    sums
}

// Leaf loops over a block of `[rows, c]` values, each compiled per instruction set by
// `simd!`.

simd! {
fn add_rows(acc: &mut [f32], block: &[f32]) {
    for row in block.chunks_exact(acc.len()) {
        acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
    }
}
}

simd! {
fn add_sq_rows(acc: &mut [f32], block: &[f32], mean: &[f32]) {
    for row in block.chunks_exact(acc.len()) {
        for ((a, &v), &m) in acc.iter_mut().zip(row).zip(mean) {
            *a += (v - m) * (v - m);
        }
    }
}
}

simd! {
fn affine_rows(y: &mut [MaybeUninit<f32>], x: &[f32], scale: &[f32], shift: &[f32], relu: bool) {
    let c = scale.len();
    for (yr, xr) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        for (((y, &x), &a), &b) in yr.iter_mut().zip(xr).zip(scale).zip(shift) {
            let v = a * x + b;
            y.write(if relu { v.max(0.0) } else { v });
        }
    }
}
}

simd! {
fn grad_sums(
    sg: &mut [f32],
    sgx: &mut [f32],
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    mean: &[f32],
    relu: bool,
) {
    let c = mean.len();
    for ((xr, yr), dr) in x
        .chunks_exact(c)
        .zip(y.chunks_exact(c))
        .zip(dy.chunks_exact(c))
    {
        let rows = sg
            .iter_mut()
            .zip(sgx.iter_mut())
            .zip(xr)
            .zip(yr)
            .zip(dr)
            .zip(mean);
        for (((((sg, sgx), &xv), &yv), &d), &mu) in rows {
            let g = if relu && yv <= 0.0 { 0.0 } else { d };
            *sg += g;
            *sgx += g * (xv - mu);
        }
    }
}
}

simd! {
#[allow(clippy::too_many_arguments)]
fn grad_rows(
    dx: &mut [MaybeUninit<f32>],
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    k: &[f32],
    a: &[f32],
    b: &[f32],
    relu: bool,
) {
    let c = k.len();
    for (((dr, xr), yr), gr) in dx
        .chunks_exact_mut(c)
        .zip(x.chunks_exact(c))
        .zip(y.chunks_exact(c))
        .zip(dy.chunks_exact(c))
    {
        let row = dr.iter_mut().zip(xr).zip(yr).zip(gr).zip(k).zip(a).zip(b);
        for ((((((d, &xv), &yv), &gv), &kc), &ac), &bc) in row {
            let g = if relu && yv <= 0.0 { 0.0 } else { gv };
            d.write(kc * g + ac * xv + bc);
        }
    }
}
}

/// Sums per-task partial sums into f64 totals, in task order (so that the result does not
/// depend on scheduling and runs reproduce exactly).
fn total(parts: impl IndexedParallelIterator<Item = Vec<f32>>, len: usize) -> Vec<f64> {
    let parts: Vec<Vec<f32>> = parts.collect();
    let mut out = vec![0f64; len];
    for p in parts {
        out.iter_mut().zip(p).for_each(|(a, b)| *a += f64::from(b));
    }
    out
}

/// Per-channel mean and biased variance of `x` (`[m, c]`), the variance taken about the
/// mean (two passes, no cancellation); f32 within a task of [`ROWS`] rows, f64 across.
/// Synchronised ([`set_sync`]), the sums and the row count are those of every rank.
pub fn stats(x: &[f32], c: usize) -> (Vec<f32>, Vec<f32>) {
    let mut sums = total(
        x.par_chunks(ROWS * c).map(|b| {
            let mut acc = vec![0f32; c];
            add_rows(&mut acc, b);
            acc
        }),
        c,
    );
    sums.push((x.len() / c) as f64);
    let sums = synced(sums);
    let m = sums[c];
    let mean: Vec<f32> = sums[..c].iter().map(|s| (s / m) as f32).collect();
    let sq = synced(total(
        x.par_chunks(ROWS * c).map(|b| {
            let mut acc = vec![0f32; c];
            add_sq_rows(&mut acc, b, &mean);
            acc
        }),
        c,
    ));
    (mean, sq.iter().map(|s| (s / m) as f32).collect())
}

/// `y = gamma * (x - mean) / sqrt(var + eps) + beta`, then `max(y, 0)` when `relu`.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    x: &[f32],
    c: usize,
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
    relu: bool,
) -> Vec<f32> {
    let (scale, shift): (Vec<f32>, Vec<f32>) = (0..c)
        .map(|ch| {
            let a = gamma[ch] / (var[ch] + eps).sqrt();
            (a, beta[ch] - a * mean[ch])
        })
        .unzip();
    // SAFETY: `affine_rows` writes every element of its rows (chunks are whole rows).
    unsafe {
        super::filled(x.len(), ROWS * c, |i, y| {
            affine_rows(y, &x[i * ROWS * c..][..y.len()], &scale, &shift, relu)
        })
    }
}

/// Gradients of [`forward`] with the statistics treated as functions of `x` (training
/// mode): with `g = dy * [y > 0]` (or `dy`), `xh = (x - mean) / sqrt(var + eps)` and `m`
/// rows,
///
/// `dbeta = sum g`, `dgamma = sum g xh`,
/// `dx = gamma / sqrt(var + eps) * (g - dbeta / m - xh * dgamma / m)`.
///
/// Synchronised, `dx` takes the sums and `m` over every rank (the statistics were theirs),
/// while `dgamma` and `dbeta` stay this rank's share: the ranks' parameter gradients are
/// summed afterwards like every other parameter's.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    c: usize,
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
    relu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let inv: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let n = ROWS * c;
    let sums = total(
        x.par_chunks(n)
            .zip(y.par_chunks(n))
            .zip(dy.par_chunks(n))
            .map(|((x, y), dy)| {
                let (mut sg, mut sgx) = (vec![0f32; c], vec![0f32; c]);
                grad_sums(&mut sg, &mut sgx, x, y, dy, mean, relu);
                sg.extend(sgx);
                sg
            }),
        2 * c,
    );
    let dgamma_of = |sums: &[f64]| -> Vec<f32> {
        sums[c..2 * c]
            .iter()
            .zip(&inv)
            .map(|(&v, &i)| (v * f64::from(i)) as f32)
            .collect()
    };
    let dbeta: Vec<f32> = sums[..c].iter().map(|&v| v as f32).collect();
    let dgamma = dgamma_of(&sums);
    let mut all = sums;
    all.push((x.len() / c) as f64);
    let all = synced(all);
    let (sum_g, sum_gxh, m) = (&all[..c], dgamma_of(&all), all[2 * c] as f32);
    // dx = k g - k dbeta/m - k inv dgamma/m (x - mean) = k g + a x + b
    let k: Vec<f32> = (0..c).map(|ch| gamma[ch] * inv[ch]).collect();
    let a: Vec<f32> = (0..c)
        .map(|ch| -k[ch] * inv[ch] * sum_gxh[ch] / m)
        .collect();
    let b: Vec<f32> = (0..c)
        .map(|ch| -k[ch] * sum_g[ch] as f32 / m - a[ch] * mean[ch])
        .collect();
    // SAFETY: `grad_rows` writes every element of its rows (chunks are whole rows).
    let dx = unsafe {
        super::filled(x.len(), n, |i, dx| {
            let r = i * n..i * n + dx.len();
            grad_rows(dx, &x[r.clone()], &y[r.clone()], &dy[r], &k, &a, &b, relu)
        })
    };
    (dx, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(x: &[f32], c: usize, gamma: &[f32], beta: &[f32], r: &[f32], relu: bool) -> f64 {
        let (mean, var) = stats(x, c);
        let y = forward(x, c, gamma, beta, &mean, &var, 1e-5, relu);
        y.iter()
            .zip(r)
            .map(|(a, b)| f64::from(*a) * f64::from(*b))
            .sum()
    }

    #[test]
    fn statistics_are_per_channel() {
        let x = [1.0, 10.0, 3.0, 30.0];
        let (mean, var) = stats(&x, 2);
        assert_eq!(mean, vec![2.0, 20.0]);
        assert_eq!(var, vec![1.0, 100.0]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (m, c) = (20, 3);
        let x: Vec<f32> = (0..m * c)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let r: Vec<f32> = (0..m * c)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) / 5.0)
            .collect();
        let gamma = [1.5, 0.7, -0.4];
        let beta = [0.1, 0.3, 0.2];
        for relu in [false, true] {
            let (mean, var) = stats(&x, c);
            let y = forward(&x, c, &gamma, &beta, &mean, &var, 1e-5, relu);
            let (dx, dg, db) = backward(&x, &y, &r, c, &gamma, &mean, &var, 1e-5, relu);
            let h = 1e-3f32;
            let fd = |f: &dyn Fn(f32) -> f64| (f(h) - f(-h)) / (2.0 * f64::from(h));
            for i in [0, 7, 31, 59] {
                let d = fd(&|e| {
                    let mut xp = x.clone();
                    xp[i] += e;
                    loss(&xp, c, &gamma, &beta, &r, relu)
                });
                assert!(
                    (d - f64::from(dx[i])).abs() < 2e-2,
                    "relu={relu} dx[{i}] {d} vs {}",
                    dx[i]
                );
            }
            for ch in 0..c {
                let d = fd(&|e| {
                    let mut g = gamma;
                    g[ch] += e;
                    loss(&x, c, &g, &beta, &r, relu)
                });
                assert!(
                    (d - f64::from(dg[ch])).abs() < 2e-2,
                    "dgamma {d} vs {}",
                    dg[ch]
                );
                let d = fd(&|e| {
                    let mut b = beta;
                    b[ch] += e;
                    loss(&x, c, &gamma, &b, &r, relu)
                });
                assert!(
                    (d - f64::from(db[ch])).abs() < 2e-2,
                    "dbeta {d} vs {}",
                    db[ch]
                );
            }
        }
    }
}
