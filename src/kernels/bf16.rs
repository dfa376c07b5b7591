//! Matrix products in bf16 with f32 accumulation, for `train.precision = "bf16"`.
//!
//! Both operands are rounded to bf16 (round to nearest, ties to even) while they are packed
//! (a convolution's input once, beforehand: [`rounded_padded`]); the products are summed
//! in f32 by AVX512-BF16's `vdpbf16ps`, which adds two bf16 products to each of sixteen
//! f32 lanes per instruction (`acc += a₀b₀ + a₁b₁`), twice the multiply-adds of an f32 FMA
//! of the same width. The result, like the weights and everything outside the products,
//! stays f32: this is the arithmetic of PyTorch's `torch.autocast("cpu",
//! dtype=torch.bfloat16)` for matrix products and convolutions, except that the output is
//! not rounded to bf16 as well.
//!
//! The `gemm` crate has no bf16 dot-product kernels (its f16 path widens to f32), so the
//! packing and the micro-kernels are written here (the in-place one in
//! [`super::gathered`]). Rounding is checked against `half`.
//!
//! Layout: every operand holds the inner dimension's pair `(2p, 2p + 1)` as one 32-bit
//! word, the operand layout of `vdpbf16ps`. `b` is packed in panels of [`NR`] columns, the
//! words of one pair side by side. `a` is cut into panels of [`MR`] rows, laid out the way
//! its view converts fastest: a row-major `a` row by row (each row a straight conversion),
//! a transposed one pair by pair (two source rows zipped). Odd `k` and partial panels are
//! padded with zeros. The inner dimension is cut into chunks of [`KC`] pairs so that a
//! chunk of a `b` panel (16 KiB) stays in L1 while [`MC`] panels of `a` stream past it.
//!
//! Packing writes every word, so a packed `b` is not zeroed first, and `a` is packed into a
//! buffer each thread keeps (zeroed only when it grows).
//!
//! A convolution's `a` is not packed at all where its channel count is even: the fields
//! are read where they lie in the rounded, padded input ([`rounded_padded`],
//! [`super::gathered`]).
//!
//! `vdpbf16ps` treats subnormal inputs and outputs as zero, whatever MXCSR says: products
//! below about 1e-38 are flushed, which f32 training never notices.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use rayon::prelude::*;

use super::mat::Mat;
use super::tile::{Tile, MR, NR};

/// Pairs of the inner dimension per cache block.
const KC: usize = 128;
/// Row panels per group sharing a chunk of `b` (8 x 12 rows x 128 pairs: 48 KiB of `a`,
/// in L2).
const MC: usize = 8;

/// Rows of a right-hand operand per cache block of the inner dimension: a product over
/// more rows may be split into chunks of this many at no extra cost.
pub(super) const CHUNK_ROWS: usize = 2 * KC;

static ON: AtomicBool = AtomicBool::new(false);

/// Whether this CPU multiplies bf16 pairs (AVX512-BF16), detected once.
pub fn supported() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Turns bf16 layer products on or off for the process; returns whether they are now on
/// (never on a CPU without [`supported`] bf16 arithmetic, which keeps f32).
pub fn set_enabled(on: bool) -> bool {
    let on = on && supported();
    ON.store(on, Ordering::Relaxed);
    on
}

/// Whether layer products run in bf16.
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// One f32 rounded to bf16 (to nearest, ties to even; NaN stays NaN), as its 16 bits.
/// Branch-free, so that packing loops vectorise.
#[inline(always)]
fn round(v: f32) -> u32 {
    let bits = v.to_bits();
    // Wrapping: a negative NaN's bits overflow here, and the NaN branch is taken then.
    let nearest = bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16;
    if v.is_nan() {
        (bits >> 16) | 0x40
    } else {
        nearest
    }
}

/// The word of two f32: `lo` rounded in the low half, `hi` in the high half.
#[inline(always)]
fn word(lo: f32, hi: f32) -> u32 {
    round(lo) | (round(hi) << 16)
}

