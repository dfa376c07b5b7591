//! Multisensory views: each channel group of a sample is one sense (CMC).

use super::{Group, Tag, ViewBatch};
use crate::data::Split;

/// View `v` of a sample is its channels `groups[v]`, e.g. BasicMotions' accelerometer
/// (channels 0-2) and gyroscope (3-5). The positive of a view is the same sample's other
/// sense under [`super::Relation::Instance`]. Groups have equal sizes, so that one
/// encoder can read every sense (or each its own, with `encoder.per_view`).
#[derive(Debug, Clone)]
pub struct ModalityViews {
    pub groups: Vec<Vec<usize>>,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl super::Sampler for ModalityViews {
    /// Senses of `indices`, view-major: all first senses, then all second ones.
    fn sample_from(
        &self,
        split: &Split,
        indices: &[usize],
        _seed: u64,
        _first: usize,
    ) -> ViewBatch {
        let [_, h, w] = split.shape;
        let plane = h * w;
        let width = self.groups.first().map_or(0, Vec::len);
        let mut data = Vec::with_capacity(self.groups.len() * indices.len() * width * plane);
        let mut tags = Vec::new();
        for (v, channels) in self.groups.iter().enumerate() {
            for &i in indices {
                let x = split.sample(i);
                for &ch in channels {
                    let src = &x[ch * plane..(ch + 1) * plane];
                    data.extend(src.iter().map(|&a| (a - self.mean[ch]) / self.std[ch]));
                }
                tags.push(Tag::new(i as u32, split.labels[i], v as u16));
            }
        }
        ViewBatch {
            groups: vec![Group {
                shape: [tags.len(), width, h, w],
                tags,
                data,
            }],
        }
    }
}
