//! Image augmentations on `f32` CHW buffers with values in `[0, 1]`.
//!
//! The semantics follow torchvision (crop sampling of `RandomResizedCrop.get_params`,
//! bilinear resampling with `align_corners=False`, `ColorJitter`'s random order), so a
//! recipe written for PyTorch means the same here. Randomness comes from the caller's
//! RNG: one RNG per (seed, epoch, sample, view) makes every view reproducible whatever
//! the thread that draws it.

pub mod blur;
pub mod colour;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use blur::{auto_kernel_size, gaussian_kernel};

/// One view's augmentation pipeline, applied in this order on `[0, 1]` pixels (the
/// SimCLR / MoCo v2 / BYOL order): random resized crop, flip, colour jitter (brightness,
/// contrast, saturation, hue in a random order, probability `jitter_p`), grayscale, Gaussian
/// blur, solarisation, then normalisation. The defaults are recipe R1: the operations
/// after the jitter are off, and saturation and hue are 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Output side in pixels; 0 keeps the input size.
    pub size: usize,
    /// Fraction of the image area a crop covers, drawn uniformly from this range.
    pub crop_scale: [f32; 2],
    /// Aspect ratio range of the crop, drawn log-uniformly.
    pub crop_ratio: [f32; 2],
    /// Probability of a horizontal flip.
    pub flip_p: f32,
    /// Probability of applying the colour jitter.
    pub jitter_p: f32,
    /// Brightness factor drawn from `[1 - b, 1 + b]`.
    pub brightness: f32,
    /// Contrast factor drawn from `[1 - c, 1 + c]`.
    pub contrast: f32,
    /// Saturation factor drawn from `[1 - s, 1 + s]`; 0 leaves it out of the jitter. The
    /// strengths are at most 1, so this is torchvision's `[max(0, 1 - s), 1 + s]`.
    pub saturation: f32,
    /// Hue shift drawn from `[-h, h]` turns, `h <= 0.5`; 0 leaves it out of the jitter.
    pub hue: f32,
    /// Probability of converting to grayscale.
    pub grayscale_p: f32,
    /// Probability of a Gaussian blur.
    pub blur_p: f32,
    /// Range of the blur's standard deviation in pixels, drawn uniformly.
    pub blur_sigma: [f32; 2],
    /// Odd kernel size of the blur; 0 takes SimCLR's 10% of the output side, made odd.
    pub blur_kernel: usize,
    /// Probability of solarising.
    pub solarize_p: f32,
    /// Pixels at or above this value are inverted when solarising.
    pub solarize_threshold: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            size: 0,
            crop_scale: [0.2, 1.0],
            crop_ratio: [3.0 / 4.0, 4.0 / 3.0],
            flip_p: 0.5,
            jitter_p: 0.8,
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.0,
            hue: 0.0,
            grayscale_p: 0.0,
            blur_p: 0.0,
            blur_sigma: [0.1, 2.0],
            blur_kernel: 0,
            solarize_p: 0.0,
            solarize_threshold: 0.5,
        }
    }
}

impl AugmentConfig {
    /// Checks every field; errors name `prefix.field` and the allowed range.
    pub fn validate(&self, prefix: &str) -> Result<()> {
        let bad = |field: &str, value: String, allowed: &str| {
            Err(Error::config(format!("{prefix}.{field}"), value, allowed))
        };
        let [s0, s1] = self.crop_scale;
        if !(0.0 < s0 && s0 <= s1 && s1 <= 1.0) {
            return bad(
                "crop_scale",
                format!("{:?}", self.crop_scale),
                "0 < min <= max <= 1",
            );
        }
        let [r0, r1] = self.crop_ratio;
        if !(0.0 < r0 && r0 <= r1 && r1.is_finite()) {
            return bad(
                "crop_ratio",
                format!("{:?}", self.crop_ratio),
                "0 < min <= max",
            );
        }
        for (name, p) in [
            ("flip_p", self.flip_p),
            ("jitter_p", self.jitter_p),
            ("grayscale_p", self.grayscale_p),
            ("blur_p", self.blur_p),
            ("solarize_p", self.solarize_p),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return bad(name, p.to_string(), "a probability in [0, 1]");
            }
        }
        for (name, s) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
        ] {
            if !(0.0..=1.0).contains(&s) {
                return bad(name, s.to_string(), "a strength in [0, 1]");
            }
        }
        if !(0.0..=0.5).contains(&self.hue) {
            return bad("hue", self.hue.to_string(), "a shift in [0, 0.5]");
        }
        let [b0, b1] = self.blur_sigma;
        if !(0.0 < b0 && b0 <= b1 && b1.is_finite()) {
            return bad(
                "blur_sigma",
                format!("{:?}", self.blur_sigma),
                "0 < min <= max",
            );
        }
        if self.blur_kernel.is_multiple_of(2) && self.blur_kernel != 0 {
            return bad(
                "blur_kernel",
                self.blur_kernel.to_string(),
                "an odd size, or 0 for 10% of the side",
            );
        }
        if !(0.0..=1.0).contains(&self.solarize_threshold) {
            return bad(
                "solarize_threshold",
                self.solarize_threshold.to_string(),
                "a pixel value in [0, 1]",
            );
        }
        Ok(())
    }
}