/// `out[i]` = the word of `lo[i]` and `hi[i]`, sixteen at a time with AVX-512 (the runs are
/// as short as a panel's 12 lines, too short for the compiler's vector loop).
fn zip(lo: &[f32], hi: &[f32], out: &mut [MaybeUninit<u32>]) {
    assert!(lo.len() == out.len() && hi.len() == out.len());
    #[cfg(target_arch = "x86_64")]
    if supported() {
        // SAFETY: AVX-512 is present (`supported`), and the three slices have equal lengths.
        unsafe { zip_avx512(lo, hi, out) };
        return;
    }
    for ((w, &a), &b) in out.iter_mut().zip(lo).zip(hi) {
        w.write(word(a, b));
    }
}

/// [`zip`] on sixteen lanes: [`round`] in vector form.
///
/// # Safety
/// The CPU has AVX-512F; `lo`, `hi` and `out` have equal lengths.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn zip_avx512(lo: &[f32], hi: &[f32], out: &mut [MaybeUninit<u32>]) {
    use std::arch::x86_64::*;
    let round = |v: __m512| -> __m512i {
        let bits = _mm512_castps_si512(v);
        let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(1));
        let bias = _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff));
        let nearest = _mm512_srli_epi32::<16>(_mm512_add_epi32(bits, bias));
        let quiet = _mm512_or_si512(_mm512_srli_epi32::<16>(bits), _mm512_set1_epi32(0x40));
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
        _mm512_mask_blend_epi32(nan, nearest, quiet)
    };
    for start in (0..out.len()).step_by(16) {
        let n = (out.len() - start).min(16);
        let mask = ((1u32 << n) - 1) as __mmask16;
        // SAFETY: the masked lanes lie inside the three slices (equal lengths, the caller's
        // promise); `MaybeUninit<u32>` has `u32`'s layout.
        unsafe {
            let a = _mm512_maskz_loadu_ps(mask, lo.as_ptr().add(start));
            let b = _mm512_maskz_loadu_ps(mask, hi.as_ptr().add(start));
            let w = _mm512_or_si512(round(a), _mm512_slli_epi32::<16>(round(b)));
            _mm512_mask_storeu_epi32(out.as_mut_ptr().add(start).cast(), mask, w);
        }
    }
}

simd! {
/// Packs `lines` lines of `m` from line `first` on (its rows; past the last row, zeros)
/// into `out`, pair by pair: pair `p` of line `l` at `p * lines + l`, each word the bf16 of
/// columns `2p` (low half) and `2p + 1` (high half), zero past the last column.
fn pack_pairs(m: &Mat, first: usize, lines: usize, out: &mut [MaybeUninit<u32>]) {
    let valid = lines.min(m.rows.saturating_sub(first));
    let full = m.cols / 2;
    let at = |r: usize, c: usize| m.data[(first + r) * m.rs + c * m.cs];
    for (p, words) in out.chunks_exact_mut(lines).enumerate() {
        let (data, pad) = words.split_at_mut(valid);
        if p < full && m.rs == 1 {
            // Two columns, each contiguous across the lines, zipped into one run of words.
            let lo = &m.data[first + 2 * p * m.cs..][..valid];
            let hi = &m.data[first + (2 * p + 1) * m.cs..][..valid];
            zip(lo, hi, data);
        } else if p < full {
            for (l, w) in data.iter_mut().enumerate() {
                w.write(word(at(l, 2 * p), at(l, 2 * p + 1)));
            }
        } else {
            // An odd last column: its pair's high half is zero.
            for (l, w) in data.iter_mut().enumerate() {
                w.write(round(at(l, 2 * p)));
            }
        }
        pad.iter_mut().for_each(|w| {
            w.write(0);
        });
    }
}
}

simd! {
/// Packs `lines` rows of the row-major (`cs == 1`) `m` from row `first` on into `out` row
/// by row, `kp` words each: word `p` of row `l` at `l * kp + p`; zeros past the last row
/// and in the high half of an odd last column.
fn pack_rows(m: &Mat, first: usize, lines: usize, out: &mut [MaybeUninit<u32>]) {
    let kp = out.len() / lines;
    let full = m.cols / 2;
    for (l, words) in out.chunks_exact_mut(kp).enumerate() {
        if first + l >= m.rows {
            words.iter_mut().for_each(|w| {
                w.write(0);
            });
            continue;
        }
        let row = &m.data[(first + l) * m.rs..][..m.cols];
        for (w, two) in words.iter_mut().zip(row.chunks_exact(2)) {
            w.write(word(two[0], two[1]));
        }
        if full < kp {
            words[full].write(round(row[2 * full]));
        }
    }
}
}

