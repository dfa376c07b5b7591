//! The probabilistic contrastive loss over a score matrix in one pass forward and one
//! backward.
//!
//! Composed from burn operations, the loss is a mask fill, a log-softmax (max, subtract,
//! exp, sum, log, subtract), a weighting and a sum, each a full pass over the `rows x
//! cols` scores with its own backward: for SimCLR's 512x512 (or the step benchmark's
//! 1024x1024) matrices that costs more than the encoder. Here each row's log-sum-exp is
//! computed in cache and the gradient is written once.
//!
//! The positive map arrives packed in one integer array ([`pack`]); each row is expanded
//! into a `code` row in cache: `-1` for keys that are not candidates of the row's query,
//! else the key's weight in the loss (`1 / (|P(i)| rows)` for positives, 0 for negatives).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::gemm::{product, Mat};
use crate::pairs::PositiveMap;

/// The positive map in one integer array, as it crosses into the kernels:
/// `[rows, pos_ptr (rows + 1), positive keys..., exc_ptr (rows + 1), excluded keys...]`,
/// the `ptr` arrays being offsets into the key lists that follow them.
pub fn pack(map: &PositiveMap) -> Vec<i64> {
    let mut out = vec![map.rows as i64];
    for lists in [&map.positives, &map.excluded] {
        let mut at = 0i64;
        out.push(0);
        for l in lists {
            at += l.len() as i64;
            out.push(at);
        }
        for l in lists {
            out.extend(l.iter().map(|&j| i64::from(j)));
        }
    }
    out
}

/// A view of a [`pack`]ed map.
#[derive(Debug, Clone, Copy)]
pub struct Packed<'a> {
    rows: usize,
    pos_ptr: &'a [i64],
    pos: &'a [i64],
    exc_ptr: &'a [i64],
    exc: &'a [i64],
}

impl<'a> Packed<'a> {
    /// Reads a packed map; `None` when the array is not one.
    pub fn parse(data: &'a [i64]) -> Option<Self> {
        let rows = usize::try_from(*data.first()?).ok()?;
        let pos_ptr = data.get(1..rows + 2)?;
        let n_pos = usize::try_from(pos_ptr[rows]).ok()?;
        let pos = data.get(rows + 2..rows + 2 + n_pos)?;
        let rest = &data[rows + 2 + n_pos..];
        let exc_ptr = rest.get(..rows + 1)?;
        let exc = rest.get(rows + 1..rows + 1 + usize::try_from(exc_ptr[rows]).ok()?)?;
        Some(Self {
            rows,
            pos_ptr,
            pos,
            exc_ptr,
            exc,
        })
    }

