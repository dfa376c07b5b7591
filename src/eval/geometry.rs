//! Alignment and uniformity (Wang & Isola 2020) of a trained representation `h`.
//!
//! Both on L2-normalised `h` of the first [`SAMPLES`] test samples, in inference mode:
//! alignment `E |h(v1) - h(v2)|^2` (alpha = 2) over two augmented views of each sample,
//! drawn with the run's first two view augmentations; uniformity
//! `log E exp(-2 |h(x) - h(y)|^2)` (t = 2) over pairs of the un-augmented samples. Lower
//! is better for both.

use burn::prelude::*;
use burn::tensor::TensorData;
use serde::Serialize;

use super::knn::Features;
use crate::config::ViewsConfig;
use crate::data::Fetch;
use crate::error::{Error, Result};
use crate::loss::geometry::{alignment, uniformity};
use crate::model::Model;
use crate::views::transform::TransformViews;
use crate::views::{PositiveMap, Relation, Sampler, Tag};

/// Test samples measured (the pairwise matrices are `SAMPLES^2`).
pub const SAMPLES: usize = 2000;
/// Rows per forward pass.
const BATCH: usize = 512;

/// Alignment (alpha = 2) and uniformity (t = 2) of `h`, and how many samples they used.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Geometry {
    pub alignment: f64,
    pub uniformity: f64,
    pub samples: usize,
}

/// Measures `model`'s `h` on `test`; `features` are its un-augmented test features and
/// `views` the run's similarity distribution, whose first two view augmentations make
/// the aligned pairs (one is used twice). `None` unless the views are augmentations:
/// senses and windows have no such pair of one test sample.
pub fn measure(
    model: &Model,
    test: &dyn Fetch,
    features: &Features,
    views: &ViewsConfig,
    (mean, std): (&[f32], &[f32]),
    seed: u64,
    device: &Device,
) -> Result<Option<Geometry>> {
    if views.kind != crate::views::config::ViewsKind::Transform {
        return Ok(None);
    }
    let augment = views.augments();
    let n = features.len().min(SAMPLES);
    let first = augment
        .first()
        .ok_or_else(|| Error::Invalid("no view augmentation".into()))?;
    let second = augment.get(1).unwrap_or(first);
    let sampler = TransformViews {
        augment: vec![first.clone(), second.clone()],
        mean: mean.to_vec(),
        std: std.to_vec(),
    };
    let indices: Vec<usize> = (0..n).collect();
    let views = sampler.sample(test, &indices, seed)?;
    let model = model.valid();
    let (mut rows, mut tags): ([Vec<f32>; 2], [Vec<Tag>; 2]) = Default::default();
    let mut dim = 0;
    for g in &views.groups {
        let len: usize = g.shape[1..].iter().product();
        for start in (0..g.tags.len()).step_by(BATCH) {
            let m = BATCH.min(g.tags.len() - start);
            let x = g.data[start * len..(start + m) * len].to_vec();
            let shape = [m, g.shape[1], g.shape[2], g.shape[3]];
            let h = model
                .encoder
                .forward(Tensor::<4>::from_data(TensorData::new(x, shape), device));
            dim = h.dims()[1];
            let h: Vec<f32> = h.into_data().iter::<f32>().collect();
            for (r, t) in h.chunks(dim).zip(&g.tags[start..start + m]) {
                let v = usize::from(t.view.min(1));
                rows[v].extend_from_slice(r);
                tags[v].push(*t);
            }
        }
    }
    let [r0, r1] = rows;
    let tensor = |data: Vec<f32>| {
        let n = data.len() / dim.max(1);
        Tensor::<2>::from_data(TensorData::new(data, [n, dim]), device)
    };
    let map = PositiveMap::build(Relation::Instance, &tags[0], &tags[1], false);
    let align = alignment(tensor(r0), tensor(r1), &map, 2.0)?;
    let clean = features.data[..n * features.dim].to_vec();
    let uniform = uniformity(tensor(clean), 2.0)?;
    Ok(Some(Geometry {
        alignment: f64::from(align.into_scalar::<f32>()),
        uniformity: f64::from(uniform.into_scalar::<f32>()),
        samples: n,
    }))
}