/// Fills `out` by `fill(i, chunk)` on its `i`-th chunk of `chunk` words, in parallel when
/// `parallel`.
fn fill_words(
    out: &mut [MaybeUninit<u32>],
    chunk: usize,
    parallel: bool,
    fill: impl Fn(usize, &mut [MaybeUninit<u32>]) + Sync + Send,
) {
    if chunk == 0 {
        return;
    }
    if parallel {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| fill(i, c));
    } else {
        out.chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| fill(i, c));
    }
}

/// A right-hand operand `k x n` rounded to bf16 and packed in panels of [`NR`] columns
/// (panel `j`, pair `p`, column `c` at `(j * kp + p) * NR + c`): packed once where one
/// operand meets many left-hand blocks (a convolution's weight).
pub struct Packed {
    words: Vec<u32>,
    k: usize,
    n: usize,
}

impl Packed {
    /// `b` packed. Only where [`supported`]: the products that use it need AVX512-BF16.
    pub(super) fn new(b: &Mat) -> Self {
        assert!(supported(), "bf16 operands need AVX512-BF16");
        let kp = b.rows.div_ceil(2);
        let bt = b.t();
        let len = b.cols.div_ceil(NR) * kp * NR;
        // SAFETY: `pack_pairs` writes every word of its panel.
        let words =
            unsafe { super::filled(len, kp * NR, |j, panel| pack_pairs(&bt, j * NR, NR, panel)) };
        Self {
            words,
            k: b.rows,
            n: b.cols,
        }
    }

    /// The `k x n` operand whose row `r` is `row(r, …)`, packed: row pairs are produced
    /// one at a time and spread over the column panels, so a lowered convolution input is
    /// packed without being materialised. Only where [`supported`].
    pub(super) fn from_rows(k: usize, n: usize, row: RowFn) -> Self {
        assert!(supported(), "bf16 operands need AVX512-BF16");
        let (kp, panels) = (k.div_ceil(2), n.div_ceil(NR));
        let width = panels * NR;
        let (mut lo, mut hi) = (vec![0u16; width], vec![0u16; width]);
        let mut words = Vec::with_capacity(panels * kp * NR);
        let out = &mut words.spare_capacity_mut()[..panels * kp * NR];
        for p in 0..kp {
            row(2 * p, &mut lo[..n]);
            if 2 * p + 1 < k {
                row(2 * p + 1, &mut hi[..n]);
            } else {
                hi.fill(0);
            }
            for j in 0..panels {
                let cols = j * NR..(j + 1) * NR;
                interleave(
                    &lo[cols.clone()],
                    &hi[cols],
                    &mut out[(j * kp + p) * NR..][..NR],
                );
            }
        }
        // SAFETY: every pair of every panel was written above.
        unsafe { words.set_len(panels * kp * NR) };
        Self { words, k, n }
    }

    /// Rows of the operand.
    pub fn rows(&self) -> usize {
        self.k
    }

    /// Columns of the operand.
    pub fn cols(&self) -> usize {
        self.n
    }

    /// The operand's panels of pairs, for [`super::gathered::product`].
    pub(super) fn panels(&self) -> super::gathered::Panels<'_, u32> {
        super::gathered::Panels {
            data: &self.words,
            rows: self.k.div_ceil(2),
            cols: self.n,
        }
    }
}

thread_local! {
    /// Each thread's buffer for its packed left-hand operands, reused across products.
    static SCRATCH: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on `len` words of this thread's scratch buffer when it is free (their values
/// are left from earlier use, or zero).
fn with_words<R>(len: usize, f: impl FnOnce(&mut [u32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0);
            }
            f(&mut buf[..len])
        }
        // A product started inside another's parallel section on this thread.
        Err(_) => f(&mut vec![0; len]),
    })
}

/// Runs `f` on `a` (`m x k`) packed in panels of [`MR`] rows (panel `i` from word
/// `i * MR * kp`), with whether the panels are row by row (else pair by pair).
fn with_packed_a<R>(a: &Mat, kp: usize, parallel: bool, f: impl FnOnce(&[u32], bool) -> R) -> R {
    let len = a.rows.div_ceil(MR) * MR * kp;
    let rows = a.cs == 1;
    with_words(len, |out| {
        // SAFETY: the packers write only initialised words.
        fill_words(
            unsafe { super::unfilled(out) },
            MR * kp,
            parallel,
            |i, panel| match rows {
                true => pack_rows(a, i * MR, MR, panel),
                false => pack_pairs(a, i * MR, MR, panel),
            },
        );
        f(out, rows)
    })
}