    fn list(ptr: &[i64], idx: &'a [i64], i: usize) -> &'a [i64] {
        &idx[ptr[i] as usize..ptr[i + 1] as usize]
    }

    /// Row `i` of the code matrix (see the module documentation) into `buf` (`cols` long).
    fn code_row(&self, i: usize, buf: &mut [f32]) {
        buf.fill(0.0);
        for &j in Self::list(self.exc_ptr, self.exc, i) {
            buf[j as usize] = -1.0;
        }
        let (pos, w) = self.positives(i);
        for &j in pos {
            buf[j as usize] = w;
        }
    }

    /// Row `i`'s positive keys (distinct) and their weight `1 / (|P(i)| rows)`.
    fn positives(&self, i: usize) -> (&'a [i64], f32) {
        let pos = Self::list(self.pos_ptr, self.pos, i);
        (pos, 1.0 / (pos.len() as f32 * self.rows as f32))
    }
}

/// `exp(x)` for `x <= 88` with about 1e-7 relative error, in plain arithmetic the
/// compiler vectorises (libm's `expf` is an opaque call per element). Cephes' `expf`:
/// `x = n ln 2 + r` with `n` rounded to nearest by adding `1.5 * 2^23` (which leaves `n`
/// in the low mantissa bits, read back as an integer for `2^n`; `floor` and float-to-int
/// casts do not vectorise on the baseline target), and a degree-6 polynomial for `e^r`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0;
    // max/min rather than clamp: the same for finite input, and no NaN assertion path.
    #[allow(clippy::manual_clamp)]
    let x = x.max(-87.0).min(88.0);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let y = p * r * r + r + 1.0;
    let pow2 = f32::from_bits(t.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    y * pow2
}

/// Independent accumulators per reduction, so that the compiler can vectorise it (a
/// single floating-point accumulator must be summed in order).
const LANES: usize = 16;

simd! {
/// A row's largest candidate score `m`, `ln sum_j exp(s_j - m)` over its candidates (the
/// log-sum-exp is their sum), and the sum of its weights.
fn row_lse(s: &[f32], c: &[f32]) -> (f32, f32, f32) {
    let (sc, cc) = (s.chunks_exact(LANES), c.chunks_exact(LANES));
    let (st, ct) = (sc.remainder(), cc.remainder());
    let mut mx = [f32::NEG_INFINITY; LANES];
    for (sv, cv) in sc.clone().zip(cc.clone()) {
        for l in 0..LANES {
            mx[l] = if cv[l] >= 0.0 && sv[l] > mx[l] {
                sv[l]
            } else {
                mx[l]
            };
        }
    }
    let m = st.iter().zip(ct).filter(|(_, &w)| w >= 0.0).fold(
        mx.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)),
        |a, (&v, _)| a.max(v),
    );
    let (mut sum, mut wsum) = ([0f32; LANES], [0f32; LANES]);
    for (sv, cv) in sc.zip(cc) {
        for l in 0..LANES {
            let cand = cv[l] >= 0.0;
            sum[l] += if cand { exp(sv[l] - m) } else { 0.0 };
            wsum[l] += if cand { cv[l] } else { 0.0 };
        }
    }
    let (mut total, mut wtotal) = (sum.iter().sum::<f32>(), wsum.iter().sum::<f32>());
    for (&v, &w) in st.iter().zip(ct).filter(|(_, &w)| w >= 0.0) {
        total += exp(v - m);
        wtotal += w;
    }
    (m, total.ln(), wtotal)
}
}

simd! {
fn row_grad(d: &mut [MaybeUninit<f32>], s: &[f32], c: &[f32], lse: f32, wsum: f32, g: f32) {
    for ((d, &v), &w) in d.iter_mut().zip(s).zip(c) {
        let grad = g * (exp(v - lse) * wsum - w);
        d.write(if w >= 0.0 { grad } else { 0.0 });
    }
}
}

/// Per row: the loss `sum_j w_ij (lse_i - s_ij)`, the log-sum-exp of its candidate scores
/// and the sum of its weights. Each term is summed as `(m - s_ij) + ln sum exp(s - m)`:
/// `m - s_ij` is exact where the two are close, so a small loss keeps the precision of
/// ulp(1) rather than the ulp(1 / t) of an absolute log-sum-exp.
fn row_stats(scores: &[f32], map: &Packed, cols: usize) -> Vec<(f64, f32, f32)> {
    scores
        .par_chunks(cols)
        .enumerate()
        .map_init(
            || vec![0.0; cols],
            |code, (i, s)| {
                map.code_row(i, code);
                let (m, log_sum, wsum) = row_lse(s, code);
                let (pos, w) = map.positives(i);
                let loss = pos
                    .iter()
                    .map(|&j| f64::from(w) * (f64::from(m - s[j as usize]) + f64::from(log_sum)))
                    .sum();
                (loss, m + log_sum, wsum)
            },
        )
        .collect()
}

/// `L = sum_i sum_j w_ij (lse_i - s_ij)`: with `w_ij = 1 / (|P(i)| rows)` on positives this
/// is the mean over queries of `-1/|P(i)| sum_p log softmax(s_i)_p`. Returns the loss and
/// the per-row log-sum-exp and weight sums for [`backward`].
pub fn forward(scores: &[f32], map: &Packed, cols: usize) -> (f32, Vec<f32>, Vec<f32>) {
    let rows = row_stats(scores, map, cols);
    let loss = rows.iter().map(|r| r.0).sum::<f64>() as f32;
    (
        loss,
        rows.iter().map(|r| r.1).collect(),
        rows.iter().map(|r| r.2).collect(),
    )
}

