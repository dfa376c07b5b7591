//! Matrix products on packed operands, in f32 or in bf16 with f32 accumulation: the
//! convolutions' direct path (receptive fields packed straight into the product's operand,
//! no im2col matrix) and every product under `train.precision = "bf16"`.
//!
//! The `gemm` crate packs its operands from strided matrices only, and has no bf16
//! dot-product kernel (its f16 path widens to f32), so the packing and the micro-kernel
//! are written here: one 12x32 tile of f32 accumulators, fed by `vfmadd231ps` in f32 and by
//! `vdpbf16ps` in bf16 ([`super::bf16`]).
//!
//! Layout: operands are words of 32 bits along the inner dimension. An f32 word is one
//! value; a bf16 word is the pair `(2p, 2p + 1)`, the operand layout of `vdpbf16ps`. `b` is
//! packed in panels of [`NR`] columns, the words of one inner index side by side. `a` is
//! cut into panels of [`MR`] rows, laid out the way its view converts fastest: a
//! row-major `a` row by row, a transposed one word by word across the rows. Odd `k` (in
//! bf16) and partial panels are padded with zeros. The inner dimension is cut into chunks
//! of [`KC`] words so that a chunk of a `b` panel (16 KiB) stays in L1 while [`GROUP_ROWS`] rows
//! of `a` stream past it.
//!
//! Packing writes every word, so a packed `b` is not zeroed first, and `a` is packed into a
//! buffer each thread keeps (zeroed only when it grows).

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::OnceLock;

use rayon::prelude::*;

use super::bf16::{round, word, zip};
use super::mat::Mat;

/// Rows of `a` per micro-kernel tile.
const MR: usize = 12;
/// Columns of `b` per micro-kernel tile: two 16-lane vectors.
const NR: usize = 32;
/// Words of the inner dimension per cache block: a chunk of a `b` panel is 16 KiB, which
/// stays in L1.
const KC: usize = 128;
/// Rows of `a` per group of panels sharing a chunk of `b` (96 rows x 128 words: 48 KiB).
const GROUP_ROWS: usize = 96;

/// The arithmetic of a packed product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// f32 operands, f32 sums (AVX-512F).
    F32,
    /// Operands rounded to bf16, f32 sums (AVX512-BF16).
    Bf16,
}

impl Format {
    /// Values per 32-bit word.
    fn per_word(self) -> usize {
        match self {
            Self::F32 => 1,
            Self::Bf16 => 2,
        }
    }

    /// Words that hold `k` values.
    fn words(self, k: usize) -> usize {
        k.div_ceil(self.per_word())
    }

    /// Rows of a right-hand operand per cache block of the inner dimension: a product
    /// over more rows may be split into chunks of this many at no extra cost.
    pub(super) fn chunk_rows(self) -> usize {
        KC * self.per_word()
    }

    /// Whether this CPU runs the format's micro-kernel, detected once.
    pub fn supported(self) -> bool {
        match self {
            Self::F32 => avx512(),
            Self::Bf16 => super::bf16::supported(),
        }
    }
}

fn avx512() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

