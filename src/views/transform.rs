//! Data transformations: positives are differently augmented views of one instance.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::augment::{augment_reduced, output_size, sample_crop, AugmentConfig, Src};
use super::{Group, Tag, ViewBatch};
use crate::data::{Fetch, Pixels};
use crate::error::Result;

/// `n` augmented views of each instance; view `v` uses `augment[v]`.
#[derive(Debug, Clone)]
pub struct TransformViews {
    pub augment: Vec<AugmentConfig>,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl super::Sampler for TransformViews {
    /// Views of `indices` in `data`, view-major: all first views, then all second views.
    /// `seed` fixes every random choice; view `v` of batch position `i` draws from its
    /// own RNG (seeded by its position `first + i`), so the result does not depend on
    /// thread scheduling or on how the batch is split. Each sample is read once, for all
    /// its views, and dropped, so a streamed batch holds one full-size image per thread.
    fn sample_from(
        &self,
        data: &dyn Fetch,
        indices: &[usize],
        seed: u64,
        first: usize,
    ) -> Result<ViewBatch> {
        let shape = data.shape();
        let c = shape[0];
        let sides: Vec<usize> = self.augment.iter().map(|a| output_size(a, shape)).collect();
        let mut outs: Vec<Vec<f32>> = sides
            .iter()
            .map(|s| vec![0.0; indices.len() * c * s * s])
            .collect();
        let mut per_sample: Vec<Vec<&mut [f32]>> = (0..indices.len()).map(|_| Vec::new()).collect();
        for (out, side) in outs.iter_mut().zip(&sides) {
            for (dsts, dst) in per_sample.iter_mut().zip(out.chunks_mut(c * side * side)) {
                dsts.push(dst);
            }
        }
        let read: Vec<(u32, u32)> = per_sample
            .into_par_iter()
            .enumerate()
            .map(|(i, dsts)| {
                let rng =
                    |v: usize| ChaCha8Rng::seed_from_u64(mix(seed, (first + i) as u64, v as u64));
                // the largest divisor of the image's sides that keeps every view's crop at
                // least its output size (the crops drawn here as `augment` will draw them)
                let plan = |[h, w]: [usize; 2]| {
                    let mut d = 8;
                    for (v, (cfg, &side)) in self.augment.iter().zip(&sides).enumerate() {
                        let b = sample_crop(&mut rng(v), h, w, cfg.crop_scale, cfg.crop_ratio);
                        while d > 1 && b.height.min(b.width) < d * side {
                            d /= 2;
                        }
                    }
                    d
                };
                let (img, full) = data.fetch_planned(indices[i], &plan)?;
                let norm = (self.mean.as_slice(), self.std.as_slice());
                for (v, (cfg, dst)) in self.augment.iter().zip(dsts).enumerate() {
                    let src = match &img.data {
                        Pixels::Chw(v) => Src::Chw(v),
                        Pixels::Hwc8(d) => Src::Hwc8(&d.pixels),
                    };
                    augment_reduced(cfg, &mut rng(v), src, img.shape, full, norm, dst);
                }
                Ok((img.index as u32, img.label))
            })
            .collect::<Result<_>>()?;
        let mut groups: Vec<Group> = Vec::new();
        for (v, (data, side)) in outs.into_iter().zip(sides).enumerate() {
            let tags = read
                .iter()
                .map(|&(i, label)| Tag::new(i, label, v as u16))
                .collect();
            let group = Group {
                data,
                shape: [indices.len(), c, side, side],
                tags,
            };
            match groups.iter_mut().find(|g| g.shape[1..] == group.shape[1..]) {
                Some(g) => {
                    g.data.extend_from_slice(&group.data);
                    g.tags.extend(group.tags);
                    g.shape[0] += group.shape[0];
                }
                None => groups.push(group),
            }
        }
        Ok(ViewBatch { groups })
    }
}

/// Mixes integers into one 64-bit seed (SplitMix64 finaliser over a running hash).
pub fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut h = 0x9E37_79B9_7F4A_7C15u64;
    for x in [a, b, c] {
        h ^= x
            .wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(h << 6)
            .wrapping_add(h >> 2);
        h = splitmix(h);
    }
    h
}

fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