/// Writes row `r` of an operand, rounded to bf16, into every element of the slice given
/// (the row's length).
pub(super) type RowFn<'a> = &'a (dyn Fn(usize, &mut [u16]) + Sync);

/// Words as the bf16 halves they hold: element `2p` is word `p`'s low half on this
/// little-endian target.
fn halves(words: &mut [u32]) -> &mut [u16] {
    // SAFETY: two u16 fill a u32 exactly, u16's alignment divides u32's, and the view
    // covers the same, initialised, bytes.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), 2 * words.len()) }
}

/// Writes `row(r, …)` into the first `k` halves of `out` (the row function writes each)
/// and zeros after; zeros only when `r` is past the last row, `m`.
fn fill_row(row: RowFn, r: usize, m: usize, k: usize, out: &mut [u16]) {
    let (head, tail) = out.split_at_mut(if r < m { k } else { 0 });
    if r < m {
        row(r, head);
    }
    tail.fill(0);
}

/// Words as the bf16 halves they hold, read-only (see [`halves`]).
pub(super) fn halves_of(words: &[u32]) -> &[u16] {
    // SAFETY: as for `halves`.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast(), 2 * words.len()) }
}

/// Images `[n, h, w, c]` rounded to bf16 with `pad` zeros around each, `[n, h + 2 pad,
/// w + 2 pad, c]`, as words (a last half of zero when the count is odd): a convolution's
/// input rounded once instead of once for each of the up to `kh * kw` receptive fields
/// that hold each value, and padded so that every field's run of `kw * c` values lies in
/// it whole. In parallel over images.
pub(super) fn rounded_padded(dims: [usize; 4], pad: usize, x: &[f32]) -> Vec<u32> {
    let [n, h, w, c] = dims;
    let len = n * (h + 2 * pad) * (w + 2 * pad) * c;
    let mut words = Vec::with_capacity(len.div_ceil(2));
    let spare = &mut words.spare_capacity_mut()[..len.div_ceil(2)];
    // SAFETY: two halves fill a word exactly, as in `halves`; nothing is read before it is
    // written.
    let out: &mut [MaybeUninit<u16>] =
        unsafe { std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast(), 2 * spare.len()) };
    super::gathered::pad_images_with(dims, pad, x, out, to_bf16, true);
    // SAFETY: `pad_images_with` writes every half of `out` (`to_bf16` every element of
    // its row, which has its source row's length), so every word.
    unsafe { words.set_len(len.div_ceil(2)) };
    words
}

simd! {
/// `dst[i]` = `src[i]` rounded to bf16.
fn to_bf16(src: &[f32], dst: &mut [MaybeUninit<u16>]) {
    for (d, &v) in dst.iter_mut().zip(src) {
        d.write(round(v) as u16);
    }
}
}

simd! {
/// `out[i]` = the word of halves `lo[i]` and `hi[i]`.
fn interleave(lo: &[u16], hi: &[u16], out: &mut [MaybeUninit<u32>]) {
    for ((w, &a), &b) in out.iter_mut().zip(lo).zip(hi) {
        w.write(u32::from(a) | (u32::from(b) << 16));
    }
}
}

