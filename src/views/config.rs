//! The `[views]` section: the similarity distribution, how views are made and which
//! pairs are positive, and the sampler it builds.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::augment::AugmentConfig;
use super::modalities::ModalityViews;
use super::sequence::WindowViews;
use super::transform::TransformViews;
use super::Sampler;
use crate::encoder::EncoderKind;
use crate::error::{Error, Result};
use crate::keys::config::Pairing;
use crate::pairs::Relation;

/// How the views of an instance are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ViewsKind {
    /// Augmented views of each instance (data transformations).
    Transform,
    /// Channel groups as senses (multisensory, CMC).
    Modalities,
    /// Windows of a time series (sequential coherence, CPC).
    Windows,
}

/// The similarity distribution: how views are made and which pairs are positive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ViewsConfig {
    /// How views are made.
    pub kind: ViewsKind,
    /// Which (query, key) pairs are positives.
    pub relation: Relation,
    /// Views per instance (close windows per sequence for `windows`).
    pub n: usize,
    /// `modalities`: the channels of each sense, e.g. `[[0, 1, 2], [3, 4, 5]]`.
    pub modalities: Vec<Vec<usize>>,
    /// `windows`: window length in time steps.
    pub window: usize,
    /// `windows`: close windows start at most this many steps apart (the temporal
    /// relation's positive radius).
    pub max_gap: usize,
    /// `windows`: extra windows per sequence farther than `max_gap` from the close ones.
    pub distant: usize,
    /// `windows`: when > 0, `n` windows at this stride, in order (CPC).
    pub stride: usize,
    /// `cluster` relation: number of prototypes (k-means centroids).
    pub clusters: usize,
    /// `cluster` relation: steps between re-assignments, from the end of the first epoch.
    pub recluster_every: usize,
    /// Augmentation of every view (unless `per_view` is given).
    pub augment: AugmentConfig,
    /// One augmentation per view, for asymmetric views.
    pub per_view: Vec<AugmentConfig>,
    /// Extra small crops per instance (SwAV's multi-crop): `augment` with `local_scale`
    /// and `local_size`. Their tags have view indices from the number of global views on,
    /// and they form their own group when their size differs.
    pub local_crops: usize,
    /// Side of the local crops in pixels (SwAV: 96 for 224-pixel images).
    pub local_size: usize,
    /// Area fraction range of the local crops.
    pub local_scale: [f32; 2],
}

impl Default for ViewsConfig {
    fn default() -> Self {
        Self {
            kind: ViewsKind::Transform,
            relation: Relation::Instance,
            n: 2,
            modalities: Vec::new(),
            window: 0,
            max_gap: 0,
            distant: 0,
            stride: 0,
            clusters: 10,
            recluster_every: 100,
            augment: AugmentConfig::default(),
            per_view: Vec::new(),
            local_crops: 0,
            local_size: 0,
            local_scale: [0.05, 0.4],
        }
    }
}

impl ViewsConfig {
    /// The encoder's input shape for samples of `shape`: one sense's channels for
    /// multisensory views, the sample's shape otherwise.
    pub fn model_input(&self, shape: [usize; 3]) -> [usize; 3] {
        match self.modalities.first() {
            Some(g) if self.kind == ViewsKind::Modalities => [g.len(), shape[1], shape[2]],
            _ => shape,
        }
    }

    /// The config with every view that keeps its input size (`size = 0`) cut at `side`
    /// instead: streamed images have no one input size.
    pub fn sized(&self, side: usize) -> ViewsConfig {
        let fill = |a: &AugmentConfig| AugmentConfig {
            size: if a.size == 0 { side } else { a.size },
            ..a.clone()
        };
        ViewsConfig {
            augment: fill(&self.augment),
            per_view: self.per_view.iter().map(fill).collect(),
            ..self.clone()
        }
    }

    /// The augmentation of each view: the global views, then the local crops.
    pub fn augments(&self) -> Vec<AugmentConfig> {
        let mut views = if self.per_view.is_empty() {
            vec![self.augment.clone(); self.n]
        } else {
            self.per_view.clone()
        };
        let local = AugmentConfig {
            size: self.local_size,
            crop_scale: self.local_scale,
            ..self.augment.clone()
        };
        views.extend(std::iter::repeat_n(local, self.local_crops));
        views
    }