/// A crop box in pixels: top, left, height, width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

/// torchvision's `RandomResizedCrop.get_params`: ten tries at a box of random area and
/// aspect ratio inside the image, else the largest centred box within the ratio range.
pub fn sample_crop(
    rng: &mut impl Rng,
    h: usize,
    w: usize,
    scale: [f32; 2],
    ratio: [f32; 2],
) -> CropBox {
    let area = (h * w) as f32;
    let (lr0, lr1) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let target = area * (scale[0] + (scale[1] - scale[0]) * rng.random::<f32>());
        let aspect = (lr0 + (lr1 - lr0) * rng.random::<f32>()).exp();
        let cw = (target * aspect).sqrt().round() as usize;
        let ch = (target / aspect).sqrt().round() as usize;
        if cw > 0 && cw <= w && ch > 0 && ch <= h {
            let top = rng.random_range(0..=h - ch);
            let left = rng.random_range(0..=w - cw);
            return CropBox {
                top,
                left,
                height: ch,
                width: cw,
            };
        }
    }
    let in_ratio = w as f32 / h as f32;
    let (cw, ch) = if in_ratio < ratio[0] {
        (w, ((w as f32 / ratio[0]).round() as usize).min(h))
    } else if in_ratio > ratio[1] {
        (((h as f32 * ratio[1]).round() as usize).min(w), h)
    } else {
        (w, h)
    };
    CropBox {
        top: (h - ch) / 2,
        left: (w - cw) / 2,
        height: ch,
        width: cw,
    }
}

/// Crop box `b` of an image of `[h, w]` pixels, on the same image at `[sh, sw]`: edges
/// scaled (start rounded down, end up), at least one pixel.
fn scale_box(b: CropBox, [h, w]: [usize; 2], [sh, sw]: [usize; 2]) -> CropBox {
    if [h, w] == [sh, sw] {
        return b;
    }
    let edge = |start: usize, len: usize, full: usize, small: usize| {
        let s = (start * small / full).min(small - 1);
        let e = ((start + len) * small).div_ceil(full).clamp(s + 1, small);
        (s, e - s)
    };
    let (top, height) = edge(b.top, b.height, h, sh);
    let (left, width) = edge(b.left, b.width, w, sw);
    CropBox {
        top,
        left,
        height,
        width,
    }
}

/// Source coordinates of `out` output pixels resampling a crop of `len` pixels starting
/// at `start` (bilinear, `align_corners=False`, clamped to the crop).
fn source_coords(start: usize, len: usize, out: usize) -> Vec<f32> {
    let scale = len as f32 / out as f32;
    (0..out)
        .map(|d| (((d as f32 + 0.5) * scale - 0.5).max(0.0)).min(len as f32 - 1.0) + start as f32)
        .collect()
}

/// Resamples crop `b` of the `[c, h, w]` image `src` to `[c, out, out]` bilinearly, flipped
/// horizontally when `flip`, into `dst`.
pub fn crop_resize(
    src: &[f32],
    [c, h, w]: [usize; 3],
    b: CropBox,
    out: usize,
    flip: bool,
    dst: &mut [f32],
) {
    let (ys, xs) = bilinear_taps(b, out, flip, [h, w]);
    for ch in 0..c {
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        let out_plane = &mut dst[ch * out * out..(ch + 1) * out * out];
        for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
            let (r0, r1) = (&plane[y0 * w..(y0 + 1) * w], &plane[y1 * w..(y1 + 1) * w]);
            for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
                let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
                let bot = r1[x0] + (r1[x1] - r1[x0]) * fx;
                out_plane[oy * out + ox] = top + (bot - top) * fy;
            }
        }
    }
}

