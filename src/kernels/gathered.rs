//! Products whose left-hand rows are read where they lie: a convolution's receptive fields
//! in its padded NHWC input, `kh` runs of `kw * c` contiguous values each, which
//! neighbouring output positions share. The micro-kernel takes one pointer per row of its
//! tile, so nothing is lowered (im2col) or packed, and it sums all of `k` in registers and
//! stores each tile once. In f32 (AVX-512F FMAs) and in bf16 pairs (AVX512-BF16).
//!
//! Against the paths it replaces (packed lowered rows in bf16; im2col and the `gemm`
//! crate, which packs again, in f32) the ResNet step ran 1.10× faster in bf16 and 1.03× in
//! f32 (interleaved rounds; `docs/performance.md`).

use std::mem::MaybeUninit;
use std::sync::OnceLock;

use rayon::prelude::*;

use super::mat::Mat;
use super::tile::{Tile, MR, NR};

/// Tiles per group sharing each panel of the right-hand operand while it is in L2.
const MC: usize = 8;

/// Whether this CPU runs the f32 kernel (AVX-512F with FMA), detected once.
pub(super) fn supported() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// The runs of one row: `count` runs of `len` elements, each `stride` elements after the
/// one before (a field's kernel rows, one padded image row apart).
#[derive(Debug, Clone, Copy)]
pub(super) struct Runs {
    pub count: usize,
    pub stride: usize,
    pub len: usize,
}

/// A right-hand operand `rows x cols` in panels of [`NR`] columns: panel `j`, row `p`,
/// column `c` at `(j * rows + p) * NR + c`, zeros past the last column.
pub(super) struct Panels<'a, E> {
    pub data: &'a [E],
    pub rows: usize,
    pub cols: usize,
}

