//! Nearest-neighbour grids: test queries, each followed by its most similar training
//! images by cosine similarity of the representation `h`.

use image::{Rgb, RgbImage};
use rayon::prelude::*;

use crate::data::{preview, Split};
use crate::eval::knn::Features;

/// Pixels between tiles and around the grid.
const GAP: u32 = 4;
/// Extra pixels between a query and its neighbours.
const SEPARATOR: u32 = 12;
/// Width of the frame that says whether a neighbour has the query's class.
const FRAME: u32 = 3;
/// Side that small images are enlarged towards (whole multiples only).
const TILE: usize = 64;
const SAME: Rgb<u8> = Rgb([44, 160, 44]);
const OTHER: Rgb<u8> = Rgb([214, 39, 40]);
const QUERY: Rgb<u8> = Rgb([60, 60, 60]);

/// For each query row of `queries`, the `k` rows of `memory` with the highest cosine
/// similarity, best first.
pub fn nearest(memory: &Features, queries: &Features, k: usize) -> Vec<Vec<usize>> {
    let (m, q) = (memory.normalised(), queries.normalised());
    (0..q.len())
        .into_par_iter()
        .map(|i| {
            let qi = q.row(i);
            let mut sims: Vec<(f32, usize)> = (0..m.len())
                .map(|j| (m.row(j).iter().zip(qi).map(|(a, b)| a * b).sum(), j))
                .collect();
            sims.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            sims.into_iter().take(k).map(|(_, j)| j).collect()
        })
        .collect()
}

/// One row per query: the test image `queries[r]` of `test`, then its neighbours
/// `neighbours[r]` from `train`, framed green when of the query's class, red otherwise.
pub fn grid(test: &Split, queries: &[usize], train: &Split, neighbours: &[Vec<usize>]) -> RgbImage {
    let [_, h, w] = test.shape;
    let scale = (TILE / h.max(w)).max(1);
    let (th, tw) = ((h * scale) as u32, (w * scale) as u32);
    let (cell_w, cell_h) = (tw + 2 * FRAME, th + 2 * FRAME);
    let k = neighbours.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let width = GAP + cell_w + SEPARATOR + k * (cell_w + GAP);
    let height = GAP + queries.len() as u32 * (cell_h + GAP);
    let mut img = RgbImage::from_pixel(width, height.max(1), Rgb([255, 255, 255]));
    for (r, (&q, nb)) in queries.iter().zip(neighbours).enumerate() {
        let y = GAP + r as u32 * (cell_h + GAP);
        framed(&mut img, test.sample(q), test.shape, scale, (GAP, y), QUERY);
        for (c, &j) in nb.iter().enumerate() {
            let x = GAP + cell_w + SEPARATOR + c as u32 * (cell_w + GAP);
            let colour = if train.labels[j] == test.labels[q] {
                SAME
            } else {
                OTHER
            };
            framed(
                &mut img,
                train.sample(j),
                train.shape,
                scale,
                (x, y),
                colour,
            );
        }
    }
    img
}

/// Draws `src` at `at` inside a frame of `colour`.
fn framed(
    img: &mut RgbImage,
    src: &[f32],
    shape: [usize; 3],
    scale: usize,
    at: (u32, u32),
    colour: Rgb<u8>,
) {
    let (w, h) = (
        (shape[2] * scale) as u32 + 2 * FRAME,
        (shape[1] * scale) as u32 + 2 * FRAME,
    );
    for dy in 0..h {
        for dx in 0..w {
            img.put_pixel(at.0 + dx, at.1 + dy, colour);
        }
    }
    preview::draw(img, src, shape, scale, (at.0 + FRAME, at.1 + FRAME));
}