/// [`crop_resize`] of an 8-bit interleaved (`HWC`) image: each tap is read as `byte /
/// 255`, so the result equals [`crop_resize`] of the image converted to floats, without
/// converting the whole image (a 12-megapixel photo would be 144 MB of floats).
pub fn crop_resize_hwc8(
    src: &[u8],
    [c, h, w]: [usize; 3],
    b: CropBox,
    out: usize,
    flip: bool,
    dst: &mut [f32],
) {
    let (ys, xs) = bilinear_taps(b, out, flip, [h, w]);
    let row = w * c;
    for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
        let (r0, r1) = (
            &src[y0 * row..(y0 + 1) * row],
            &src[y1 * row..(y1 + 1) * row],
        );
        for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
            for ch in 0..c {
                let at = |r: &[u8], x: usize| f32::from(r[x * c + ch]) / 255.0;
                let top = at(r0, x0) + (at(r0, x1) - at(r0, x0)) * fx;
                let bot = at(r1, x0) + (at(r1, x1) - at(r1, x0)) * fx;
                dst[ch * out * out + oy * out + ox] = top + (bot - top) * fy;
            }
        }
    }
}

/// The bilinear taps of crop `b` resampled to `out` x `out` from an image of `[h, w]`:
/// for each output row and column, the two source indices and the weight of the second.
type Taps = Vec<(usize, usize, f32)>;

fn bilinear_taps(b: CropBox, out: usize, flip: bool, [h, w]: [usize; 2]) -> (Taps, Taps) {
    let taps = |s: f32, n: usize| {
        let i0 = s.floor() as usize;
        (i0, (i0 + 1).min(n - 1), s - i0 as f32)
    };
    let ys = source_coords(b.top, b.height, out)
        .into_iter()
        .map(|s| taps(s, h))
        .collect();
    let mut sx = source_coords(b.left, b.width, out);
    if flip {
        sx.reverse();
    }
    (ys, sx.into_iter().map(|s| taps(s, w)).collect())
}

/// Multiplies every value by `factor`, clamped to `[0, 1]`.
pub fn brightness(img: &mut [f32], factor: f32) {
    img.iter_mut()
        .for_each(|v| *v = (*v * factor).clamp(0.0, 1.0));
}

/// Blends with the image's mean grey level: `f * x + (1 - f) * mean`, clamped to `[0, 1]`.
/// The mean is of the luma (ITU-R 601) for three channels, of the values otherwise.
pub fn contrast(img: &mut [f32], channels: usize, factor: f32) {
    let mean = grey_mean(img, channels);
    img.iter_mut()
        .for_each(|v| *v = (factor * *v + (1.0 - factor) * mean).clamp(0.0, 1.0));
}

fn grey_mean(img: &[f32], channels: usize) -> f32 {
    let n = img.len() / channels;
    if channels == 3 {
        let (r, rest) = img.split_at(n);
        let (g, b) = rest.split_at(n);
        let s: f32 = (0..n).map(|i| colour::luma(r[i], g[i], b[i])).sum();
        s / n as f32
    } else {
        img.iter().sum::<f32>() / img.len() as f32
    }
}

/// `(x - mean[c]) / std[c]` in place.
pub fn normalise(img: &mut [f32], mean: &[f32], std: &[f32]) {
    let plane = img.len() / mean.len();
    for (c, chunk) in img.chunks_mut(plane).enumerate() {
        let (m, s) = (mean[c], std[c]);
        chunk.iter_mut().for_each(|v| *v = (*v - m) / s);
    }
}

/// Draws one augmented view of the `[c, h, w]` image `src` into `dst` (`[c, out, out]`).
pub fn augment(
    cfg: &AugmentConfig,
    rng: &mut impl Rng,
    src: &[f32],
    shape: [usize; 3],
    mean: &[f32],
    std: &[f32],
    dst: &mut [f32],
) {
    let full = [shape[1], shape[2]];
    augment_reduced(cfg, rng, Src::Chw(src), shape, full, (mean, std), dst);
}

