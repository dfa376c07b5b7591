//! Datasets and loaders.
//!
//! A dataset held in memory is two [`Split`]s of `f32` samples of one shape `[C, H, W]`
//! (time series are `[channels, 1, length]`), with optional integer labels. An image
//! collection streamed from disk ([`stream`]) has images of any size; both are a
//! [`Source`] to the trainer and the evaluation.

pub mod cifar;
pub mod config;
pub mod detect;
pub mod digits;
#[cfg(feature = "fetch")]
pub mod fetch;
pub mod folder;
pub mod idx;
pub mod loader;
pub mod preview;
pub mod series;
pub mod source;
pub mod stream;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub use source::{Data, Source};

/// Samples of one split, row-major `[n, C, H, W]`, with their labels.
#[derive(Debug, Clone)]
pub struct Split {
    pub data: Vec<f32>,
    pub shape: [usize; 3],
    pub labels: Vec<u32>,
}

impl Split {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split has no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per sample, `C * H * W`.
    pub fn sample_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values of sample `i`.
    pub fn sample(&self, i: usize) -> &[f32] {
        let d = self.sample_len();
        &self.data[i * d..(i + 1) * d]
    }

    /// The first `n` samples (all when `n` is 0 or larger than the split).
    pub fn truncate(mut self, n: usize) -> Self {
        if n > 0 && n < self.len() {
            self.data.truncate(n * self.sample_len());
            self.labels.truncate(n);
        }
        self
    }

    /// The split restricted to channels `channels`, in that order.
    pub fn channels(&self, channels: &[usize]) -> Split {
        let [_, h, w] = self.shape;
        let plane = h * w;
        let data = (0..self.len())
            .flat_map(|i| {
                let x = self.sample(i);
                channels
                    .iter()
                    .flat_map(move |&c| x[c * plane..(c + 1) * plane].iter().copied())
            })
            .collect();
        Split {
            data,
            shape: [channels.len(), h, w],
            labels: self.labels.clone(),
        }
    }

    /// How many samples carry each label `0..classes`; unlabelled samples are not counted.
    pub fn label_counts(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// `(x - mean[c]) / std[c]` for every value, channel by channel.
    pub fn normalised(&self, mean: &[f32], std: &[f32]) -> Vec<f32> {
        let [c, h, w] = self.shape;
        let plane = h * w;
        let mut out = self.data.clone();
        for (k, v) in out.iter_mut().enumerate() {
            let ch = (k / plane) % c;
            *v = (*v - mean[ch]) / std[ch];
        }
        out
    }
}

/// One sample as the views take it, of its own shape `[C, H, W]`, with the index and
/// label of the sample actually read (another one where a bad file was skipped).
#[derive(Debug, Clone)]
pub struct Image<'a> {
    pub data: Pixels<'a>,
    pub shape: [usize; 3],
    pub index: usize,
    pub label: u32,
}

/// A sample's values: `[C, H, W]` floats held in memory, or a decoded image's 8-bit
/// interleaved pixels, which views sample directly so that a large photo is never
/// converted to floats whole.
#[derive(Debug, Clone)]
pub enum Pixels<'a> {
    Chw(Cow<'a, [f32]>),
    Hwc8(std::sync::Arc<stream::decode::Decoded>),
}

impl Pixels<'_> {
    /// The values as `[C, H, W]` floats in `[0, 1]` (converted from 8-bit pixels).
    pub fn chw(&self) -> Cow<'_, [f32]> {
        match self {
            Pixels::Chw(v) => Cow::Borrowed(v),
            Pixels::Hwc8(d) => Cow::Owned(d.chw()),
        }
    }
}

/// Samples by index, as the view samplers read them.
pub trait Fetch: Sync {
    /// The shape the model takes (every sample's, for data held in memory).
    fn shape(&self) -> [usize; 3];
    /// Sample `i`.
    fn fetch(&self, i: usize) -> Result<Image<'_>>;

    /// Sample `i` for views whose crops allow a smaller image: `plan` takes the image's
    /// full `[h, w]` and returns the largest divisor of its sides every view allows. The
    /// result is the image, possibly decoded at `1/d` of its sides, with its full `[h, w]`.
    /// Only streamed JPEGs with `data.reduced_decode` are ever smaller.
    fn fetch_planned(
        &self,
        i: usize,
        plan: &dyn Fn([usize; 2]) -> usize,
    ) -> Result<(Image<'_>, [usize; 2])> {
        let _ = plan;
        let img = self.fetch(i)?;
        let full = [img.shape[1], img.shape[2]];
        Ok((img, full))
    }
}

impl Fetch for Split {
    fn shape(&self) -> [usize; 3] {
        self.shape
    }

    fn fetch(&self, i: usize) -> Result<Image<'_>> {
        Ok(Image {
            data: Pixels::Chw(Cow::Borrowed(self.sample(i))),
            shape: self.shape,
            index: i,
            label: self.labels[i],
        })
    }
}

