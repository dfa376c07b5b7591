//! Preview grids of a split as RGB pictures: images with rows of augmented views, or
//! time series as line plots.

use std::path::Path;

use image::{Rgb, RgbImage};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Split;
use crate::error::{Error, Result};
use crate::views::augment::{augment, output_size, AugmentConfig};

/// Pixels between cells and around the grid.
const GAP: u32 = 4;
/// Side, in pixels, that small images are enlarged towards (whole multiples only).
const CELL: usize = 96;
/// Size of a series plot.
const PLOT: (u32, u32) = (192, 96);
const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const FRAME: Rgb<u8> = Rgb([200, 200, 200]);
/// Line colours of the dimensions of a series, reused in turn.
const PALETTE: [[u8; 3]; 6] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
];

/// True for the `[channels, 1, length]` shape of time series.
pub fn is_series(shape: [usize; 3]) -> bool {
    shape[1] == 1 && shape[2] > 1
}

/// Up to `n` sample indices: the first sample of each label in label order, then the
/// following samples in split order.
pub fn pick(split: &Split, n: usize) -> Vec<usize> {
    let mut firsts: Vec<(u32, usize)> = Vec::new();
    for (i, &l) in split.labels.iter().enumerate() {
        if !firsts.iter().any(|&(fl, _)| fl == l) {
            firsts.push((l, i));
        }
    }
    firsts.sort_unstable();
    let mut out: Vec<usize> = firsts.into_iter().map(|(_, i)| i).take(n).collect();
    for i in 0..split.len() {
        if out.len() >= n {
            break;
        }
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// Images `picks` of `split` in the first row and, below, `views` rows of augmented views
/// of each drawn with `cfg` (no normalisation) from an RNG seeded with `seed`. Small
/// images are enlarged with nearest-neighbour sampling.
pub fn image_grid(
    split: &Split,
    picks: &[usize],
    views: usize,
    cfg: &AugmentConfig,
    seed: u64,
) -> RgbImage {
    let shape = split.shape;
    let [c, h, w] = shape;
    let out = output_size(cfg, shape);
    let (cell_h, cell_w) = (h.max(out), w.max(out));
    let scale = (CELL / cell_h.max(cell_w)).max(1);
    let (cell_h, cell_w) = ((cell_h * scale) as u32, (cell_w * scale) as u32);
    let mut img = canvas(picks.len(), views + 1, cell_w, cell_h);
    let (mean, std) = (vec![0.0; c], vec![1.0; c]);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut view = vec![0.0; c * out * out];
    for (col, &i) in picks.iter().enumerate() {
        let x = GAP + col as u32 * (cell_w + GAP);
        draw(&mut img, split.sample(i), shape, scale, (x, GAP));
        for row in 1..=views {
            augment(
                cfg,
                &mut rng,
                split.sample(i),
                shape,
                &mean,
                &std,
                &mut view,
            );
            let y = GAP + row as u32 * (cell_h + GAP);
            draw(&mut img, &view, [c, out, out], scale, (x, y));
        }
    }
    img
}

/// Series `picks` of `split` as line plots in one row, each scaled to its own range,
/// one colour per dimension.
pub fn series_row(split: &Split, picks: &[usize]) -> RgbImage {
    let (pw, ph) = PLOT;
    let mut img = canvas(picks.len(), 1, pw, ph);
    let [dims, _, len] = split.shape;
    for (col, &i) in picks.iter().enumerate() {
        let (x0, y0) = (GAP + col as u32 * (pw + GAP), GAP);
        for x in 0..pw {
            img.put_pixel(x0 + x, y0, FRAME);
            img.put_pixel(x0 + x, y0 + ph - 1, FRAME);
        }
        for y in 0..ph {
            img.put_pixel(x0, y0 + y, FRAME);
            img.put_pixel(x0 + pw - 1, y0 + y, FRAME);
        }
        let s = split.sample(i);
        let (lo, hi) = s
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let range = if hi > lo { hi - lo } else { 1.0 };
        let inner = (pw - 4, ph - 4);
        let y_of = |v: f32| (((hi - v) / range) * (inner.1 - 1) as f32).round() as u32;
        for d in 0..dims {
            let colour = Rgb(PALETTE[d % PALETTE.len()]);
            let values = &s[d * len..(d + 1) * len];
            let at = |x: u32| {
                let t = x as f32 * (len - 1) as f32 / (inner.0 - 1) as f32;
                let k = (t as usize).min(len.saturating_sub(2));
                let f = t - k as f32;
                let v = values[k] + (values[(k + 1).min(len - 1)] - values[k]) * f;
                y_of(v)
            };
            let mut prev = at(0);
            for x in 0..inner.0 {
                let y = at(x);
                for yy in prev.min(y)..=prev.max(y) {
                    img.put_pixel(x0 + 2 + x, y0 + 2 + yy, colour);
                }
                prev = y;
            }
        }
    }
    img
}

/// Writes `img` as a PNG file.
pub fn save(img: &RgbImage, path: &Path) -> Result<()> {
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| Error::data(path, format!("cannot write PNG: {e}")))
}

/// A blank grid of `cols x rows` cells of `w x h` pixels.
fn canvas(cols: usize, rows: usize, w: u32, h: u32) -> RgbImage {
    let width = GAP + cols.max(1) as u32 * (w + GAP);
    let height = GAP + rows as u32 * (h + GAP);
    RgbImage::from_pixel(width, height, BACKGROUND)
}

/// Draws the `[c, h, w]` image `src` (values in `[0, 1]`) at `at`, each pixel a
/// `scale x scale` block; three channels are RGB, otherwise the first is grey.
pub fn draw(img: &mut RgbImage, src: &[f32], [c, h, w]: [usize; 3], scale: usize, at: (u32, u32)) {
    let plane = h * w;
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    for y in 0..h {
        for x in 0..w {
            let k = y * w + x;
            let px = if c == 3 {
                Rgb([byte(src[k]), byte(src[plane + k]), byte(src[2 * plane + k])])
            } else {
                let g = byte(src[k]);
                Rgb([g, g, g])
            };
            for dy in 0..scale {
                for dx in 0..scale {
                    let (px_x, px_y) = ((x * scale + dx) as u32, (y * scale + dy) as u32);
                    img.put_pixel(at.0 + px_x, at.1 + px_y, px);
                }
            }
        }
    }
}
