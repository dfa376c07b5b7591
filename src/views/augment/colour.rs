//! Colour operations of torchvision's `ColorJitter`, `RandomGrayscale` and
//! `RandomSolarize` on `[c, h, w]` buffers in `[0, 1]`. Saturation, hue and grayscale act
//! on RGB images only: with one channel there is no colour to change.

/// ITU-R 601-2 luma `0.299 R + 0.587 G + 0.114 B` (torchvision `rgb_to_grayscale`).
pub fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// The R, G and B planes of a 3-channel image.
fn planes(img: &mut [f32]) -> (&mut [f32], &mut [f32], &mut [f32]) {
    let n = img.len() / 3;
    let (r, rest) = img.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    (r, g, b)
}

/// Replaces every channel by the luma; a no-op unless `channels == 3`.
pub fn grayscale(img: &mut [f32], channels: usize) {
    if channels != 3 {
        return;
    }
    let (r, g, b) = planes(img);
    for i in 0..r.len() {
        let l = luma(r[i], g[i], b[i]);
        (r[i], g[i], b[i]) = (l, l, l);
    }
}

/// Blends each pixel with its own luma, `f x + (1 - f) luma`, clamped to `[0, 1]`
/// (torchvision `adjust_saturation`); a no-op unless `channels == 3`.
pub fn saturation(img: &mut [f32], channels: usize, factor: f32) {
    if channels != 3 {
        return;
    }
    let (r, g, b) = planes(img);
    let mix = |v: f32, l: f32| (factor * v + (1.0 - factor) * l).clamp(0.0, 1.0);
    for i in 0..r.len() {
        let l = luma(r[i], g[i], b[i]);
        (r[i], g[i], b[i]) = (mix(r[i], l), mix(g[i], l), mix(b[i], l));
    }
}

/// Rotates the hue by `shift` turns, `h' = (h + shift) mod 1` in HSV space (torchvision
/// `adjust_hue`, `shift` in `[-0.5, 0.5]`); a no-op unless `channels == 3`.
pub fn hue(img: &mut [f32], channels: usize, shift: f32) {
    if channels != 3 {
        return;
    }
    let (r, g, b) = planes(img);
    for i in 0..r.len() {
        let (h, s, v) = rgb_to_hsv(r[i], g[i], b[i]);
        (r[i], g[i], b[i]) = hsv_to_rgb((h + shift).rem_euclid(1.0), s, v);
    }
}

/// torchvision's `_rgb2hsv`: hue in `[0, 1)`, saturation `(max - min) / max`, value `max`.
pub fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let chroma = max - min;
    if chroma == 0.0 {
        return (0.0, 0.0, max);
    }
    let (rc, gc, bc) = ((max - r) / chroma, (max - g) / chroma, (max - b) / chroma);
    let h = if max == r {
        bc - gc
    } else if max == g {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    ((h / 6.0 + 1.0) % 1.0, chroma / max, max)
}

/// torchvision's `_hsv2rgb`: the sextant `floor(6 h)` picks which of `v`, `p`, `q`, `t` is
/// each channel.
pub fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let h6 = h * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let p = (v * (1.0 - s)).clamp(0.0, 1.0);
    let q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
    let t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
    match (i as i64).rem_euclid(6) {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

/// `x >= threshold -> 1 - x` (torchvision `solarize` on `[0, 1]` pixels).
pub fn solarize(img: &mut [f32], threshold: f32) {
    img.iter_mut()
        .filter(|v| **v >= threshold)
        .for_each(|v| *v = 1.0 - *v);
}
