//! Batch normalisation with batch statistics on channels-last data `[m, c]`, optionally
//! followed by ReLU: two passes forward, two backward.
//!
//! burn's generic `batch_norm_train` builds the statistics from transposes, reshapes and
//! reductions (each a full copy of the activations), and ReLU is another pass with its
//! own mask. With channels last, every pass here streams rows and updates `c`-wide
//! vectors of per-channel sums, which the compiler vectorises.

use rayon::prelude::*;

/// Rows per parallel task.
const ROWS: usize = 256;

/// Per-channel sums of `f(row, channel, value)` over rows, f32 within a task of [`ROWS`]
/// rows and f64 across tasks.
fn column_sums(x: &[f32], c: usize, f: impl Fn(usize, f32) -> f32 + Sync) -> Vec<f64> {
    x.par_chunks(ROWS * c)
        .map(|block| {
            let mut acc = vec![0f32; c];
            for row in block.chunks_exact(c) {
                for (ch, (a, &v)) in acc.iter_mut().zip(row).enumerate() {
                    *a += f(ch, v);
                }
            }
            acc.into_iter().map(f64::from).collect::<Vec<f64>>()
        })
        .reduce(
            || vec![0f64; c],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        )
}

/// Per-channel mean and biased variance of `x` (`[m, c]`), the variance taken about the
/// mean (two passes, no cancellation).
pub fn stats(x: &[f32], c: usize) -> (Vec<f32>, Vec<f32>) {
    let m = (x.len() / c) as f64;
    let mean: Vec<f32> = column_sums(x, c, |_, v| v)
        .iter()
        .map(|s| (s / m) as f32)
        .collect();
    let var = column_sums(x, c, |ch, v| (v - mean[ch]) * (v - mean[ch]));
    (mean, var.iter().map(|s| (s / m) as f32).collect())
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
    let mut y = vec![0.0; x.len()];
    y.par_chunks_mut(ROWS * c)
        .zip(x.par_chunks(ROWS * c))
        .for_each(|(y, x)| {
            for (yr, xr) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
                for (((y, &x), &a), &b) in yr.iter_mut().zip(xr).zip(&scale).zip(&shift) {
                    let v = a * x + b;
                    *y = if relu { v.max(0.0) } else { v };
                }
            }
        });
    y
}

/// Gradients of [`forward`] with the statistics treated as functions of `x` (training
/// mode): with `g = dy * [y > 0]` (or `dy`), `xh = (x - mean) / sqrt(var + eps)` and `m`
/// rows,
///
/// `dbeta = sum g`, `dgamma = sum g xh`,
/// `dx = gamma / sqrt(var + eps) * (g - dbeta / m - xh * dgamma / m)`.
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
    let gate = |yv: f32, d: f32| if relu && yv <= 0.0 { 0.0 } else { d };
    // Sums of g and g * (x - mean), per channel, in one pass over the three inputs.
    let sums = x
        .par_chunks(ROWS * c)
        .zip(y.par_chunks(ROWS * c))
        .zip(dy.par_chunks(ROWS * c))
        .map(|((x, y), dy)| {
            let (mut sg, mut sgx) = (vec![0f32; c], vec![0f32; c]);
            for ((xr, yr), dr) in x
                .chunks_exact(c)
                .zip(y.chunks_exact(c))
                .zip(dy.chunks_exact(c))
            {
                for ch in 0..c {
                    let gv = gate(yr[ch], dr[ch]);
                    sg[ch] += gv;
                    sgx[ch] += gv * (xr[ch] - mean[ch]);
                }
            }
            sg.into_iter()
                .chain(sgx)
                .map(f64::from)
                .collect::<Vec<f64>>()
        })
        .reduce(
            || vec![0f64; 2 * c],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            },
        );
    let dbeta: Vec<f32> = sums[..c].iter().map(|&v| v as f32).collect();
    let dgamma: Vec<f32> = sums[c..]
        .iter()
        .zip(&inv)
        .map(|(&v, &i)| (v * f64::from(i)) as f32)
        .collect();
    let m = (x.len() / c) as f32;
    // dx = k g - k dbeta/m - k inv dgamma/m (x - mean) = k g + a x + b
    let (mut k, mut a, mut b) = (vec![0.0; c], vec![0.0; c], vec![0.0; c]);
    for ch in 0..c {
        k[ch] = gamma[ch] * inv[ch];
        a[ch] = -k[ch] * inv[ch] * dgamma[ch] / m;
        b[ch] = -k[ch] * dbeta[ch] / m - a[ch] * mean[ch];
    }
    let mut dx = vec![0.0; x.len()];
    dx.par_chunks_mut(ROWS * c)
        .zip(x.par_chunks(ROWS * c))
        .zip(y.par_chunks(ROWS * c))
        .zip(dy.par_chunks(ROWS * c))
        .for_each(|(((dx, x), y), dy)| {
            for (((dr, xr), yr), gr) in dx
                .chunks_exact_mut(c)
                .zip(x.chunks_exact(c))
                .zip(y.chunks_exact(c))
                .zip(dy.chunks_exact(c))
            {
                for ch in 0..c {
                    dr[ch] = k[ch] * gate(yr[ch], gr[ch]) + a[ch] * xr[ch] + b[ch];
                }
            }
        });
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
