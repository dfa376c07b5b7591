//! Products whose operands are read where they lie: a convolution's receptive fields in
//! its padded NHWC input, `kh` runs of `kw * c` contiguous values each, which neighbouring
//! output positions share. The micro-kernel takes one pointer per row of its tile and a
//! [`Walk`] of steps, so nothing is lowered (im2col) or packed; it sums the whole inner
//! dimension in registers and stores each tile once. In f32 (AVX-512F FMAs) and in bf16
//! pairs (AVX512-BF16).
//!
//! - [`product`]: the forward pass, `y = col·W`; a row is an output position, the steps
//!   run along its field.
//! - [`product_transposed`]: the f32 weight gradient, `dW += colᵀ·dY`; a row is one tap
//!   of the field, the steps run along the output positions, and `dY` is read in place
//!   too (bf16 cannot: a word pairs two positions, which are not adjacent in the input).
//!
//! Against the paths they replace (packed lowered rows in bf16; im2col and the `gemm`
//! crate, which packs again, in f32) see `docs/performance.md`.

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

/// How a tile is walked: segment `s`, step `p` reads element `rows[r] + a_offs[s] + p *
/// a_step` of each row `r` and the tile's columns of the right-hand operand from element
/// `s * b_seg + p * b_step` on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Walk<'a> {
    pub a_offs: &'a [usize],
    pub a_step: usize,
    pub len: usize,
    pub b_seg: usize,
    pub b_step: usize,
}

impl Walk<'_> {
    /// Elements a row pointer reads past itself, plus one: its reach.
    fn a_reach(&self) -> usize {
        match (self.a_offs.iter().max(), self.len) {
            (Some(&off), len) if len > 0 => off + (len - 1) * self.a_step + 1,
            _ => 0,
        }
    }

    /// Elements the right-hand operand is read over from the tile's first column, up to
    /// `cols` columns.
    fn b_reach(&self, cols: usize) -> usize {
        match (self.a_offs.len(), self.len) {
            (segs, len) if segs > 0 && len > 0 => {
                (segs - 1) * self.b_seg + (len - 1) * self.b_step + cols
            }
            _ => 0,
        }
    }
}

