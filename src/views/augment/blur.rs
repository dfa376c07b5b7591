//! Gaussian blur with torchvision's `GaussianBlur` semantics: a normalised kernel of odd
//! size, reflect padding, applied as two 1-D passes (the 2-D kernel is their outer
//! product, so the result is the same at a fraction of the cost).

/// Taps `exp(-x^2 / (2 sigma^2))` at `x = -(size-1)/2 ..= (size-1)/2`, divided by their sum
/// (torchvision `_get_gaussian_kernel1d`).
pub fn gaussian_kernel(size: usize, sigma: f32) -> Vec<f32> {
    let half = (size as f32 - 1.0) * 0.5;
    let pdf: Vec<f32> = (0..size)
        .map(|i| {
            let x = (i as f32 - half) / sigma;
            (-0.5 * x * x).exp()
        })
        .collect();
    let sum: f32 = pdf.iter().sum();
    pdf.into_iter().map(|p| p / sum).collect()
}

/// SimCLR's kernel size for a side of `side` pixels: 10% of it, made odd
/// (`int(0.1 * side) // 2 * 2 + 1`).
pub fn auto_kernel_size(side: usize) -> usize {
    side / 10 / 2 * 2 + 1
}

/// Source index of padded position `i` (from `-radius`) in a line of `n` pixels under
/// reflect padding (`-1 -> 1`, `n -> n - 2`), folded again for kernels wider than `n`.
fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

/// Blurs each plane of the `[c, h, w]` image `img` in place with the 1-D `kernel` along
/// rows, then columns. Values are clamped to `[0, 1]` against rounding.
pub fn blur(img: &mut [f32], [c, h, w]: [usize; 3], kernel: &[f32]) {
    let r = kernel.len() / 2;
    let xs: Vec<usize> = (0..w + 2 * r)
        .map(|i| reflect(i as isize - r as isize, w))
        .collect();
    let ys: Vec<usize> = (0..h + 2 * r)
        .map(|i| reflect(i as isize - r as isize, h))
        .collect();
    let mut tmp = vec![0.0f32; h * w];
    for plane in img.chunks_mut(h * w).take(c) {
        for y in 0..h {
            let row = &plane[y * w..(y + 1) * w];
            for (x, t) in tmp[y * w..(y + 1) * w].iter_mut().enumerate() {
                *t = kernel
                    .iter()
                    .zip(&xs[x..])
                    .map(|(k, &sx)| k * row[sx])
                    .sum();
            }
        }
        for y in 0..h {
            let out = &mut plane[y * w..(y + 1) * w];
            out.fill(0.0);
            for (k, &sy) in kernel.iter().zip(&ys[y..]) {
                let src = &tmp[sy * w..(sy + 1) * w];
                out.iter_mut().zip(src).for_each(|(o, s)| *o += k * s);
            }
            out.iter_mut().for_each(|o| *o = o.clamp(0.0, 1.0));
        }
    }
}