/// `tile (+)= A·B` over `kc` pairs: `b` is [`NR`] words per pair; `a` holds [`MR`] rows,
/// row by row `a_rs` words apart when `ROWS`, else pair by pair. Adds to the tile's
/// current values when `load`, else overwrites them.
///
/// # Safety
/// The CPU has AVX512-BF16; `a` and `b` hold `kc` pairs of their [`MR`] rows and [`NR`]
/// columns; the tile's `rows x cols` lie in writable memory not aliased by `a` or `b`
/// (and readable when `load`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn kernel<const ROWS: bool>(
    a: &[u32],
    a_rs: usize,
    b: &[u32],
    kc: usize,
    t: &Tile,
    load: bool,
) {
    use std::arch::x86_64::*;
    let (m0, m1) = super::tile::column_masks(t);
    if kc > 0 {
        let last = if ROWS { (MR - 1) * a_rs + kc } else { kc * MR };
        assert!(
            last <= a.len() && kc * NR <= b.len(),
            "bf16 kernel: operands too short"
        );
    }
    // Every row set in one fixed-count loop, which the compiler unrolls into registers (a
    // zeroed array then loaded up to `t.rows` went through the stack, 5% of a step).
    let mut acc: [[__m512; 2]; MR] = std::array::from_fn(|r| {
        if load && r < t.rows {
            // SAFETY: masked loads touch only the tile's columns of its row `r`; the second
            // half's pointer may lie past the row (masked off), hence `wrapping_add`.
            unsafe {
                let p = t.ptr.add(r * t.rs);
                [
                    _mm512_maskz_loadu_ps(m0, p),
                    _mm512_maskz_loadu_ps(m1, p.wrapping_add(16)),
                ]
            }
        } else {
            [_mm512_setzero_ps(); 2]
        }
    });
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for p in 0..kc {
        // SAFETY: word `p * NR + 31` and every `a` word read lie inside the slices
        // (asserted above).
        unsafe {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(p * NR).cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(bp.add(p * NR + 16).cast()));
            for (r, row) in acc.iter_mut().enumerate() {
                let w = *ap.add(if ROWS { r * a_rs + p } else { p * MR + r });
                let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(w as i32));
                row[0] = _mm512_dpbf16_ps(row[0], x, b0);
                row[1] = _mm512_dpbf16_ps(row[1], x, b1);
            }
        }
    }
    // SAFETY: the caller's promise on the tile.
    unsafe { super::tile::store(&acc, t) }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel<const ROWS: bool>(_: &[u32], _: usize, _: &[u32], _: usize, _: &Tile, _: bool) {
    unreachable!("bf16 products are only enabled where `supported()`")
}

/// A raw destination pointer that may cross to rayon's threads; the row blocks each
/// thread writes are disjoint.
#[derive(Clone, Copy)]
struct Dst(*mut f32);
// SAFETY: shared only across threads that write disjoint rows of the destination.
unsafe impl Send for Dst {}
unsafe impl Sync for Dst {}

/// `dst (+)= a·b` in bf16 with f32 accumulation, `dst` row-major `a.rows x b.cols` with
/// row stride `dst_rs`; parallel over blocks of rows when `parallel`.
///
/// # Safety
/// [`supported`] is true; `a.cols == b.rows()`; `dst` is valid for writes (and reads when
/// `accumulate`) over the whole view and does not alias `a`; `a` was checked against its
/// slice.
pub(super) unsafe fn product(
    dst: *mut f32,
    dst_rs: usize,
    a: Mat,
    b: &Packed,
    accumulate: bool,
    parallel: bool,
) {
    let kp = a.cols.div_ceil(2);
    with_packed_a(&a, kp, parallel, |pa, rows| {
        let pa = Panels {
            words: pa,
            rows,
            kp,
        };
        // SAFETY: the caller's promises.
        unsafe { multiply(Dst(dst), dst_rs, a.rows, &pa, b, accumulate, parallel) }
    })
}

/// [`product`] with `a`, `m x k`, given by its rows: `row(r, …)` writes row `r` rounded
/// to bf16 straight into the packed panels, one group of [`MC`] panels at a time, so that a
/// convolution's lowered input is never materialised and its packed rows are multiplied
/// while they are in cache. Single-threaded.
///
/// # Safety
/// [`supported`] is true; `k == b.rows()`; `dst` is valid for writes (and reads when
/// `accumulate`) over `m x b.cols()` with row stride `dst_rs`.
pub(super) unsafe fn product_rows(
    dst: *mut f32,
    dst_rs: usize,
    m: usize,
    k: usize,
    row: RowFn,
    b: &Packed,
    accumulate: bool,
) {
    assert_eq!(k, b.k, "bf16: inner dimensions differ");
    let (kp, group) = (k.div_ceil(2), MC * MR);
    with_words(group * kp, |buf| {
        for first in (0..m).step_by(group) {
            let rows = group.min(m - first);
            let words = &mut buf[..rows.div_ceil(MR) * MR * kp];
            for (r, w) in words.chunks_exact_mut(kp.max(1)).enumerate() {
                fill_row(row, first + r, m, k, halves(w));
            }
            let pa = Panels {
                words,
                rows: true,
                kp,
            };
            // SAFETY: rows `first..first + rows` of the destination lie inside it (the
            // caller's promise).
            unsafe {
                let dst = Dst(dst.add(first * dst_rs));
                multiply(dst, dst_rs, rows, &pa, b, accumulate, false);
            }
        }
    })
}