/// An element of a gathered product: an f32, or a word holding two bf16 along the inner
/// dimension (the operand format of `vdpbf16ps`).
pub(super) trait Element: Copy + Send + Sync {
    /// `tile (+)= A·B` along `walk` (adds to the tile's values when `load`); only the
    /// tile's columns of `b` are read.
    ///
    /// # Safety
    /// The CPU has this element's instructions; each row pointer is readable for
    /// `walk.a_reach()` elements, `b` for `walk.b_reach(t.cols)`; the tile's `rows x cols`
    /// lie in writable memory (readable when `load`) not aliased by them.
    unsafe fn kernel(rows: &[*const Self; MR], walk: &Walk, b: *const Self, t: &Tile, load: bool);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Element, Walk};
    use crate::kernels::tile::{column_masks, start, store, Tile, MR};
    use std::arch::x86_64::*;

    /// What the shared kernel body needs of an element: sixteen lanes of `B` under a mask
    /// and one multiply-add of a broadcast element.
    trait Lanes: Copy {
        unsafe fn load(b: *const Self, mask: __mmask16) -> __m512;
        unsafe fn madd(acc: __m512, a: Self, b: __m512) -> __m512;
    }

    impl Lanes for f32 {
        #[inline(always)]
        unsafe fn load(b: *const f32, mask: __mmask16) -> __m512 {
            // SAFETY: the kernel's caller promises the unmasked elements readable.
            unsafe { _mm512_maskz_loadu_ps(mask, b) }
        }
        #[inline(always)]
        unsafe fn madd(acc: __m512, a: f32, b: __m512) -> __m512 {
            // SAFETY: reached only from `kernel_f32`, which enables AVX-512F and FMA.
            unsafe { _mm512_fmadd_ps(_mm512_set1_ps(a), b, acc) }
        }
    }

    impl Lanes for u32 {
        #[inline(always)]
        unsafe fn load(b: *const u32, mask: __mmask16) -> __m512 {
            // SAFETY: the kernel's caller promises the unmasked words readable.
            unsafe { _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(mask, b.cast())) }
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
    unsafe fn body<E: Lanes>(
        rows: &[*const E; MR],
        walk: &Walk,
        b: *const E,
        t: &Tile,
        load: bool,
    ) {
        // SAFETY: every element read lies inside the reach the caller promised, and the
        // tile is the caller's.
        unsafe {
            let (m0, m1) = column_masks(t);
            let mut acc = start(t, load);
            for (s, &off) in walk.a_offs.iter().enumerate() {
                let bs = b.wrapping_add(s * walk.b_seg);
                for p in 0..walk.len {
                    let (i, bp) = (off + p * walk.a_step, bs.wrapping_add(p * walk.b_step));
                    let b0 = E::load(bp, m0);
                    let b1 = E::load(bp.wrapping_add(16), m1);
                    for (row, a) in acc.iter_mut().zip(rows) {
                        let x = *a.add(i);
                        row[0] = E::madd(row[0], x, b0);
                        row[1] = E::madd(row[1], x, b1);
                    }
                }
            }
            store(&acc, t)
        }
    }

    #[target_feature(enable = "avx512f,fma")]
    unsafe fn kernel_f32(rows: &[*const f32; MR], w: &Walk, b: *const f32, t: &Tile, load: bool) {
        // SAFETY: the caller's promises (`Element::kernel`).
        unsafe { body(rows, w, b, t, load) }
    }

    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn kernel_bf16(rows: &[*const u32; MR], w: &Walk, b: *const u32, t: &Tile, load: bool) {
        // SAFETY: the caller's promises (`Element::kernel`).
        unsafe { body(rows, w, b, t, load) }
    }

    impl Element for f32 {
        unsafe fn kernel(rows: &[*const f32; MR], w: &Walk, b: *const f32, t: &Tile, load: bool) {
            // SAFETY: the caller's promises.
            unsafe { kernel_f32(rows, w, b, t, load) }
        }
    }

    impl Element for u32 {
        unsafe fn kernel(rows: &[*const u32; MR], w: &Walk, b: *const u32, t: &Tile, load: bool) {
            // SAFETY: the caller's promises.
            unsafe { kernel_bf16(rows, w, b, t, load) }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl Element for f32 {
    unsafe fn kernel(_: &[*const f32; MR], _: &Walk, _: *const f32, _: &Tile, _: bool) {
        unreachable!("gathered products run only where `supported()`")
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl Element for u32 {
    unsafe fn kernel(_: &[*const u32; MR], _: &Walk, _: *const u32, _: &Tile, _: bool) {
        unreachable!("bf16 products run only where `bf16::supported()`")
    }
}

/// Row pointers of one tile: `at(i)` for its rows `i` below `m`, the first row's for
/// the rest (read, never stored), each checked to reach `reach` elements inside `x`.
fn row_pointers<E>(
    x: &[E],
    first: usize,
    m: usize,
    reach: usize,
    at: impl Fn(usize) -> usize,
) -> [*const E; MR] {
    let ptr = |i: usize| {
        let o = at(i);
        assert!(
            o + reach <= x.len(),
            "gathered: row {i} reads past its operand"
        );
        // SAFETY: in bounds (asserted).
        unsafe { x.as_ptr().add(o) }
    };
    let head = ptr(first);
    std::array::from_fn(|r| match first + r < m {
        true => ptr(first + r),
        false => head,
    })
}

/// `dst = a·b` where row `q` of `a` (`m x b.rows`) is `runs.count` runs of `x`, the first
/// from element `at(q)` on. Groups of [`MC`] tiles share each panel of `b` while it is in
/// L2. Single-threaded.
///
/// # Safety
/// The CPU has `E`'s instructions ([`supported`], or `bf16::supported` for words);
/// `dst` is valid for writes over `m x b.cols` with row stride `dst_rs`.
pub(super) unsafe fn product<E: Element>(
    (dst, dst_rs): (*mut f32, usize),
    m: usize,
    (x, at): (&[E], &(dyn Fn(usize) -> usize + Sync)),
    runs: Runs,
    b: &Panels<E>,
) {
    assert_eq!(
        runs.count * runs.len,
        b.rows,
        "gathered: runs and operand differ"
    );
    assert!(
        b.data.len() >= b.cols.div_ceil(NR) * b.rows * NR,
        "gathered: short operand"
    );
    let offs: Vec<usize> = (0..runs.count).map(|s| s * runs.stride).collect();
    let walk = Walk {
        a_offs: &offs,
        a_step: 1,
        len: runs.len,
        b_seg: runs.len * NR,
        b_step: NR,
    };
    let panels = m.div_ceil(MR);
    for g0 in (0..panels).step_by(MC) {
        let group = g0..(g0 + MC).min(panels);
        let mut tiles = [[x.as_ptr(); MR]; MC];
        for (i, rows) in group.clone().zip(&mut tiles) {
            *rows = row_pointers(x, i * MR, m, walk.a_reach(), at);
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
                // inside `x` (checked) and the panel holds `b_reach` elements; the tile lies
                // inside the destination, which `x` and `b` do not alias.
                unsafe { E::kernel(rows, &walk, panel.as_ptr(), &tile, false) };
            }
        }
    }
}

/// `dst += aᵀ·b` in f32 for a `q x k` matrix `a` read in place: element `(q, kk)` is
/// `x[walk.a_offs[s] + p * walk.a_step + at(kk)]` for `q = s * walk.len + p`, and `b`
/// (`q x n`, row stride `walk.b_step`) is read in place too. `dst` is `k x n` with row
/// stride `dst_rs`. Each panel of [`NR`] columns of `b` stays in L2 while every tile of
/// [`MR`] rows of `k` walks all of `q` in registers. Single-threaded.
///
/// # Safety
/// [`supported`]; `dst` is valid for reads and writes over `k x n` with row stride
/// `dst_rs`, and aliases neither `x` nor `b`.
pub(super) unsafe fn product_transposed(
    (dst, dst_rs): (*mut f32, usize),
    (k, n): (usize, usize),
    (x, at): (&[f32], &dyn Fn(usize) -> usize),
    walk: &Walk,
    b: &[f32],
) {
    for j in 0..n.div_ceil(NR) {
        let cols = NR.min(n - j * NR);
        assert!(
            j * NR + walk.b_reach(cols) <= b.len(),
            "gathered: short right-hand operand"
        );
        for i in (0..k).step_by(MR) {
            let rows = row_pointers(x, i, k, walk.a_reach(), at);
            let tile = Tile {
                // SAFETY: row `i`, column `j * NR` lie inside the destination.
                ptr: unsafe { dst.add(i * dst_rs + j * NR) },
                rs: dst_rs,
                rows: MR.min(k - i),
                cols,
            };
            // SAFETY: `supported()` (the caller's promise); the rows reach inside `x` and
            // `b` holds `b_reach(cols)` elements from column `j * NR` (both checked); the
            // tile lies inside `dst`, read and written, aliasing neither.
            unsafe { f32::kernel(&rows, walk, b.as_ptr().add(j * NR), &tile, true) };
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
/// `convert`. Every element is written once; in parallel over images.
pub(super) fn pad_images_with<T: Default + Send>(
    [n, h, w, c]: [usize; 4],
    pad: usize,
    x: &[f32],
    out: &mut [MaybeUninit<T>],
    convert: impl Fn(&[f32], &mut [MaybeUninit<T>]) + Sync,
) {
    assert_eq!(x.len(), n * h * w * c, "padding: input length");
    let (wp, image) = (w + 2 * pad, (h + 2 * pad) * (w + 2 * pad) * c);
    let (body, tail) = out.split_at_mut(n * image);
    zero(tail);
    if image == 0 {
        return;
    }
    body.par_chunks_mut(image)
        .zip(x.par_chunks(h * w * c))
        .for_each(|(out, src)| {
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
        });
}

/// Writes `T::default()` (zero) into every element of `out`.
fn zero<T: Default>(out: &mut [MaybeUninit<T>]) {
    out.iter_mut().for_each(|v| {
        v.write(T::default());
    });
}

/// [`pad_images_with`] in f32, into `out`.
pub(super) fn pad_images(dims: [usize; 4], pad: usize, x: &[f32], out: &mut [f32]) {
    // SAFETY: same layout; only initialised values are written through the view.
    let out = unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) };
    pad_images_with(dims, pad, x, out, |src, dst| {
        dst.iter_mut().zip(src).for_each(|(d, &v)| {
            d.write(v);
        });
    });
}
