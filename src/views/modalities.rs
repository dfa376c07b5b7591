//! Multisensory views: each channel group of a sample is one sense (CMC).

use super::{Group, Tag, ViewBatch};
use crate::data::Fetch;
use crate::error::Result;

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
        data: &dyn Fetch,
        indices: &[usize],
        _seed: u64,
        _first: usize,
    ) -> Result<ViewBatch> {
        let [_, h, w] = data.shape();
        let plane = h * w;
        let width = self.groups.first().map_or(0, Vec::len);
        let mut rows = Vec::with_capacity(self.groups.len() * indices.len() * width * plane);
        let mut tags = Vec::new();
        for (v, channels) in self.groups.iter().enumerate() {
            for &i in indices {
                let x = data.fetch(i)?;
                let values = x.data.chw();
                for &ch in channels {
                    let src = &values[ch * plane..(ch + 1) * plane];
                    rows.extend(src.iter().map(|&a| (a - self.mean[ch]) / self.std[ch]));
                }
                tags.push(Tag::new(x.index as u32, x.label, v as u16));
            }
        }
        Ok(ViewBatch {
            groups: vec![Group {
                shape: [tags.len(), width, h, w],
                tags,
                data: rows,
            }],
        })
    }
}