/// A packed left-hand operand: panels of [`MR`] rows, row by row when `rows`, else pair
/// by pair, `kp` pairs each.
struct Panels<'a> {
    words: &'a [u32],
    rows: bool,
    kp: usize,
}

/// The tiles of `dst (+)= a·b` for `m` rows of packed `a`.
///
/// # Safety
/// As [`product`].
unsafe fn multiply(
    dst: Dst,
    dst_rs: usize,
    m: usize,
    a: &Panels,
    b: &Packed,
    accumulate: bool,
    parallel: bool,
) {
    let (n, kp, pb) = (b.n, a.kp, &b.words);
    let panels = m.div_ceil(MR);
    // A group of `a` panels shares each chunk of a `b` panel while it is in L1, so `b` is
    // read once per group instead of once per panel.
    let group = move |g: usize| {
        let dst = dst;
        let mine = g * MC..((g + 1) * MC).min(panels);
        for k0 in (0..kp.max(1)).step_by(KC) {
            let kc = KC.min(kp - k0.min(kp));
            let load = accumulate || k0 > 0;
            for j in 0..n.div_ceil(NR) {
                let bw = &pb[(j * kp + k0) * NR..];
                for i in mine.clone() {
                    let tile = Tile {
                        // SAFETY: row `i * MR`, column `j * NR` lie inside the destination.
                        ptr: unsafe { dst.0.add(i * MR * dst_rs + j * NR) },
                        rs: dst_rs,
                        rows: MR.min(m - i * MR),
                        cols: NR.min(n - j * NR),
                    };
                    let panel = &a.words[i * MR * kp..];
                    // SAFETY: `supported()` (the caller's promise); the panels hold `kc`
                    // pairs from `k0`; the tile lies inside the destination, which the
                    // packed copies do not alias.
                    unsafe {
                        match a.rows {
                            true => kernel::<true>(&panel[k0..], kp, bw, kc, &tile, load),
                            false => kernel::<false>(&panel[k0 * MR..], 0, bw, kc, &tile, load),
                        }
                    }
                }
            }
        }
    };
    let groups = panels.div_ceil(MC);
    if parallel {
        (0..groups).into_par_iter().for_each(group);
    } else {
        (0..groups).for_each(group);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::bf16;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32).wrapping_mul(2654435761).wrapping_add(seed);
                ((h >> 8) % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// The product of the bf16-rounded operands, summed in f64.
    fn reference(a: Mat, b: Mat) -> Vec<f64> {
        let r = |v: f32| f64::from(bf16::from_f32(v).to_f32());
        let mut out = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                out[i * b.cols + j] = (0..a.cols)
                    .map(|k| r(a.data[i * a.rs + k * a.cs]) * r(b.data[k * b.rs + j * b.cs]))
                    .sum();
            }
        }
        out
    }

    #[test]
    fn rounds_as_half_does() {
        let special = [
            0.0,
            -0.0,
            1.0,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-40,
            f32::INFINITY,
        ];
        let ties = [f32::from_bits(0x3f80_8000), f32::from_bits(0x3f81_8000)];
        for v in special.into_iter().chain(ties).chain(data(10_000, 7)) {
            for v in [v, -v] {
                assert_eq!(round(v), u32::from(bf16::from_f32(v).to_bits()), "{v:e}");
            }
        }
        for nan in [
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0xffff_ffff),
            f32::from_bits(0x7f80_0001),
        ] {
            assert!(
                bf16::from_bits(round(nan) as u16).is_nan(),
                "{:#x}",
                nan.to_bits()
            );
        }
    }

    #[test]
    fn padded_rounding_writes_zeros_around_each_image() {
        // An odd count of halves: the last word's high half is zero too.
        let ([n, h, w, c], pad) = ([2, 3, 4, 3], 2);
        let x = data(n * h * w * c, 4);
        let words = rounded_padded([n, h, w, c], pad, &x);
        let (hp, wp) = (h + 2 * pad, w + 2 * pad);
        assert_eq!(words.len(), (n * hp * wp * c).div_ceil(2));
        let got = halves_of(&words);
        for (i, &v) in got.iter().enumerate() {
            let (b, y, xx, ch) = (i / (hp * wp * c), i / (wp * c) % hp, i / c % wp, i % c);
            let inside = b < n && (pad..pad + h).contains(&y) && (pad..pad + w).contains(&xx);
            let want = match inside {
                true => bf16::from_f32(x[((b * h + y - pad) * w + xx - pad) * c + ch]).to_bits(),
                false => 0,
            };
            assert_eq!(
                v, want,
                "half {i} (image {b}, row {y}, column {xx}, channel {ch})"
            );
        }
    }

    #[test]
    fn equals_the_rounded_product_at_every_shape_and_layout() {
        if !supported() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
            return;
        }
        // Edges of every blocking: rows around MR, columns around NR, odd k, k past KC.
        for (m, k, n) in [
            (1, 1, 1),
            (13, 7, 33),
            (12, 300, 32),
            (37, 257, 70),
            (5, 0, 3),
        ] {
            let (x, y) = (data(m * k, 1), data(k * n, 2));
            for transpose in [false, true] {
                let (xt, yt) = (data(m * k, 1), data(k * n, 2));
                let (a, b) = if transpose {
                    (Mat::rows(&xt, k, m).t(), Mat::rows(&yt, n, k).t())
                } else {
                    (Mat::rows(&x, m, k), Mat::rows(&y, k, n))
                };
                let want = reference(a, b);
                for accumulate in [false, true] {
                    let mut c = vec![0.5f32; m * (n + 3)];
                    // SAFETY: supported; `c` covers `m` rows of stride `n + 3`.
                    unsafe {
                        product(
                            c.as_mut_ptr(),
                            n + 3,
                            a,
                            &Packed::new(&b),
                            accumulate,
                            transpose,
                        )
                    };
                    for i in 0..m {
                        for j in 0..n + 3 {
                            let got = f64::from(c[i * (n + 3) + j]);
                            let exp = if j >= n {
                                0.5
                            } else {
                                want[i * n + j] + if accumulate { 0.5 } else { 0.0 }
                            };
                            // f32 accumulation of k products of size ≤ 1.
                            let tol = 1e-6 * (k as f64 + 1.0);
                            assert!(
                                (got - exp).abs() <= tol,
                                "{m}x{k}x{n} t={transpose} acc={accumulate} ({i},{j}): {got} vs {exp}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn row_functions_give_the_rounded_product() {
        if !supported() {
            eprintln!("skipped: this CPU has no AVX512-BF16");
            return;
        }
        // Rows past a group of MC panels (96), odd k, k past KC pairs.
        for (m, k, n) in [(1, 1, 1), (100, 5, 4), (200, 300, 33), (37, 257, 70)] {
            let (x, y) = (data(m * k, 1), data(k * n, 2));
            let (a, b) = (Mat::rows(&x, m, k), Mat::rows(&y, k, n));
            let want = reference(a, b);
            let round_into = |src: &[f32], out: &mut [u16]| {
                for (o, &v) in out.iter_mut().zip(src) {
                    *o = bf16::from_f32(v).to_bits();
                }
            };
            let a_row = |r: usize, out: &mut [u16]| round_into(&x[r * k..][..k], out);
            let b_row = |r: usize, out: &mut [u16]| round_into(&y[r * n..][..n], out);
            let mut by_a = vec![0.5f32; m * n];
            let mut by_b = vec![0.5f32; m * n];
            // SAFETY: supported; both destinations cover `m x n`.
            unsafe {
                product_rows(by_a.as_mut_ptr(), n, m, k, &a_row, &Packed::new(&b), false);
                let packed = Packed::from_rows(k, n, &b_row);
                product(by_b.as_mut_ptr(), n, a, &packed, true, false);
            }
            let tol = 1e-6 * (k as f64 + 1.0);
            for (i, w) in want.iter().enumerate() {
                let (ga, gb) = (f64::from(by_a[i]), f64::from(by_b[i]) - 0.5);
                assert!(
                    (ga - w).abs() <= tol,
                    "{m}x{k}x{n} rows of a [{i}]: {ga} vs {w}"
                );
                assert!(
                    (gb - w).abs() <= tol,
                    "{m}x{k}x{n} rows of b [{i}]: {gb} vs {w}"
                );
            }
        }
    }
}