/// An element of a gathered product: an f32, or a word holding two bf16 along the inner
/// dimension (the operand format of `vdpbf16ps`).
pub(super) trait Element: Copy + Send + Sync {
    /// `tile = A·B` where row `r` of `A` is `runs.count` runs from `rows[r]` on and `b`
    /// holds [`NR`] elements per row of `B`, the runs' rows one after another.
    ///
    /// # Safety
    /// The CPU has this element's instructions; each row pointer is readable for
    /// `(runs.count - 1) * runs.stride + runs.len` elements, `b` for `runs.count *
    /// runs.len * NR`; the tile's `rows x cols` lie in writable memory not aliased by them.
    unsafe fn kernel(rows: &[*const Self; MR], runs: Runs, b: *const Self, t: &Tile);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Element, Runs};
    use crate::kernels::tile::{store, Tile, MR, NR};
    use std::arch::x86_64::*;

    /// What the shared kernel body needs of an element: sixteen lanes of `B` and one
    /// multiply-add of a broadcast element.
    trait Lanes: Copy {
        unsafe fn load(b: *const Self) -> __m512;
        unsafe fn madd(acc: __m512, a: Self, b: __m512) -> __m512;
    }

    impl Lanes for f32 {
        #[inline(always)]
        unsafe fn load(b: *const f32) -> __m512 {
            // SAFETY: the kernel's caller promises sixteen readable elements.
            unsafe { _mm512_loadu_ps(b) }
        }
        #[inline(always)]
        unsafe fn madd(acc: __m512, a: f32, b: __m512) -> __m512 {
            // SAFETY: reached only from `kernel_f32`, which enables AVX-512F and FMA.
            unsafe { _mm512_fmadd_ps(_mm512_set1_ps(a), b, acc) }
        }
    }

    impl Lanes for u32 {
        #[inline(always)]
        unsafe fn load(b: *const u32) -> __m512 {
            // SAFETY: the kernel's caller promises sixteen readable words.
            unsafe { _mm512_castsi512_ps(_mm512_loadu_si512(b.cast())) }
        }
        #[inline(always)]
        unsafe fn madd(acc: __m512, a: u32, b: __m512) -> __m512 {
            // SAFETY: reached only from `kernel_bf16`, which enables AVX512-BF16; the
            // transmutes reinterpret 512 bits as the 32 bf16 they hold.
            unsafe {
                let a: __m512bh = std::mem::transmute(_mm512_set1_epi32(a as i32));
                _mm512_dpbf16_ps(acc, a, std::mem::transmute::<__m512, __m512bh>(b))
            }
        }
    }

    /// The kernel, inlined into each element's entry point with its instructions enabled.
    #[inline(always)]
    unsafe fn body<E: Lanes>(rows: &[*const E; MR], runs: Runs, b: *const E, t: &Tile) {
        // SAFETY: every element read lies inside the reach the caller promised.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; MR];
            for s in 0..runs.count {
                let (bs, off) = (b.add(s * runs.len * NR), s * runs.stride);
                for p in 0..runs.len {
                    let b0 = E::load(bs.add(p * NR));
                    let b1 = E::load(bs.add(p * NR + 16));
                    for (row, a) in acc.iter_mut().zip(rows) {
                        let x = *a.add(off + p);
                        row[0] = E::madd(row[0], x, b0);
                        row[1] = E::madd(row[1], x, b1);
                    }
                }
            }
            store(&acc, t)
        }
    }

    #[target_feature(enable = "avx512f,fma")]
    unsafe fn kernel_f32(rows: &[*const f32; MR], runs: Runs, b: *const f32, t: &Tile) {
        // SAFETY: the caller's promises (`Element::kernel`).
        unsafe { body(rows, runs, b, t) }
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn kernel_bf16(rows: &[*const u32; MR], runs: Runs, b: *const u32, t: &Tile) {
        // SAFETY: the caller's promises (`Element::kernel`).
        unsafe { body(rows, runs, b, t) }
    }

    impl Element for f32 {
        unsafe fn kernel(rows: &[*const f32; MR], runs: Runs, b: *const f32, t: &Tile) {
            // SAFETY: the caller's promises.
            unsafe { kernel_f32(rows, runs, b, t) }
        }
    }

    impl Element for u32 {
        unsafe fn kernel(rows: &[*const u32; MR], runs: Runs, b: *const u32, t: &Tile) {
            // SAFETY: the caller's promises.
            unsafe { kernel_bf16(rows, runs, b, t) }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl Element for f32 {
    unsafe fn kernel(_: &[*const f32; MR], _: Runs, _: *const f32, _: &Tile) {
        unreachable!("gathered products run only where `supported()`")
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl Element for u32 {
    unsafe fn kernel(_: &[*const u32; MR], _: Runs, _: *const u32, _: &Tile) {
        unreachable!("bf16 products run only where `bf16::supported()`")
    }
}

/// `dst = a·b` where row `q` of `a` (`m x b.rows`) is `runs.count` runs of `x`, the first
/// from element `at(q)` on. Groups of [`MC`] tiles share each panel of `b` while it is in
/// L2. Single-threaded.
///
/// # Safety
/// The CPU has `E`'s instructions ([`supported`], or `bf16::supported` for words);
/// `dst` is valid for writes over `m x b.cols` with row stride `dst_rs`, overlapping
/// neither `x` nor `b.data`.
pub(super) unsafe fn product<E: Element>(
    (dst, dst_rs): (*mut f32, usize),
    m: usize,
    (x, at): (&[E], &dyn Fn(usize) -> usize),
    runs: Runs,
    b: &Panels<E>,
) {
    assert_eq!(
        runs.count * runs.len,
        b.rows,
        "gathered: runs and operand differ"
    );
    assert!(runs.count > 0, "gathered: no runs");
    assert!(
        b.data.len() >= b.cols.div_ceil(NR) * b.rows * NR,
        "gathered: short operand"
    );
    let reach = (runs.count - 1)
        .checked_mul(runs.stride)
        .and_then(|r| r.checked_add(runs.len))
        .expect("gathered: runs overflow");
    let start = |q: usize| {
        let i = at(q);
        assert!(
            x.len().checked_sub(reach).is_some_and(|last| i <= last),
            "gathered: row {q} reads past its operand"
        );
        // SAFETY: in bounds (asserted).
        unsafe { x.as_ptr().add(i) }
    };
    let panels = m.div_ceil(MR);
    for g0 in (0..panels).step_by(MC) {
        let group = g0..(g0 + MC).min(panels);
        let mut tiles = [[x.as_ptr(); MR]; MC];
        for (i, rows) in group.clone().zip(&mut tiles) {
            let first = start(i * MR);
            // Rows past `m` repeat the tile's first (read, never stored).
            *rows = std::array::from_fn(|r| match i * MR + r < m {
                true => start(i * MR + r),
                false => first,
            });
        }
        for j in 0..b.cols.div_ceil(NR) {
            let panel = &b.data[j * b.rows * NR..][..b.rows * NR];
            for (i, rows) in group.clone().zip(&tiles) {
                let tile = Tile {
                    // SAFETY: row `i * MR`, column `j * NR` lie inside the destination.
                    ptr: unsafe { dst.add(i * MR * dst_rs + j * NR) },
                    rs: dst_rs,
                    rows: MR.min(m - i * MR),
                    cols: NR.min(b.cols - j * NR),
                };
                // SAFETY: the CPU's instructions (the caller's promise); each row reaches
                // `reach` elements inside `x` (asserted) and the panel holds its rows; the
                // tile lies inside the destination, which `x` and `b` do not alias.
                unsafe { E::kernel(rows, runs, panel.as_ptr(), &tile) };
            }
        }
    }
}

/// `b` (`k x n`) in panels of [`NR`] columns, as [`Panels`] lays them out.
pub(super) fn panels_f32(b: Mat) -> Vec<f32> {
    let (k, n) = (b.rows, b.cols);
    // SAFETY: every element of every panel is written.
    unsafe {
        super::filled(n.div_ceil(NR) * k * NR, k * NR, |j, panel| {
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    let col = j * NR + c;
                    v.write(if col < n {
                        b.data[p * b.rs + col * b.cs]
                    } else {
                        0.0
                    });
                }
            }
        })
    }
}

/// Images `[n, h, w, c]` with `pad` zeros around each, `[n, h + 2 pad, w + 2 pad, c]`,
/// written into the first elements of `out` (the rest zeroed), each image row through
/// `convert`, which must write every element of its `dst` (as long as its `src`): so every
/// element of `out` is written once. In parallel over images when `parallel`; never
/// inside a thread's scratch buffer, whose borrow a stolen task would meet again.
pub(super) fn pad_images_with<T: Default + Send>(
    [n, h, w, c]: [usize; 4],
    pad: usize,
    x: &[f32],
    out: &mut [MaybeUninit<T>],
    convert: impl Fn(&[f32], &mut [MaybeUninit<T>]) + Sync,
    parallel: bool,
) {
    assert_eq!(x.len(), n * h * w * c, "padding: input length");
    let (wp, image, source) = (w + 2 * pad, (h + 2 * pad) * (w + 2 * pad) * c, h * w * c);
    let (body, tail) = out.split_at_mut(n * image);
    zero(tail);
    if source == 0 {
        // Empty images: all padding.
        zero(body);
        return;
    }
    let one = |(out, src): (&mut [MaybeUninit<T>], &[f32])| {
        let (top, rest) = out.split_at_mut(pad * wp * c);
        let (rows, bottom) = rest.split_at_mut(h * wp * c);
        zero(top);
        zero(bottom);
        for (row, src) in rows.chunks_exact_mut(wp * c).zip(src.chunks_exact(w * c)) {
            let (left, rest) = row.split_at_mut(pad * c);
            let (mid, right) = rest.split_at_mut(w * c);
            zero(left);
            convert(src, mid);
            zero(right);
        }
    };
    match parallel {
        true => body
            .par_chunks_mut(image)
            .zip(x.par_chunks(source))
            .for_each(one),
        false => body.chunks_mut(image).zip(x.chunks(source)).for_each(one),
    }
}

/// Writes `T::default()` (zero) into every element of `out`.
fn zero<T: Default>(out: &mut [MaybeUninit<T>]) {
    out.iter_mut().for_each(|v| {
        v.write(T::default());
    });
}

/// [`pad_images_with`] in f32 into `out`, serially (it fills a thread's scratch buffer).
pub(super) fn pad_images(dims: [usize; 4], pad: usize, x: &[f32], out: &mut [f32]) {
    // SAFETY: only initialised values are written through the view.
    let out = unsafe { super::unfilled(out) };
    let copy = |src: &[f32], dst: &mut [MaybeUninit<f32>]| {
        dst.iter_mut().zip(src).for_each(|(d, &v)| {
            d.write(v);
        });
    };
    pad_images_with(dims, pad, x, out, copy, false);
}
