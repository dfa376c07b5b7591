//! bf16 rounding and the switch for `train.precision = "bf16"`.
//!
//! Under bf16, convolutions and fully connected layers round both operands to bf16 (round
//! to nearest, ties to even) while packing them ([`super::packed`]), and AVX512-BF16's
//! `vdpbf16ps` sums the products in f32, two bf16 products into each of sixteen f32 lanes
//! per instruction (`acc += a₀b₀ + a₁b₁`), twice the multiply-adds of an f32 FMA of the
//! same width. The result, like the weights and everything outside the products, stays
//! f32: this is the arithmetic of PyTorch's `torch.autocast("cpu", dtype=torch.bfloat16)`
//! for matrix products and convolutions, except that the output is not rounded to bf16 as
//! well. Rounding is checked against `half`.
//!
//! `vdpbf16ps` treats subnormal inputs and outputs as zero, whatever MXCSR says: products
//! below about 1e-38 are flushed, which f32 training never notices.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

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
pub(super) fn round(v: f32) -> u32 {
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
pub(super) fn word(lo: f32, hi: f32) -> u32 {
    round(lo) | (round(hi) << 16)
}

/// `out[i]` = the word of `lo[i]` and `hi[i]`, sixteen at a time with AVX-512 (the runs are
/// as short as a panel's 12 lines, too short for the compiler's vector loop).
pub(super) fn zip(lo: &[f32], hi: &[f32], out: &mut [MaybeUninit<u32>]) {
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
/// `dst[i]` = `src[i]` rounded to bf16.
fn to_bf16(src: &[f32], dst: &mut [MaybeUninit<u16>]) {
    for (d, &v) in dst.iter_mut().zip(src) {
        d.write(round(v) as u16);
    }
}
}

/// `x` rounded to bf16, in parallel: a convolution's input, rounded once instead of once
/// for each of the up to `kh * kw` lowered rows that hold each value.
pub(super) fn rounded(x: &[f32]) -> Vec<u16> {
    const CHUNK: usize = 1 << 14;
    // SAFETY: `to_bf16` writes every element of its chunk (the same length of `x`).
    unsafe { super::filled(x.len(), CHUNK, |i, d| to_bf16(&x[i * CHUNK..], d)) }
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
}