/// `dL/ds_ij = g (softmax_ij W_i - w_ij)` over candidates, 0 elsewhere, with `W_i` the
/// row's weight sum.
pub fn backward(
    scores: &[f32],
    map: &Packed,
    cols: usize,
    lse: &[f32],
    wsum: &[f32],
    g: f32,
) -> Vec<f32> {
    let rows = scores.len() / cols.max(1);
    let per = rows.div_ceil(2 * rayon::current_num_threads()).max(1);
    // SAFETY: each chunk is `per` whole rows (fewer in the last) and `row_grad` writes
    // every element of each.
    unsafe {
        super::filled(scores.len(), per * cols, |t, d| {
            let mut code = vec![0.0; cols];
            for (r, d) in d.chunks_mut(cols).enumerate() {
                let i = t * per + r;
                map.code_row(i, &mut code);
                row_grad(d, &scores[i * cols..][..cols], &code, lse[i], wsum[i], g);
            }
        })
    }
}

/// What the backward pass of [`fused_forward`] needs.
#[derive(Debug, Clone)]
pub struct Fused {
    /// Queries, normalised when cosine, divided by the temperature: `a = q̂ / t`.
    pub a: Vec<f32>,
    /// Keys, normalised when cosine.
    pub kn: Vec<f32>,
    /// Row norms of the raw queries and keys (cosine only).
    pub qnorm: Vec<f32>,
    pub knorm: Vec<f32>,
    /// Scores `a k̂ᵀ`.
    pub scores: Vec<f32>,
    pub lse: Vec<f32>,
    pub wsum: Vec<f32>,
}

/// Rows of `x` (`[rows, d]`) scaled to unit norm (`/ sqrt(|x|^2 + 1e-12)`, as
/// [`crate::score::l2_normalise`]), with the norms.
fn normalise(x: &[f32], d: usize, scale: f32) -> (Vec<f32>, Vec<f32>) {
    let mut out = x.to_vec();
    let norms = out
        .par_chunks_mut(d)
        .map(|r| {
            let nrm = (r.iter().map(|v| v * v).sum::<f32>() + 1e-12).sqrt();
            r.iter_mut().for_each(|v| *v *= scale / nrm);
            nrm
        })
        .collect();
    (out, norms)
}

/// `c = a bᵀ` for row-major `a` `[r, d]` and `b` `[n, d]`.
fn abt(a: &[f32], b: &[f32], r: usize, n: usize, d: usize) -> Vec<f32> {
    product(Mat::rows(a, r, d), Mat::rows(b, n, d).t())
}

/// `c = a b` for row-major `a` `[r, n]` (or its transpose when `ta`, stored `[n, r]`) and
/// `b` `[n, d]`.
fn ab(a: &[f32], b: &[f32], r: usize, n: usize, d: usize, ta: bool) -> Vec<f32> {
    let lhs = if ta {
        Mat::rows(a, n, r).t()
    } else {
        Mat::rows(a, r, n)
    };
    product(lhs, Mat::rows(b, n, d))
}

/// Scores and loss in one: `s = score(q, k) / t` (cosine or dot) for queries `q` `[r, d]`
/// and keys `k` `[c, d]`, then the InfoNCE family over `s` with the positive map `code`.
#[allow(clippy::too_many_arguments)]
pub fn fused_forward(
    q: &[f32],
    k: &[f32],
    map: &Packed,
    r: usize,
    c: usize,
    d: usize,
    t: f32,
    cosine: bool,
) -> (f32, Fused) {
    let (a, qnorm) = if cosine {
        normalise(q, d, 1.0 / t)
    } else {
        (q.iter().map(|v| v / t).collect(), Vec::new())
    };
    let (kn, knorm) = if cosine {
        normalise(k, d, 1.0)
    } else {
        (k.to_vec(), Vec::new())
    };
    let scores = abt(&a, &kn, r, c, d);
    let (loss, lse, wsum) = forward(&scores, map, c);
    (
        loss,
        Fused {
            a,
            kn,
            qnorm,
            knorm,
            scores,
            lse,
            wsum,
        },
    )
}

/// `dx = (dx̂ - x̂ (x̂ . dx̂)) / |x|`, the backward of row normalisation, in place on `dxn`.
fn normalise_backward(dxn: &mut [f32], xn: &[f32], norms: &[f32], d: usize, xn_scale: f32) {
    dxn.par_chunks_mut(d)
        .zip(xn.par_chunks(d))
        .zip(norms)
        .for_each(|((g, x), &nrm)| {
            let dot: f32 = g.iter().zip(x).map(|(a, b)| a * b * xn_scale).sum();
            g.iter_mut()
                .zip(x)
                .for_each(|(g, &xv)| *g = (*g - xv * xn_scale * dot) / nrm);
        });
}

