//! The micro-kernels' output tile: [`MR`] rows by [`NR`] columns of f32 accumulators, 24 of
//! AVX-512's 32 vector registers, and where a tile's results go.

/// Rows of a tile.
pub(super) const MR: usize = 12;
/// Columns of a tile: two 16-lane vectors.
pub(super) const NR: usize = 32;

/// Where one tile's results go: `rows x cols` of the destination from `ptr` on, row
/// stride `rs`.
pub(super) struct Tile {
    pub ptr: *mut f32,
    pub rs: usize,
    pub rows: usize,
    pub cols: usize,
}

#[cfg(target_arch = "x86_64")]
pub(super) use x86::*;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Tile, MR};
    use std::arch::x86_64::*;

    /// The column masks of a tile: its first 16 columns and the next 16.
    pub(in crate::kernels) fn column_masks(t: &Tile) -> (__mmask16, __mmask16) {
        let mask = |lo: usize| -> __mmask16 {
            let n = t.cols.saturating_sub(lo).min(16);
            ((1u32 << n) - 1) as __mmask16
        };
        (mask(0), mask(16))
    }

    /// Writes the accumulators' first `t.rows` rows into the tile, the columns under the
    /// masks of [`column_masks`].
    ///
    /// # Safety
    /// The CPU has AVX-512F; the tile's `rows x cols` lie in writable memory.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(in crate::kernels) unsafe fn store(acc: &[[__m512; 2]; MR], t: &Tile) {
        let (m0, m1) = column_masks(t);
        // A fixed-count loop, unrolled with the accumulators in registers (one bounded by
        // `t.rows` went through the stack).
        for (r, row) in acc.iter().enumerate() {
            if r < t.rows {
                // SAFETY: masked stores touch only the tile's columns of its row `r`; the
                // second half's pointer may lie past the row (masked off): `wrapping_add`.
                unsafe {
                    let p = t.ptr.add(r * t.rs);
                    _mm512_mask_storeu_ps(p, m0, row[0]);
                    _mm512_mask_storeu_ps(p.wrapping_add(16), m1, row[1]);
                }
            }
        }
    }
}