    /// Checks the multi-crop settings; local crops need every view in one joint forward
    /// pass (cross pairing reads the first group only) and an encoder that pools over space.
    pub fn validate_local(&self, pairing: Pairing, encoder: EncoderKind) -> Result<()> {
        if self.local_crops == 0 {
            return Ok(());
        }
        if !matches!(pairing, Pairing::Joint | Pairing::MultiCrop) {
            return Err(Error::config(
                "views.local_crops",
                self.local_crops,
                "0 unless keys.pairing = \"joint\" or \"multi-crop\"",
            ));
        }
        if encoder == EncoderKind::Mlp {
            return Err(Error::config(
                "views.local_crops",
                self.local_crops,
                "0 with encoder.kind = \"mlp\" (fixed input size)",
            ));
        }
        if self.local_size == 0 {
            return Err(Error::config(
                "views.local_size",
                0,
                "a side >= 1 when views.local_crops > 0",
            ));
        }
        let [s0, s1] = self.local_scale;
        if !(0.0 < s0 && s0 <= s1 && s1 <= 1.0) {
            return Err(Error::config(
                "views.local_scale",
                format!("{:?}", self.local_scale),
                "0 < min <= max <= 1",
            ));
        }
        Ok(())
    }

    /// Checks the section's own values (its fit with the pairing and encoder is checked
    /// by [`crate::config::Config::validate`]).
    pub fn validate(&self) -> Result<()> {
        match self.kind {
            ViewsKind::Transform => {}
            ViewsKind::Modalities => {
                let width = self.modalities.first().map_or(0, Vec::len);
                if self.modalities.len() < 2
                    || width == 0
                    || self.modalities.iter().any(|g| g.len() != width)
                {
                    return Err(Error::config(
                        "views.modalities",
                        format!("{:?}", self.modalities),
                        "two or more channel groups of one equal, non-zero size",
                    ));
                }
            }
            ViewsKind::Windows => {
                if self.window == 0 {
                    return Err(Error::config("views.window", 0, "a window length >= 1"));
                }
            }
        }
        if self.relation == Relation::Cluster && (self.clusters < 2 || self.recluster_every == 0) {
            return Err(Error::config(
                "views.clusters",
                format!(
                    "{} (recluster_every {})",
                    self.clusters, self.recluster_every
                ),
                "clusters >= 2 and recluster_every >= 1",
            ));
        }
        if !self.per_view.is_empty() && self.per_view.len() < 2 {
            return Err(Error::config(
                "views.per_view",
                self.per_view.len(),
                "at least 2 views",
            ));
        }
        for (i, a) in std::iter::once(&self.augment)
            .chain(&self.per_view)
            .enumerate()
        {
            let key = if i == 0 {
                "views.augment".to_string()
            } else {
                format!("views.per_view[{}]", i - 1)
            };
            a.validate(&key)?;
        }
        Ok(())
    }

    /// The view sampler for samples of `shape` normalised by `mean` and `std`, checked
    /// against the data.
    pub fn sampler(
        &self,
        shape: [usize; 3],
        mean: &[f32],
        std: &[f32],
    ) -> Result<Arc<dyn Sampler>> {
        let v = self;
        let (mean, std) = (mean.to_vec(), std.to_vec());
        Ok(match v.kind {
            ViewsKind::Modalities => {
                if let Some(&c) = v.modalities.iter().flatten().find(|&&c| c >= shape[0]) {
                    return Err(Error::config(
                        "views.modalities",
                        c,
                        format!("channel indices below the data's {} channels", shape[0]),
                    ));
                }
                Arc::new(ModalityViews {
                    groups: v.modalities.clone(),
                    mean,
                    std,
                })
            }
            ViewsKind::Windows => {
                let span = v.window + v.stride * v.n.saturating_sub(1);
                if shape[1] != 1 || span > shape[2] {
                    return Err(Error::config(
                    "views.window",
                    v.window,
                    format!(
                        "series of shape [channels, 1, length] with window + stride * (n - 1) <= length {} (data shape {shape:?})",
                        shape[2]
                    ),
                ));
                }
                Arc::new(WindowViews {
                    window: v.window,
                    n: v.n,
                    max_gap: v.max_gap,
                    distant: v.distant,
                    stride: v.stride,
                    mean,
                    std,
                })
            }
            ViewsKind::Transform => Arc::new(TransformViews {
                augment: v.augments(),
                mean,
                std,
            }),
        })
    }
}