/// A train and a test split with the number of classes.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub train: Split,
    pub test: Split,
    pub classes: usize,
    /// The name of each class, indexed by label (`classes` entries).
    pub class_names: Vec<String>,
}

/// Datasets known by name, for help texts and errors.
pub const DATASETS: &str =
    "cifar10, cifar100, digits, fashion-mnist, folder, images, mnist, ucr, ucr/<Name>";

/// The default largest image of an image folder (`data.max_pixels`): 64 megapixels, more
/// than any phone camera's; one such image is 768 MB as RGB `f32`.
pub const MAX_PIXELS: u64 = 64_000_000;

/// Loads dataset `name` from `dir`, images of at most [`MAX_PIXELS`].
///
/// `ucr` reads whichever UCR/UEA problem `dir` holds; `ucr/<Name>` (the name `data fetch`
/// uses) also checks that it is `<Name>`.
pub fn load(name: &str, dir: &Path) -> Result<Dataset> {
    load_limited(name, dir, MAX_PIXELS)
}

/// [`load`] with images of at most `max_pixels` (`data.max_pixels`).
pub fn load_limited(name: &str, dir: &Path, max_pixels: u64) -> Result<Dataset> {
    let ds = match name {
        "fashion-mnist" | "mnist" => load_idx(name, dir),
        "cifar10" => cifar::load(cifar::Variant::Cifar10, dir),
        "cifar100" => cifar::load(cifar::Variant::Cifar100, dir),
        "digits" => digits::load(dir),
        "folder" => folder::load(dir, max_pixels),
        "images" => Err(Error::config(
            "data.dataset",
            name,
            "a dataset held in memory: `images` is streamed, which train, eval, embed, report, probe and `data index`/`info`/`bench` read (`data audit` does not)",
        )),
        "ucr" => series::load(dir, None),
        _ => match name.strip_prefix("ucr/") {
            Some(problem) if !problem.is_empty() => series::load(dir, Some(problem)),
            _ => Err(Error::config("data.dataset", name, DATASETS)),
        },
    }?;
    ds.check(dir)?;
    Ok(ds)
}

impl Dataset {
    /// Refuses a dataset whose labels or class names disagree with its class count, so
    /// that no later stage (evaluation, reports) meets a label it cannot name.
    pub fn check(&self, dir: &Path) -> Result<()> {
        if self.train.shape.contains(&0) {
            return Err(Error::data(
                dir,
                format!("samples of shape {:?}: no values", self.train.shape),
            ));
        }
        if self.class_names.len() != self.classes {
            return Err(Error::data(
                dir,
                format!(
                    "{} class names for {} classes",
                    self.class_names.len(),
                    self.classes
                ),
            ));
        }
        for (split, name) in [(&self.train, "training"), (&self.test, "test")] {
            let bad = split
                .labels
                .iter()
                .position(|&l| l != u32::MAX && l as usize >= self.classes);
            if let Some(i) = bad {
                return Err(Error::data(
                    dir,
                    format!(
                        "{name} sample {i} has label {}, outside the {} classes",
                        split.labels[i], self.classes
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Numbers as class names: `"0"`, `"1"`, ... for datasets whose labels are their names.
pub fn numbered_classes(classes: usize) -> Vec<String> {
    (0..classes).map(|c| c.to_string()).collect()
}

/// Fashion-MNIST's class names, by label (Xiao et al. 2017).
const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

fn load_idx(name: &str, dir: &Path) -> Result<Dataset> {
    let split = |img: &str, lab: &str| -> Result<Split> {
        let (images, labels) = idx::read_pair(&dir.join(img), &dir.join(lab))?;
        let (rows, cols) = (images.dims[1], images.dims[2]);
        let data = images.data.iter().map(|&b| f32::from(b) / 255.0).collect();
        Ok(Split {
            data,
            shape: [1, rows, cols],
            labels,
        })
    };
    let train = split("train-images-idx3-ubyte", "train-labels-idx1-ubyte")?;
    let test = split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?;
    if train.shape != test.shape {
        return Err(Error::data(
            dir,
            format!(
                "train images are {:?} but test images are {:?}",
                train.shape, test.shape
            ),
        ));
    }
    let classes = train
        .labels
        .iter()
        .chain(&test.labels)
        .max()
        .map_or(0, |&m| m as usize + 1);
    if name == "fashion-mnist" && classes > FASHION_CLASSES.len() {
        return Err(Error::data(
            dir,
            format!(
                "label {} in the label files: Fashion-MNIST has {} classes",
                classes - 1,
                FASHION_CLASSES.len()
            ),
        ));
    }
    Ok(Dataset {
        name: name.into(),
        train,
        test,
        classes,
        class_names: if name == "fashion-mnist" {
            FASHION_CLASSES.iter().map(|c| c.to_string()).collect()
        } else {
            numbered_classes(classes)
        },
    })
}

/// The default folder of a dataset under `root` (as laid out by `data fetch`).
pub fn default_dir(root: &Path, name: &str) -> PathBuf {
    root.join(name)
}
