//! Fully connected layers, `y = relu?(x W + b)`: one GEMM each way, bias and ReLU in one
//! pass, ReLU's gate applied to the gradient before the two backward GEMMs.

use rayon::prelude::*;

use super::gemm::{product_at, Mat};

/// Rows per parallel task of the element-wise passes: about two tasks per thread.
fn rows_per_task(rows: usize) -> usize {
    rows.div_ceil(2 * rayon::current_num_threads()).max(32)
}

simd! {
/// Adds `bias` (when not empty) to every row of `y`, then applies ReLU when `relu`.
fn bias_relu(y: &mut [f32], n: usize, bias: &[f32], relu: bool) {
    for row in y.chunks_exact_mut(n) {
        if !bias.is_empty() {
            row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
        }
        if relu {
            row.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
}
}

simd! {
fn add_rows(acc: &mut [f32], block: &[f32]) {
    for row in block.chunks_exact(acc.len()) {
        acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
    }
}
}

/// `x` `[m, k]` times `w` `[k, n]`, plus `bias` (`[n]`, or empty for none), then ReLU; the
/// product in bf16 with f32 accumulation when `bf16`.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    m: usize,
    k: usize,
    n: usize,
    relu: bool,
    bf16: bool,
) -> Vec<f32> {
    assert_eq!(x.len(), m * k, "linear: input length");
    assert_eq!(w.len(), k * n, "linear: weight length");
    assert!(bias.is_empty() || bias.len() == n, "linear: bias length");
    let mut y = product_at(Mat::rows(x, m, k), Mat::rows(w, k, n), bf16);
    if !bias.is_empty() || relu {
        y.par_chunks_mut(rows_per_task(m) * n)
            .for_each(|yb| bias_relu(yb, n, bias, relu));
    }
    y
}

/// Gradients of [`forward`] given `dy`: `dx` when `need_dx`, `dw`, and `db` (empty without
/// bias). `y` is the forward output, whose sign gates `dy` when `relu`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    w: &[f32],
    y: &[f32],
    dy: &[f32],
    m: usize,
    k: usize,
    n: usize,
    relu: bool,
    bias: bool,
    need_dx: bool,
    bf16: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let gated;
    let g: &[f32] = if relu {
        gated = super::relu_gate(y, dy);
        &gated
    } else {
        dy
    };
    let dw = product_at(Mat::rows(x, m, k).t(), Mat::rows(g, m, n), bf16);
    let db = if bias {
        let per = rows_per_task(m);
        // partial sums collected in order, so that the total does not depend on scheduling
        let parts: Vec<Vec<f32>> = g
            .par_chunks(per * n)
            .map(|b| {
                let mut acc = vec![0f32; n];
                add_rows(&mut acc, b);
                acc
            })
            .collect();
        let mut db = vec![0f32; n];
        for p in parts {
            db.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        }
        db
    } else {
        Vec::new()
    };
    let dx = need_dx.then(|| product_at(Mat::rows(g, m, n), Mat::rows(w, k, n).t(), bf16));
    (dx, dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input `[m, k]`, weight `[k, n]` and output weights `[m, n]` of fixed pseudo-random
    /// values.
    fn operands(m: usize, k: usize, n: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let x = (0..m * k).map(|i| ((i * 31 % 17) as f32 - 8.0) / 9.0);
        let w = (0..k * n).map(|i| ((i * 7 % 11) as f32 - 5.0) / 6.0);
        let r = (0..m * n).map(|i| ((i * 13 % 19) as f32 - 9.0) / 4.0);
        (x.collect(), w.collect(), r.collect())
    }

    #[test]
    fn forward_and_backward_match_the_definition() {
        let (m, k, n) = (70, 5, 3);
        let (x, w, r) = operands(m, k, n);
        let b = [0.1, -0.2, 0.3];
        for relu in [false, true] {
            let y = forward(&x, &w, &b, m, k, n, relu, false);
            for i in 0..m {
                for j in 0..n {
                    let v = b[j] + (0..k).map(|t| x[i * k + t] * w[t * n + j]).sum::<f32>();
                    let v = if relu { v.max(0.0) } else { v };
                    assert!((y[i * n + j] - v).abs() < 1e-5);
                }
            }
            let (dx, dw, db) = backward(&x, &w, &y, &r, m, k, n, relu, true, true, false);
            let dx = dx.unwrap();
            let loss = |x: &[f32], w: &[f32], b: &[f32]| -> f64 {
                forward(x, w, b, m, k, n, relu, false)
                    .iter()
                    .zip(&r)
                    .map(|(a, c)| f64::from(a * c))
                    .sum()
            };
            let h = 1e-3;
            for i in [0, 17, m * k - 1] {
                let (mut p, mut q) = (x.clone(), x.clone());
                p[i] += h;
                q[i] -= h;
                let fd = (loss(&p, &w, &b) - loss(&q, &w, &b)) / (2.0 * f64::from(h));
                assert!(
                    (fd - f64::from(dx[i])).abs() < 1e-2,
                    "dx[{i}] {fd} vs {}",
                    dx[i]
                );
            }
            for i in 0..k * n {
                let (mut p, mut q) = (w.clone(), w.clone());
                p[i] += h;
                q[i] -= h;
                let fd = (loss(&x, &p, &b) - loss(&x, &q, &b)) / (2.0 * f64::from(h));
                assert!(
                    (fd - f64::from(dw[i])).abs() < 1e-2,
                    "dw[{i}] {fd} vs {}",
                    dw[i]
                );
            }
            for j in 0..n {
                let (mut p, mut q) = (b, b);
                p[j] += h;
                q[j] -= h;
                let fd = (loss(&x, &w, &p) - loss(&x, &w, &q)) / (2.0 * f64::from(h));
                assert!(
                    (fd - f64::from(db[j])).abs() < 1e-2,
                    "db[{j}] {fd} vs {}",
                    db[j]
                );
            }
        }
    }

    #[test]
    fn bf16_products_stay_within_their_rounding_bound() {
        if !crate::kernels::bf16::supported() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
            return;
        }
        // As for the convolution: within 1.01 · 2⁻⁷ Σ|x||w| of f32, plus f32 summation.
        let (m, k, n) = (50, 70, 40);
        let (x, w, r) = operands(m, k, n);
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
        let y = forward(&x, &w, &[], m, k, n, false, false);
        let yb = forward(&x, &w, &[], m, k, n, false, true);
        let ya = forward(&abs(&x), &abs(&w), &[], m, k, n, false, false);
        let (dx, dw, _) = backward(&x, &w, &y, &r, m, k, n, false, false, true, false);
        let (dxb, dwb, _) = backward(&x, &w, &y, &r, m, k, n, false, false, true, true);
        let (dxa, dwa, _) = backward(
            &abs(&x),
            &abs(&w),
            &ya,
            &abs(&r),
            m,
            k,
            n,
            false,
            false,
            true,
            false,
        );
        for (got, want, bound) in [
            (&yb, &y, &ya),
            (&dxb.unwrap(), &dx.unwrap(), &dxa.unwrap()),
            (&dwb, &dw, &dwa),
        ] {
            for ((a, b), c) in got.iter().zip(want).zip(bound) {
                assert!(
                    (a - b).abs() <= 1.01 * c / 128.0 + 1e-5,
                    "{a} vs {b} (bound {c})"
                );
            }
        }
    }
}
