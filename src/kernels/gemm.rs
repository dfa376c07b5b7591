//! A bounds-checked wrapper around the `gemm` crate (the same GEMM burn's `flex` uses), and
//! the same products in bf16 with f32 accumulation ([`super::bf16`]), which convolutions and
//! fully connected layers use under `train.precision = "bf16"`.

use std::mem::MaybeUninit;

pub use super::mat::Mat;

/// A product's right-hand operand: f32, or rounded to bf16 and packed once, so that an
/// operand shared by many products (a convolution's weight across its blocks) is packed
/// once.
pub enum Rhs<'a> {
    F32(Mat<'a>),
    Bf16(super::bf16::Packed),
}

impl<'a> Rhs<'a> {
    /// `b` as it is, or packed for bf16 products when `bf16`.
    pub fn new(b: Mat<'a>, bf16: bool) -> Self {
        match bf16 {
            true => Self::Bf16(super::bf16::Packed::new(&b)),
            false => Self::F32(b),
        }
    }

    fn rows(&self) -> usize {
        match self {
            Self::F32(b) => b.rows,
            Self::Bf16(p) => p.rows(),
        }
    }

    fn cols(&self) -> usize {
        match self {
            Self::F32(b) => b.cols,
            Self::Bf16(p) => p.cols(),
        }
    }
}

/// `dst = a * b` (or `dst += a * b` when `accumulate`), `dst` row-major `a.rows x b.cols`
/// with row stride `dst_rs`. Single-threaded: callers parallelise over independent blocks.
pub fn matmul(dst: &mut [f32], dst_rs: usize, a: Mat, b: Mat, accumulate: bool) {
    matmul_rhs(dst, dst_rs, a, &Rhs::F32(b), accumulate)
}

/// [`matmul`] with a right-hand operand at either precision.
pub fn matmul_rhs(dst: &mut [f32], dst_rs: usize, a: Mat, b: &Rhs, accumulate: bool) {
    // SAFETY: a `&mut [f32]` is valid for reads and writes over its length.
    unsafe { gemm_raw(dst.as_mut_ptr(), dst.len(), dst_rs, a, b, accumulate, false) }
}

/// `dst = a * b` into memory that need not be initialised: the GEMM writes every element of
/// the `a.rows x b.cols` view (row stride `dst_rs`) without reading it. Single-threaded.
pub fn matmul_uninit(dst: &mut [MaybeUninit<f32>], dst_rs: usize, a: Mat, b: &Rhs) {
    // SAFETY: the slice is valid for writes over its length, and nothing is read from it
    // (`accumulate` is false).
    unsafe {
        gemm_raw(
            dst.as_mut_ptr().cast(),
            dst.len(),
            dst_rs,
            a,
            b,
            false,
            false,
        )
    }
}

/// `a * b` as a new row-major matrix, on all of rayon's threads (the GEMM packs each
/// operand once and shares it, where splitting the product by hand would pack the shared
/// operand once per part). The result is not zeroed first: zeroing large outputs took 5–7%
/// of a training step.
pub fn product(a: Mat, b: Mat) -> Vec<f32> {
    product_of(a, &Rhs::F32(b))
}

/// [`product`], in bf16 when `bf16`.
pub fn product_at(a: Mat, b: Mat, bf16: bool) -> Vec<f32> {
    product_of(a, &Rhs::new(b, bf16))
}

fn product_of(a: Mat, b: &Rhs) -> Vec<f32> {
    let len = a.rows * b.cols();
    let mut dst = Vec::with_capacity(len);
    // SAFETY: the spare capacity is valid for writes over `len` elements and is not read;
    // the GEMM writes all `a.rows x b.cols` elements (zero-fills them when `a.cols` is 0),
    // so all `len` are initialised before `set_len`.
    unsafe {
        gemm_raw(dst.as_mut_ptr(), len, b.cols(), a, b, false, true);
        dst.set_len(len);
    }
    dst
}

/// The product through `gemm`, or in bf16 for a packed `b`, after checking every view
/// against its length; on all of rayon's threads when `parallel`.
///
/// # Safety
/// `dst` must be valid for writes of `dst_len` elements (and for reads when `accumulate`),
/// and must not alias `a` or `b`.
unsafe fn gemm_raw(
    dst: *mut f32,
    dst_len: usize,
    dst_rs: usize,
    a: Mat,
    b: &Rhs,
    accumulate: bool,
    parallel: bool,
) {
    assert_eq!(a.cols, b.rows(), "gemm: inner dimensions differ");
    let (m, n, k) = (a.rows, b.cols(), a.cols);
    a.check("lhs");
    if let Rhs::F32(b) = b {
        b.check("rhs");
    }
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        (m - 1) * dst_rs + n <= dst_len,
        "gemm: dst view exceeds its slice"
    );
    // Rows must not overlap: the bf16 product writes blocks of rows from several threads.
    assert!(m == 1 || dst_rs >= n, "gemm: dst rows overlap");
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                // SAFETY: row `r` of the view lies inside `dst_len` (checked above).
                unsafe { std::ptr::write_bytes(dst.add(r * dst_rs), 0, n) };
            }
        }
        return;
    }
    let b = match b {
        Rhs::F32(b) => b,
        Rhs::Bf16(packed) => {
            // SAFETY: a packed operand exists only where bf16 is `supported()`; the views
            // were checked above, and the caller guarantees `dst`.
            unsafe { super::bf16::product(dst, dst_rs, a, packed, accumulate, parallel) };
            return;
        }
    };
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every view was checked to lie inside its slice above; the caller guarantees
    // `dst` is writable and does not alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
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
        // The allocating and the uninitialised-destination forms give the same product.
        let p = product(Mat::rows(&a, 2, 3), Mat::rows(&b, 3, 4));
        let mut u = vec![MaybeUninit::new(f32::NAN); 8];
        matmul_uninit(
            &mut u,
            4,
            Mat::rows(&a, 2, 3),
            &Rhs::F32(Mat::rows(&b, 3, 4)),
        );
        let u: Vec<f32> = u.iter().map(|v| unsafe { v.assume_init() }).collect();
        for i in 0..8 {
            assert_eq!(p[i], c[i] - 1.0);
            assert_eq!(u[i], p[i]);
        }
        assert_eq!(
            product(Mat::rows(&[], 2, 0), Mat::rows(&[], 0, 3)),
            vec![0.0; 6]
        );
    }
}
