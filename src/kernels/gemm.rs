//! A bounds-checked wrapper around the `gemm` crate (the same GEMM burn's `flex` uses).

/// A strided view of a row-major-or-not matrix inside a slice.
#[derive(Debug, Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    /// Distance between consecutive rows.
    pub rs: usize,
    /// Distance between consecutive columns.
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    fn check(&self, what: &str) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
            assert!(
                last < self.data.len(),
                "gemm: {what} view exceeds its slice"
            );
        }
    }
}

/// `dst = a * b` (or `dst += a * b` when `accumulate`), `dst` row-major `a.rows x b.cols`
/// with row stride `dst_rs`. Single-threaded: callers parallelise over independent blocks.
pub fn matmul(dst: &mut [f32], dst_rs: usize, a: Mat, b: Mat, accumulate: bool) {
    gemm_into(dst, dst_rs, a, b, accumulate, gemm::Parallelism::None);
}

/// [`matmul`] on all of rayon's threads, for one large product: the GEMM packs each
/// operand once and shares it, where splitting the product by hand would pack the
/// shared operand once per part.
pub fn matmul_parallel(dst: &mut [f32], dst_rs: usize, a: Mat, b: Mat, accumulate: bool) {
    gemm_into(dst, dst_rs, a, b, accumulate, gemm::Parallelism::Rayon(0));
}

fn gemm_into(
    dst: &mut [f32],
    dst_rs: usize,
    a: Mat,
    b: Mat,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    assert_eq!(a.cols, b.rows, "gemm: inner dimensions differ");
    let (m, n, k) = (a.rows, b.cols, a.cols);
    a.check("lhs");
    b.check("rhs");
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        (m - 1) * dst_rs + n <= dst.len(),
        "gemm: dst view exceeds its slice"
    );
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * dst_rs..r * dst_rs + n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: every view was checked to lie inside its slice above; `dst` is borrowed
    // mutably and does not alias `a` or `b`, which are shared borrows.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_with_transposes_and_accumulation() {
        let a: Vec<f32> = (0..6).map(|v| v as f32).collect(); // 2x3
        let b: Vec<f32> = (0..12).map(|v| (v as f32) * 0.5).collect(); // 3x4
        let mut c = vec![1.0; 8];
        matmul(&mut c, 4, Mat::rows(&a, 2, 3), Mat::rows(&b, 3, 4), true);
        for i in 0..2 {
            for j in 0..4 {
                let want: f32 = 1.0 + (0..3).map(|k| a[i * 3 + k] * b[k * 4 + j]).sum::<f32>();
                assert_eq!(c[i * 4 + j], want);
            }
        }
        // (b^T a^T)^T = a b: compute b^T (4x3) times a^T (3x2) = 4x2
        let mut d = vec![0.0; 8];
        matmul(
            &mut d,
            2,
            Mat::rows(&b, 3, 4).t(),
            Mat::rows(&a, 2, 3).t(),
            false,
        );
        for i in 0..2 {
            for j in 0..4 {
                assert_eq!(d[j * 2 + i], c[i * 4 + j] - 1.0);
            }
        }
    }
}