/// Gradients of [`fused_forward`]'s loss (times `g`) with respect to `q` and `k`.
///
/// When the queries are the keys (`shared`, one forward pass of all views) the result is
/// the total gradient of that one input, in the first slot (the second is empty), from a
/// single GEMM: `s = q̂ q̂ᵀ / t` gives `dq̂ = (ds + dsᵀ) q̂ / t`.
#[allow(clippy::too_many_arguments)]
pub fn fused_backward(
    f: &Fused,
    map: &Packed,
    r: usize,
    c: usize,
    d: usize,
    t: f32,
    cosine: bool,
    shared: bool,
    g: f32,
) -> (Vec<f32>, Vec<f32>) {
    let ds = backward(&f.scores, map, c, &f.lse, &f.wsum, g);
    if shared {
        let ds = plus_transpose(&ds, r);
        let mut dq = ab(&ds, &f.kn, r, c, d, false);
        dq.par_iter_mut().for_each(|v| *v /= t);
        if cosine {
            normalise_backward(&mut dq, &f.kn, &f.knorm, d, 1.0);
        }
        return (dq, Vec::new());
    }
    // s = a k̂ᵀ: da = ds k̂, dk̂ = dsᵀ a; a = q̂ / t so dq̂ = da / t.
    let mut dq = ab(&ds, &f.kn, r, c, d, false);
    dq.par_iter_mut().for_each(|v| *v /= t);
    let mut dk = ab(&ds, &f.a, c, r, d, true);
    if cosine {
        normalise_backward(&mut dq, &f.a, &f.qnorm, d, t);
        normalise_backward(&mut dk, &f.kn, &f.knorm, d, 1.0);
    }
    (dq, dk)
}

