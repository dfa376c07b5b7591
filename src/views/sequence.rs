//! Sequential coherence: windows of one sequence, positives when close in time.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::transform::mix;
use super::{Group, Tag, ViewBatch};
use crate::data::Fetch;
use crate::error::Result;

/// Windows of `window` steps cut from series of shape `[channels, 1, length]`.
///
/// With `stride == 0`: view 0 starts anywhere, views `1..n` start within `max_gap` steps
/// of it (positives under [`super::Relation::Temporal`]), and `distant` further windows
/// start more than `max_gap` steps from every close one (negatives from the same
/// sequence, as in time-contrastive learning). With `stride > 0`: `n` windows at
/// `start + v * stride`, in order, for models that predict the future (CPC).
#[derive(Debug, Clone)]
pub struct WindowViews {
    pub window: usize,
    pub n: usize,
    pub max_gap: usize,
    pub distant: usize,
    pub stride: usize,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// Attempts at drawing a distant window before the sequence is deemed too short for it.
const DISTANT_TRIES: usize = 64;

impl WindowViews {
    /// Window starts of one sequence of `length` steps.
    pub fn starts(&self, length: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
        let last = length - self.window;
        if self.stride > 0 {
            let span = (self.n - 1) * self.stride;
            let s0 = rng.random_range(0..=last - span);
            return (0..self.n).map(|v| s0 + v * self.stride).collect();
        }
        let s0 = rng.random_range(0..=last);
        let mut starts = vec![s0];
        for _ in 1..self.n {
            let lo = s0.saturating_sub(self.max_gap);
            let hi = (s0 + self.max_gap).min(last);
            starts.push(rng.random_range(lo..=hi));
        }
        let close = starts.clone();
        for _ in 0..self.distant {
            let far = (0..DISTANT_TRIES)
                .map(|_| rng.random_range(0..=last))
                .find(|s| close.iter().all(|c| c.abs_diff(*s) > self.max_gap));
            starts.extend(far);
        }
        starts
    }
}

impl super::Sampler for WindowViews {
    /// Windows of `indices`, view-major; each window's [`Tag::time`] is its first step.
    fn sample_from(
        &self,
        data: &dyn Fetch,
        indices: &[usize],
        seed: u64,
        first: usize,
    ) -> Result<ViewBatch> {
        let [c, _, length] = data.shape();
        let per_view = self.n + self.distant;
        let mut rows: Vec<Vec<(Tag, Vec<f32>)>> = vec![Vec::new(); per_view];
        for (i, &idx) in indices.iter().enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, (first + i) as u64, 0));
            let x = data.fetch(idx)?;
            let values = x.data.chw();
            for (v, &s) in self.starts(length, &mut rng).iter().enumerate() {
                let mut w = Vec::with_capacity(c * self.window);
                for ch in 0..c {
                    let src = &values[ch * length + s..ch * length + s + self.window];
                    w.extend(src.iter().map(|&a| (a - self.mean[ch]) / self.std[ch]));
                }
                let tag = Tag {
                    time: s as u32,
                    ..Tag::new(x.index as u32, x.label, v as u16)
                };
                rows[v].push((tag, w));
            }
        }
        let rows: Vec<(Tag, Vec<f32>)> = rows.into_iter().flatten().collect();
        let group = Group {
            shape: [rows.len(), c, 1, self.window],
            tags: rows.iter().map(|r| r.0).collect(),
            data: rows.into_iter().flat_map(|r| r.1).collect(),
        };
        Ok(ViewBatch {
            groups: vec![group],
        })
    }
}