simd! {
/// Packs `lines` lines of `m` from line `first` on (its rows; past the last row, zeros)
/// into `out`, word by word: word `p` of line `l` at `p * lines + l`. In bf16 each word is
/// columns `2p` (low half) and `2p + 1` (high half), zero past the last column.
fn pack_lines(m: &Mat, first: usize, lines: usize, format: Format, out: &mut [MaybeUninit<u32>]) {
    let valid = lines.min(m.rows.saturating_sub(first));
    let full = m.cols / 2;
    let at = |r: usize, c: usize| m.data[(first + r) * m.rs + c * m.cs];
    for (p, words) in out.chunks_exact_mut(lines).enumerate() {
        let (data, pad) = words.split_at_mut(valid);
        match format {
            Format::F32 if m.rs == 1 => {
                let src = &m.data[first + p * m.cs..][..valid];
                for (w, &v) in data.iter_mut().zip(src) {
                    w.write(v.to_bits());
                }
            }
            Format::F32 => {
                for (l, w) in data.iter_mut().enumerate() {
                    w.write(at(l, p).to_bits());
                }
            }
            // Two columns, each contiguous across the lines, zipped into one run of words.
            Format::Bf16 if p < full && m.rs == 1 => {
                let lo = &m.data[first + 2 * p * m.cs..][..valid];
                let hi = &m.data[first + (2 * p + 1) * m.cs..][..valid];
                zip(lo, hi, data);
            }
            Format::Bf16 if p < full => {
                for (l, w) in data.iter_mut().enumerate() {
                    w.write(word(at(l, 2 * p), at(l, 2 * p + 1)));
                }
            }
            // An odd last column: its pair's high half is zero.
            Format::Bf16 => {
                for (l, w) in data.iter_mut().enumerate() {
                    w.write(round(at(l, 2 * p)));
                }
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
/// and, in bf16, in the high half of an odd last column.
fn pack_rows(m: &Mat, first: usize, lines: usize, format: Format, out: &mut [MaybeUninit<u32>]) {
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
        match format {
            Format::F32 => {
                for (w, &v) in words.iter_mut().zip(row) {
                    w.write(v.to_bits());
                }
            }
            Format::Bf16 => {
                for (w, two) in words.iter_mut().zip(row.chunks_exact(2)) {
                    w.write(word(two[0], two[1]));
                }
                if full < kp {
                    words[full].write(round(row[2 * full]));
                }
            }
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

/// The values a row function writes: bf16 halves (`u16`) or `f32`, each packed into words
/// of its [`Format`].
pub(super) trait Elem: Copy + Default + Send + Sync {
    const FORMAT: Format;

    /// Words as the values they hold, in order.
    fn of(words: &mut [u32]) -> &mut [Self];

    /// The words of columns `cols` of the [`Format::per_word`] consecutive rows `rows`.
    fn pack(rows: &[Vec<Self>], cols: std::ops::Range<usize>, out: &mut [MaybeUninit<u32>]);
}

impl Elem for f32 {
    const FORMAT: Format = Format::F32;

    fn of(words: &mut [u32]) -> &mut [f32] {
        // SAFETY: u32 and f32 have the same size and alignment, and every bit pattern is a
        // valid f32; the view covers the same, initialised, bytes.
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len()) }
    }

    fn pack(rows: &[Vec<f32>], cols: std::ops::Range<usize>, out: &mut [MaybeUninit<u32>]) {
        let src = &rows[0][cols];
        assert!(
            src.len() == NR && out.len() == NR,
            "packed: a panel is NR wide"
        );
        // SAFETY: both hold NR 4-byte values and do not overlap (one is borrowed shared, the
        // other exclusively); an f32's bits are its word. The count is a constant, so the
        // copy is inlined as vector moves: a call to `memcpy`, or an element loop, per
        // panel and row cost a third of a 32-channel weight gradient.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr().cast(), out.as_mut_ptr(), NR) };
    }
}

impl Elem for u16 {
    const FORMAT: Format = Format::Bf16;

    /// Element `2p` is word `p`'s low half on this little-endian target.
    fn of(words: &mut [u32]) -> &mut [u16] {
        // SAFETY: two u16 fill a u32 exactly, u16's alignment divides u32's, and the view
        // covers the same, initialised, bytes.
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), 2 * words.len()) }
    }

    fn pack(rows: &[Vec<u16>], cols: std::ops::Range<usize>, out: &mut [MaybeUninit<u32>]) {
        interleave(&rows[0][cols.clone()], &rows[1][cols], out);
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

/// A right-hand operand `k x n` packed in panels of [`NR`] columns (panel `j`, word `p`,
/// column `c` at `(j * kp + p) * NR + c`): packed once where one operand meets many
/// left-hand blocks (a convolution's weight).
pub struct Packed {
    words: Vec<u32>,
    k: usize,
    n: usize,
    format: Format,
}

impl Packed {
    /// `b` packed. Only where the format is [`Format::supported`].
    pub(super) fn new(b: &Mat, format: Format) -> Self {
        assert!(
            format.supported(),
            "{format:?} operands need their CPU features"
        );
        let (kp, bt) = (format.words(b.rows), b.t());
        let len = b.cols.div_ceil(NR) * kp * NR;
        // SAFETY: `pack_lines` writes every word of its panel.
        let words = unsafe {
            super::filled(len, kp * NR, |j, panel| {
                pack_lines(&bt, j * NR, NR, format, panel)
            })
        };
        Self {
            words,
            k: b.rows,
            n: b.cols,
            format,
        }
    }

    /// The `k x n` operand whose row `r` is `row(r, …)`, packed: one word's rows are
    /// produced at a time and spread over the column panels, so a lowered convolution
    /// input is packed without being materialised. Only where the format is supported.
    pub(super) fn from_rows<T: Elem>(k: usize, n: usize, row: RowFn<T>) -> Self {
        let format = T::FORMAT;
        assert!(
            format.supported(),
            "{format:?} operands need their CPU features"
        );
        let (per, kp, panels) = (format.per_word(), format.words(k), n.div_ceil(NR));
        let mut rows = vec![vec![T::default(); panels * NR]; per];
        let mut words = Vec::with_capacity(panels * kp * NR);
        let out = &mut words.spare_capacity_mut()[..panels * kp * NR];
        for p in 0..kp {
            for (i, r) in rows.iter_mut().enumerate() {
                match p * per + i {
                    src if src < k => row(src, &mut r[..n]),
                    _ => r.fill(T::default()),
                }
            }
            for j in 0..panels {
                T::pack(
                    &rows,
                    j * NR..(j + 1) * NR,
                    &mut out[(j * kp + p) * NR..][..NR],
                );
            }
        }
        // SAFETY: every word of every panel was written above.
        unsafe { words.set_len(panels * kp * NR) };
        Self {
            words,
            k,
            n,
            format,
        }
    }

    /// Rows of the operand.
    pub fn rows(&self) -> usize {
        self.k
    }

    /// Columns of the operand.
    pub fn cols(&self) -> usize {
        self.n
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

/// Initialised words viewed as possibly uninitialised ones, for the packers.
///
/// # Safety
/// Nothing uninitialised may be written through the view (the packers write only
/// initialised values).
unsafe fn unfilled(words: &mut [u32]) -> &mut [MaybeUninit<u32>] {
    // SAFETY: same layout; the caller writes only initialised values through the view.
    unsafe { &mut *(words as *mut [u32] as *mut [MaybeUninit<u32>]) }
}

/// Writes row `r` of an operand into every element of the slice given (the row's length).
pub(super) type RowFn<'a, T> = &'a (dyn Fn(usize, &mut [T]) + Sync);

/// Writes `row(r, …)` into the first `k` values of `out` (the row function writes each)
/// and zeros after; zeros only when `r` is past the last row, `m`.
fn fill_row<T: Elem>(row: RowFn<T>, r: usize, m: usize, k: usize, out: &mut [T]) {
    let (head, tail) = out.split_at_mut(if r < m { k } else { 0 });
    if r < m {
        row(r, head);
    }
    tail.fill(T::default());
}

/// Where one tile's results go: `rows x cols` of the destination from `ptr` on, row
/// stride `rs`.
struct Tile {
    ptr: *mut f32,
    rs: usize,
    rows: usize,
    cols: usize,
}

/// Defines a micro-kernel: `tile (+)= A·B` over `kc` words, a tile of `MR` rows by `V`
/// vectors of sixteen columns; `b` holds `16 V` words per inner index, `a` holds `MR` rows,
/// row by row `a_rs` words apart when `ROWS`, else word by word. Adds to the tile's
/// current values when `load`, else overwrites them. `$step(acc, a, b)` adds the products
/// of the broadcast word `a` and the sixteen words `b` to `acc`.
macro_rules! micro_kernel {
    ($(#[$doc:meta])* $name:ident, $features:literal, $step:expr) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU has the features named; `a` and `b` hold `kc` words of their `MR` rows
        /// and `16 V` columns; the tile's `rows x cols` lie in writable memory not aliased
        /// by `a` or `b` (and readable when `load`).
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<const ROWS: bool, const MR: usize, const V: usize>(
            a: &[u32],
            a_rs: usize,
            b: &[u32],
            kc: usize,
            t: &Tile,
            load: bool,
        ) {
            use std::arch::x86_64::*;
            let nr = 16 * V;
            if kc > 0 {
                let last = if ROWS { (MR - 1) * a_rs + kc } else { kc * MR };
                assert!(
                    last <= a.len() && kc * nr <= b.len(),
                    "packed kernel: operands too short"
                );
            }
            let masks: [__mmask16; V] = std::array::from_fn(|v| {
                let n = t.cols.saturating_sub(16 * v).min(16);
                ((1u32 << n) - 1) as __mmask16
            });
            // Every row set in one fixed-count loop, which the compiler unrolls into
            // registers (a zeroed array then loaded up to `t.rows` went through the stack,
            // 5% of a step).
            let mut acc: [[__m512; V]; MR] = std::array::from_fn(|r| {
                std::array::from_fn(|v| {
                    if load && r < t.rows {
                        // SAFETY: masked loads touch only the tile's columns of its row
                        // `r`; a vector's pointer may lie past the row (masked off), hence
                        // `wrapping_add`.
                        unsafe {
                            let p = t.ptr.add(r * t.rs).wrapping_add(16 * v);
                            _mm512_maskz_loadu_ps(masks[v], p)
                        }
                    } else {
                        _mm512_setzero_ps()
                    }
                })
            });
            let step = $step;
            let (ap, bp) = (a.as_ptr(), b.as_ptr());
            for p in 0..kc {
                // SAFETY: word `p * nr + nr - 1` and every `a` word read lie inside the
                // slices (asserted above).
                unsafe {
                    let bv: [__m512i; V] = std::array::from_fn(|v| {
                        _mm512_loadu_si512(bp.add(p * nr + 16 * v).cast())
                    });
                    for (r, row) in acc.iter_mut().enumerate() {
                        let w = *ap.add(if ROWS { r * a_rs + p } else { p * MR + r });
                        let x = _mm512_set1_epi32(w as i32);
                        for (acc, &b) in row.iter_mut().zip(&bv) {
                            *acc = step(*acc, x, b);
                        }
                    }
                }
            }
            for (r, row) in acc.iter().enumerate() {
                if r < t.rows {
                    for (v, acc) in row.iter().enumerate() {
                        // SAFETY: masked stores touch only the tile's columns of its row
                        // `r` (the pointers as for the loads).
                        unsafe {
                            let p = t.ptr.add(r * t.rs).wrapping_add(16 * v);
                            _mm512_mask_storeu_ps(p, masks[v], *acc);
                        }
                    }
                }
            }
        }
    };
}

micro_kernel!(
    /// The f32 micro-kernel: one FMA per value.
    kernel_f32,
    "avx512f",
    |acc: __m512, a: __m512i, b: __m512i| _mm512_fmadd_ps(
        _mm512_castsi512_ps(a),
        _mm512_castsi512_ps(b),
        acc
    )
);

micro_kernel!(
    /// The bf16 micro-kernel: `vdpbf16ps` adds a pair of products to each lane.
    kernel_bf16,
    "avx512f,avx512bf16",
    // SAFETY (of the transmutes): `__m512bh` is 512 bits of bf16 pairs, as the words are.
    |acc: __m512, a: __m512i, b: __m512i| unsafe {
        _mm512_dpbf16_ps(
            acc,
            std::mem::transmute::<__m512i, __m512bh>(a),
            std::mem::transmute::<__m512i, __m512bh>(b),
        )
    }
);

/// Runs the micro-kernel of `format`.
///
/// # Safety
/// As the kernels'; the format is [`Format::supported`].
#[cfg(target_arch = "x86_64")]
unsafe fn kernel<const ROWS: bool>(
    format: Format,
    a: &[u32],
    a_rs: usize,
    b: &[u32],
    kc: usize,
    t: &Tile,
    load: bool,
) {
    // SAFETY: the caller's promises.
    unsafe {
        match format {
            Format::F32 => kernel_f32::<ROWS, MR, 2>(a, a_rs, b, kc, t, load),
            Format::Bf16 => kernel_bf16::<ROWS, MR, 2>(a, a_rs, b, kc, t, load),
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel<const ROWS: bool>(
    _: Format,
    _: &[u32],
    _: usize,
    _: &[u32],
    _: usize,
    _: &Tile,
    _: bool,
) {
    unreachable!("packed products are only used where their format is supported")
}

/// A raw destination pointer that may cross to rayon's threads; the row blocks each
/// thread writes are disjoint.
#[derive(Clone, Copy)]
struct Dst(*mut f32);
// SAFETY: shared only across threads that write disjoint rows of the destination.
unsafe impl Send for Dst {}
unsafe impl Sync for Dst {}

/// `dst (+)= a·b` in `b`'s format, `dst` row-major `a.rows x b.cols` with row stride
/// `dst_rs`; parallel over blocks of rows when `parallel`.
///
/// # Safety
/// `a.cols == b.rows()`; `dst` is valid for writes (and reads when `accumulate`) over the
/// whole view and does not alias `a`; `a` was checked against its slice.
pub(super) unsafe fn product(
    dst: *mut f32,
    dst_rs: usize,
    a: Mat,
    b: &Packed,
    accumulate: bool,
    parallel: bool,
) {
    let (format, kp, mr) = (b.format, b.format.words(a.cols), MR);
    let rows = a.cs == 1;
    with_words(a.rows.div_ceil(mr) * mr * kp, |out| {
        // SAFETY: the packers write only initialised words.
        fill_words(
            unsafe { unfilled(out) },
            mr * kp,
            parallel,
            |i, panel| match rows {
                true => pack_rows(&a, i * mr, mr, format, panel),
                false => pack_lines(&a, i * mr, mr, format, panel),
            },
        );
        let pa = Panels {
            words: out,
            rows,
            kp,
        };
        // SAFETY: the caller's promises.
        unsafe { multiply(Dst(dst), dst_rs, a.rows, &pa, b, accumulate, parallel) }
    })
}

/// [`product`] with `a`, `m x k`, given by its rows: `row(r, …)` writes row `r` (rounded to
/// bf16 for a bf16 `b`) straight into the packed panels, [`GROUP_ROWS`] rows at a time, so
/// that a convolution's lowered input is never materialised and its packed rows are
/// multiplied while they are in cache. Single-threaded.
///
/// # Safety
/// `k == b.rows()`; `dst` is valid for writes (and reads when `accumulate`) over
/// `m x b.cols()` with row stride `dst_rs`.
pub(super) unsafe fn product_rows<T: Elem>(
    dst: *mut f32,
    dst_rs: usize,
    m: usize,
    k: usize,
    row: RowFn<T>,
    b: &Packed,
    accumulate: bool,
) {
    assert_eq!(k, b.k, "packed product: inner dimensions differ");
    assert_eq!(T::FORMAT, b.format, "packed product: formats differ");
    let (kp, mr) = (b.format.words(k), MR);
    with_words(GROUP_ROWS * kp, |buf| {
        for first in (0..m).step_by(GROUP_ROWS) {
            let rows = GROUP_ROWS.min(m - first);
            let words = &mut buf[..rows.div_ceil(mr) * mr * kp];
            for (r, w) in words.chunks_exact_mut(kp.max(1)).enumerate() {
                fill_row(row, first + r, m, k, T::of(w));
            }
            let pa = Panels {
                words,
                rows: true,
                kp,
            };
            // SAFETY: rows `first..first + rows` of the destination are inside it (the
            // caller's promise).
            unsafe {
                let dst = Dst(dst.add(first * dst_rs));
                multiply(dst, dst_rs, rows, &pa, b, accumulate, false);
            }
        }
    })
}

/// A packed left-hand operand: panels of its product's `mr` rows, row by row when `rows`,
/// else word by word, `kp` words each.
struct Panels<'a> {
    words: &'a [u32],
    rows: bool,
    kp: usize,
}

/// The tiles of `dst (+)= a·b` for `m` rows of packed `a`.
///
/// # Safety
/// As [`product`], and `b`'s format is supported.
unsafe fn multiply(
    dst: Dst,
    dst_rs: usize,
    m: usize,
    a: &Panels,
    b: &Packed,
    accumulate: bool,
    parallel: bool,
) {
    let (n, kp, pb, format) = (b.n, a.kp, &b.words, b.format);
    let (mr, nr) = (MR, NR);
    let (panels, per_group) = (m.div_ceil(mr), GROUP_ROWS / mr);
    // A group of `a` panels shares each chunk of a `b` panel while it is in L1, so `b` is
    // read once per group instead of once per panel.
    let group = move |g: usize| {
        let dst = dst;
        let mine = g * per_group..((g + 1) * per_group).min(panels);
        for k0 in (0..kp.max(1)).step_by(KC) {
            let kc = KC.min(kp - k0.min(kp));
            let load = accumulate || k0 > 0;
            for j in 0..n.div_ceil(nr) {
                let bw = &pb[(j * kp + k0) * nr..];
                for i in mine.clone() {
                    let tile = Tile {
                        // SAFETY: row `i * mr`, column `j * nr` lie inside the destination.
                        ptr: unsafe { dst.0.add(i * mr * dst_rs + j * nr) },
                        rs: dst_rs,
                        rows: mr.min(m - i * mr),
                        cols: nr.min(n - j * nr),
                    };
                    let panel = &a.words[i * mr * kp..];
                    // SAFETY: the format is supported (the caller's promise); the panels
                    // hold `kc` words from `k0`; the tile lies inside the destination,
                    // which the packed copies do not alias.
                    unsafe {
                        match a.rows {
                            true => {
                                let a = &panel[k0..];
                                kernel::<true>(format, a, kp, bw, kc, &tile, load)
                            }
                            false => {
                                let a = &panel[k0 * mr..];
                                kernel::<false>(format, a, 0, bw, kc, &tile, load)
                            }
                        }
                    }
                }
            }
        }
    };
    let groups = panels.div_ceil(per_group);
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

    /// The product of the operands (rounded to bf16 in that format), summed in f64.
    fn reference(a: Mat, b: Mat, format: Format) -> Vec<f64> {
        let r = |v: f32| match format {
            Format::F32 => f64::from(v),
            Format::Bf16 => f64::from(bf16::from_f32(v).to_f32()),
        };
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

    /// Checks `got` (`m` rows of stride `n + 3`, started at 0.5) against `want`.
    fn check(got: &[f32], want: &[f64], (m, k, n): (usize, usize, usize), accumulate: bool) {
        for i in 0..m {
            for j in 0..n + 3 {
                let got = f64::from(got[i * (n + 3) + j]);
                let exp = if j >= n {
                    0.5
                } else {
                    want[i * n + j] + if accumulate { 0.5 } else { 0.0 }
                };
                // f32 accumulation of k products of size ≤ 1.
                let tol = 1e-6 * (k as f64 + 1.0);
                assert!(
                    (got - exp).abs() <= tol,
                    "{m}x{k}x{n} acc={accumulate} ({i},{j}): {got} vs {exp}"
                );
            }
        }
    }

    /// Edges of every blocking: rows around MR and past a group of GROUP_ROWS, columns
    /// around NR, odd k, k past KC.
    const SHAPES: [(usize, usize, usize); 6] = [
        (1, 1, 1),
        (13, 7, 33),
        (12, 300, 32),
        (37, 257, 70),
        (5, 0, 3),
        (100, 5, 4),
    ];

    #[test]
    fn equals_the_product_at_every_shape_layout_and_format() {
        for format in [Format::F32, Format::Bf16] {
            if !format.supported() {
                eprintln!("skipped {format:?}: this CPU lacks its features");
                continue;
            }
            for (m, k, n) in SHAPES {
                let (x, y) = (data(m * k, 1), data(k * n, 2));
                for transpose in [false, true] {
                    let (a, b) = if transpose {
                        (Mat::rows(&x, k, m).t(), Mat::rows(&y, n, k).t())
                    } else {
                        (Mat::rows(&x, m, k), Mat::rows(&y, k, n))
                    };
                    let want = reference(a, b, format);
                    for accumulate in [false, true] {
                        let mut c = vec![0.5f32; m * (n + 3)];
                        // SAFETY: supported; `c` covers `m` rows of stride `n + 3`.
                        unsafe {
                            product(
                                c.as_mut_ptr(),
                                n + 3,
                                a,
                                &Packed::new(&b, format),
                                accumulate,
                                transpose,
                            )
                        };
                        check(&c, &want, (m, k, n), accumulate);
                    }
                }
            }
        }
    }

    /// Both row-function forms: the left operand by [`product_rows`], the right one by
    /// [`Packed::from_rows`].
    fn rows_case<T: Elem>(convert: impl Fn(f32) -> T + Sync) {
        if !T::FORMAT.supported() {
            eprintln!("skipped {:?}: this CPU lacks its features", T::FORMAT);
            return;
        }
        for (m, k, n) in SHAPES {
            let (x, y) = (data(m * k, 1), data(k * n, 2));
            let (a, b) = (Mat::rows(&x, m, k), Mat::rows(&y, k, n));
            let want = reference(a, b, T::FORMAT);
            let a_row = |r: usize, out: &mut [T]| {
                for (o, &v) in out.iter_mut().zip(&x[r * k..][..k]) {
                    *o = convert(v);
                }
            };
            let b_row = |r: usize, out: &mut [T]| {
                for (o, &v) in out.iter_mut().zip(&y[r * n..][..n]) {
                    *o = convert(v);
                }
            };
            for accumulate in [false, true] {
                let mut c = vec![0.5f32; m * (n + 3)];
                let packed = Packed::new(&b, T::FORMAT);
                // SAFETY: supported; `c` covers `m` rows of stride `n + 3`.
                unsafe { product_rows(c.as_mut_ptr(), n + 3, m, k, &a_row, &packed, accumulate) };
                check(&c, &want, (m, k, n), accumulate);
                let mut c = vec![0.5f32; m * (n + 3)];
                let packed = Packed::from_rows(k, n, &b_row);
                // SAFETY: as above.
                unsafe { product(c.as_mut_ptr(), n + 3, a, &packed, accumulate, false) };
                check(&c, &want, (m, k, n), accumulate);
            }
        }
    }

    #[test]
    fn row_functions_give_the_same_product() {
        rows_case::<f32>(|v| v);
        rows_case::<u16>(|v| bf16::from_f32(v).to_bits());
    }
}