/// `m + mᵀ` for a square `n x n` row-major matrix, by tiles of rows in parallel: each
/// tile of `mᵀ` is gathered from contiguous rows of `m` into a small buffer first. The
/// output is not zeroed first (a serial 4 MB memset on the step benchmark's 1024 rows).
fn plus_transpose(m: &[f32], n: usize) -> Vec<f32> {
    const T: usize = 32;
    // SAFETY: each task's rows are whole rows, and for every row the tiles `j0..j0 + tj`
    // cover all `n` columns, each written once.
    unsafe {
        super::filled(n * n, T * n, |bi, rows| {
            let (i0, ti) = (bi * T, rows.len() / n);
            let mut tile = [[0f32; T]; T];
            for j0 in (0..n).step_by(T) {
                let tj = T.min(n - j0);
                for dj in 0..tj {
                    let src = &m[(j0 + dj) * n + i0..][..ti];
                    for (di, &v) in src.iter().enumerate() {
                        tile[di][dj] = v;
                    }
                }
                for (di, row) in rows.chunks_exact_mut(n).enumerate() {
                    let own = &m[(i0 + di) * n + j0..][..tj];
                    for ((o, &a), &b) in row[j0..j0 + tj].iter_mut().zip(own).zip(&tile[di][..tj]) {
                        o.write(a + b);
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_the_range_softmax_uses() {
        let mut worst = 0f64;
        for i in 0..200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let want = f64::from(x).exp();
            let rel = (f64::from(exp(x)) - want).abs() / want;
            worst = worst.max(rel);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
    }

    /// Row 0: positive 2, key 0 excluded; row 1: positives 0 and 3; row 2: positive 1.
    fn sample_map() -> (PositiveMap, [f32; 12]) {
        let map = PositiveMap::new(
            3,
            4,
            vec![vec![2], vec![0, 3], vec![1]],
            vec![vec![0], vec![], vec![]],
        )
        .unwrap();
        let code = [
            -1.0,
            0.0,
            1.0 / 3.0,
            0.0,
            1.0 / 6.0,
            0.0,
            0.0,
            1.0 / 6.0,
            0.0,
            1.0 / 3.0,
            0.0,
            0.0,
        ];
        (map, code)
    }

    #[test]
    fn packing_round_trips_into_code_rows() {
        let (map, code) = sample_map();
        let packed = pack(&map);
        let p = Packed::parse(&packed).unwrap();
        let mut row = vec![0.0; 4];
        for i in 0..3 {
            p.code_row(i, &mut row);
            assert_eq!(row, code[i * 4..(i + 1) * 4]);
        }
        assert!(Packed::parse(&packed[..5]).is_none());
    }

    #[test]
    fn matches_the_definition_and_finite_differences() {
        let (rows, cols) = (3, 4);
        let s = [
            0.5, -1.0, 2.0, 0.1, 1.5, 0.2, -0.3, 0.9, -2.0, 0.0, 0.4, 3.0,
        ];
        let (map, c) = sample_map();
        let packed = pack(&map);
        let pm = Packed::parse(&packed).unwrap();
        let loss = |s: &[f32]| forward(s, &pm, cols).0;
        let mut want = 0f64;
        for r in 0..rows {
            let cand: Vec<usize> = (0..cols).filter(|&j| c[r * cols + j] >= 0.0).collect();
            let lse = cand
                .iter()
                .map(|&j| f64::from(s[r * cols + j]).exp())
                .sum::<f64>()
                .ln();
            for &j in &cand {
                want += f64::from(c[r * cols + j]) * (lse - f64::from(s[r * cols + j]));
            }
        }
        assert!((f64::from(loss(&s)) - want).abs() < 1e-6);
        let (_, lse, ws) = forward(&s, &pm, cols);
        let ds = backward(&s, &pm, cols, &lse, &ws, 1.0);
        for i in 0..s.len() {
            let (mut p, mut m) = (s, s);
            p[i] += 1e-3;
            m[i] -= 1e-3;
            let fd = (loss(&p) - loss(&m)) / 2e-3;
            assert!((fd - ds[i]).abs() < 1e-3, "ds[{i}] {} vs {fd}", ds[i]);
        }
        assert_eq!(ds[0], 0.0, "excluded key gets no gradient");
    }

    #[test]
    fn fused_scores_and_loss_match_finite_differences() {
        let (r, c, d) = (3, 4, 5);
        let q: Vec<f32> = (0..r * d)
            .map(|i| ((i * 31 % 17) as f32 - 8.0) / 5.0)
            .collect();
        let k: Vec<f32> = (0..c * d)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 4.0)
            .collect();
        let (map, _) = sample_map();
        let packed = pack(&map);
        let pm = Packed::parse(&packed).unwrap();
        for cosine in [true, false] {
            let t = 0.5;
            let loss = |q: &[f32], k: &[f32]| fused_forward(q, k, &pm, r, c, d, t, cosine).0;
            let (_, f) = fused_forward(&q, &k, &pm, r, c, d, t, cosine);
            let (dq, dk) = fused_backward(&f, &pm, r, c, d, t, cosine, false, 1.0);
            let h = 1e-3;
            // Central differences of the loss in each query value, then each key value.
            for (name, grad, which) in [("dq", &dq, 0), ("dk", &dk, 1)] {
                for i in 0..grad.len() {
                    let (mut p, mut m) = ([q.clone(), k.clone()], [q.clone(), k.clone()]);
                    p[which][i] += h;
                    m[which][i] -= h;
                    let fd = (loss(&p[0], &p[1]) - loss(&m[0], &m[1])) / (2.0 * h);
                    assert!(
                        (fd - grad[i]).abs() < 2e-3,
                        "cosine={cosine} {name}[{i}] {} vs {fd}",
                        grad[i]
                    );
                }
            }
        }
    }

    #[test]
    fn shared_queries_and_keys_get_the_summed_gradient() {
        let (n, d) = (4, 3);
        let z: Vec<f32> = (0..n * d)
            .map(|i| ((i * 31 % 17) as f32 - 8.0) / 5.0)
            .collect();
        let map = PositiveMap::new(
            n,
            n,
            vec![vec![2], vec![3], vec![0], vec![1]],
            (0..n as u32).map(|i| vec![i]).collect(),
        )
        .unwrap();
        let packed = pack(&map);
        let pm = Packed::parse(&packed).unwrap();
        for cosine in [true, false] {
            let (_, f) = fused_forward(&z, &z, &pm, n, n, d, 0.3, cosine);
            let (dq, dk) = fused_backward(&f, &pm, n, n, d, 0.3, cosine, false, 1.0);
            let (total, none) = fused_backward(&f, &pm, n, n, d, 0.3, cosine, true, 1.0);
            assert!(none.is_empty());
            for i in 0..n * d {
                assert!(
                    (total[i] - dq[i] - dk[i]).abs() < 1e-5,
                    "{i}: {} vs {}",
                    total[i],
                    dq[i] + dk[i]
                );
            }
        }
    }
}