/// The pixels a view is cut from: `[C, H, W]` floats, or 8-bit interleaved pixels.
#[derive(Debug, Clone, Copy)]
pub enum Src<'a> {
    Chw(&'a [f32]),
    Hwc8(&'a [u8]),
}

/// [`augment`] of an image decoded smaller than its full `[h, w]` (`full`): the crop is
/// drawn on the full image, as it would be at full size, and cut from `src` at its scale.
pub fn augment_reduced(
    cfg: &AugmentConfig,
    rng: &mut impl Rng,
    src: Src<'_>,
    shape: [usize; 3],
    [fh, fw]: [usize; 2],
    (mean, std): (&[f32], &[f32]),
    dst: &mut [f32],
) {
    let [c, h, w] = shape;
    let out = output_size(cfg, shape);
    let b = sample_crop(rng, fh, fw, cfg.crop_scale, cfg.crop_ratio);
    let b = scale_box(b, [fh, fw], [h, w]);
    let flip = rng.random::<f32>() < cfg.flip_p;
    match src {
        Src::Chw(v) => crop_resize(v, shape, b, out, flip, dst),
        Src::Hwc8(v) => crop_resize_hwc8(v, shape, b, out, flip, dst),
    }
    if rng.random::<f32>() < cfg.jitter_p {
        colour_jitter(cfg, rng, dst, c);
    }
    if rng.random::<f32>() < cfg.grayscale_p {
        colour::grayscale(dst, c);
    }
    if rng.random::<f32>() < cfg.blur_p {
        let [s0, s1] = cfg.blur_sigma;
        let sigma = s0 + (s1 - s0) * rng.random::<f32>();
        let size = match cfg.blur_kernel {
            0 => auto_kernel_size(out),
            k => k,
        };
        blur::blur(dst, [c, out, out], &gaussian_kernel(size, sigma));
    }
    if rng.random::<f32>() < cfg.solarize_p {
        colour::solarize(dst, cfg.solarize_threshold);
    }
    normalise(dst, mean, std);
}

/// One of `ColorJitter`'s adjustments with its drawn factor.
#[derive(Debug, Clone, Copy)]
enum Jitter {
    Brightness(f32),
    Contrast(f32),
    Saturation(f32),
    Hue(f32),
}

/// torchvision's `ColorJitter`: factors drawn as brightness, contrast, saturation, hue
/// (the last two only when on), then applied in a uniformly random order (Fisher-Yates).
/// The list starts reversed so that with brightness and contrast alone the one swap draw
/// is R1's coin (`u < 0.5`: brightness first) and R1's random stream is unchanged.
fn colour_jitter(cfg: &AugmentConfig, rng: &mut impl Rng, img: &mut [f32], c: usize) {
    let mut factor = |x: f32| 1.0 - x + 2.0 * x * rng.random::<f32>();
    let bf = factor(cfg.brightness);
    let cf = factor(cfg.contrast);
    let sf = (cfg.saturation > 0.0).then(|| factor(cfg.saturation));
    let hf = (cfg.hue > 0.0).then(|| cfg.hue * (2.0 * rng.random::<f32>() - 1.0));
    let mut ops = [Jitter::Brightness(bf); 4];
    let mut n = 0;
    for op in [
        hf.map(Jitter::Hue),
        sf.map(Jitter::Saturation),
        Some(Jitter::Contrast(cf)),
        Some(Jitter::Brightness(bf)),
    ]
    .into_iter()
    .flatten()
    {
        ops[n] = op;
        n += 1;
    }
    for i in (1..n).rev() {
        let j = ((rng.random::<f32>() * (i + 1) as f32) as usize).min(i);
        ops.swap(i, j);
    }
    for op in &ops[..n] {
        match *op {
            Jitter::Brightness(f) => brightness(img, f),
            Jitter::Contrast(f) => contrast(img, c, f),
            Jitter::Saturation(f) => colour::saturation(img, c, f),
            Jitter::Hue(f) => colour::hue(img, c, f),
        }
    }
}

/// The side of the views `cfg` makes from images of `shape`.
pub fn output_size(cfg: &AugmentConfig, [_, h, _]: [usize; 3]) -> usize {
    if cfg.size == 0 {
        h
    } else {
        cfg.size
    }
}
