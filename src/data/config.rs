//! The `[data]` section: which dataset, where, how it is normalised, and its loading.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Data, Dataset, Source};
use crate::error::{Error, Result};

/// One number for every channel, or one per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum PerChannel {
    One(f32),
    Each(Vec<f32>),
}

impl PerChannel {
    /// The value for each of `channels` channels.
    pub fn expand(&self, key: &str, channels: usize) -> Result<Vec<f32>> {
        match self {
            PerChannel::One(v) => Ok(vec![*v; channels]),
            PerChannel::Each(v) if v.len() == channels => Ok(v.clone()),
            PerChannel::Each(v) => Err(Error::config(
                key,
                format!("{v:?}"),
                format!("one number or {channels} (one per channel)"),
            )),
        }
    }
}

/// Which data, where, and how it is normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Dataset name (see `contrastive data fetch --help`).
    pub dataset: String,
    /// Folder that holds its files.
    pub dir: PathBuf,
    /// Per-channel mean subtracted from pixel values in [0, 1].
    pub mean: PerChannel,
    /// Per-channel standard deviation that pixel values are divided by.
    pub std: PerChannel,
    /// Use only the first N training images (0 = all).
    pub limit: usize,
    /// Fetch the dataset into `dir` when its files are missing.
    pub fetch: bool,
    /// Largest image, in pixels (width x height), an image folder may hold; larger ones
    /// are refused before they are decoded.
    pub max_pixels: u64,
    /// Streamed images (`dataset = "images"`): the side of the square the model takes;
    /// views are cut from the full image at this size unless `views.augment.size` says
    /// otherwise, and evaluation resizes the shorter edge to it and crops the centre.
    pub image_size: usize,
    /// Streamed images: threads that decode and augment (0 = one per core).
    pub workers: usize,
    /// Batches prepared ahead of the training step; with the batch size and views this
    /// bounds the loader's memory.
    pub prefetch: usize,
    /// Streamed images: skip an unreadable, undecodable or changed file (counted in the
    /// metrics as `skipped_files`, its place taken by the next good sample) instead of
    /// stopping with its name.
    pub skip_bad: bool,
    /// Streamed images: keep decoded images in memory when a split's decoded pixels fit in
    /// this many MiB (and in a quarter of the memory available); 0 never caches.
    pub cache_mb: u64,
    /// Streamed images without a train/test split: the fraction held out for testing,
    /// chosen by a hash of each path.
    pub holdout: f64,
    /// Streamed JPEGs that are not cached: decode at 1/4 or 1/8 of the sides when every
    /// view's crop is at least that many times its output side (faster on large photos;
    /// the views then differ slightly from full-size decodes).
    pub reduced_decode: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: "fashion-mnist".into(),
            dir: PathBuf::from("data/fashion-mnist"),
            mean: PerChannel::One(0.2860),
            std: PerChannel::One(0.3530),
            limit: 0,
            fetch: true,
            max_pixels: crate::data::MAX_PIXELS,
            image_size: 0,
            workers: 0,
            prefetch: 2,
            skip_bad: false,
            cache_mb: 1024,
            holdout: 0.1,
            reduced_decode: false,
        }
    }
}

impl DataConfig {
    /// Checks the section's own values.
    pub fn validate(&self) -> Result<()> {
        let finite = match &self.mean {
            PerChannel::One(m) => m.is_finite(),
            PerChannel::Each(m) => m.iter().all(|m| m.is_finite()),
        };
        if !finite {
            return Err(Error::config(
                "data.mean",
                format!("{:?}", self.mean),
                "finite values",
            ));
        }
        let positive = |s: &f32| s.is_finite() && *s > 0.0;
        let ok = match &self.std {
            PerChannel::One(s) => positive(s),
            PerChannel::Each(s) => s.iter().all(positive),
        };
        if !ok {
            return Err(Error::config(
                "data.std",
                format!("{:?}", self.std),
                "finite values > 0",
            ));
        }
        if self.prefetch == 0 {
            return Err(Error::config("data.prefetch", 0, "at least 1 batch"));
        }
        if !(0.0..1.0).contains(&self.holdout) {
            return Err(Error::config(
                "data.holdout",
                self.holdout,
                "a fraction in [0, 1)",
            ));
        }
        if self.streamed() && self.image_size == 0 {
            return Err(Error::config(
                "data.image_size",
                0,
                "the side in pixels of the square the model takes from streamed images (say 224)",
            ));
        }
        Ok(())
    }

    /// Whether the data are streamed from disk (`dataset = "images"`).
    pub fn streamed(&self) -> bool {
        self.dataset == "images"
    }

    /// The dataset as the trainer reads it, streamed or loaded (see [`Self::load`]), with
    /// a line for `say` about a streamed collection.
    pub fn open(&self, say: &mut dyn FnMut(&str)) -> Result<Data> {
        if !self.streamed() {
            return self.load(say).map(Data::from);
        }
        let options = super::stream::Options {
            side: self.image_size,
            max_pixels: self.max_pixels,
            skip_bad: self.skip_bad,
            cache_bytes: self.cache_mb << 20,
            holdout: self.holdout,
            reduced_decode: self.reduced_decode,
        };
        let opened = super::stream::open(&self.dir, &options)?;
        say(&opened.said);
        Ok(Data {
            name: "images".into(),
            train: Source::Stream(opened.train),
            test: Source::Stream(opened.test),
            classes: opened.classes.len(),
            class_names: opened.classes,
            fingerprint: Some(opened.fingerprint),
        })
    }

    /// Loads the dataset, fetching it first (saying so through `say`) when `fetch` is on,
    /// its folder is missing and the build has the `fetch` feature.
    pub fn load(&self, say: &mut dyn FnMut(&str)) -> Result<Dataset> {
        #[cfg(not(feature = "fetch"))]
        let _ = say;
        match super::load_limited(&self.dataset, &self.dir, self.max_pixels) {
            #[cfg(feature = "fetch")]
            Err(Error::Data { .. }) if self.fetch && !self.dir.exists() => {
                let got = super::fetch::fetch(&self.dataset, &self.dir, say)?;
                if let Some(src) = got.source {
                    say(&format!("fetched {} from {src}", self.dataset));
                }
                super::load_limited(&self.dataset, &self.dir, self.max_pixels)
            }
            other => other,
        }
    }
}
