//! Where the trainer and the evaluation read samples from: a split held in memory or
//! one streamed from disk.

use std::borrow::Cow;

use super::stream::Stream;
use super::{Dataset, Fetch, Image, Split};
use crate::error::Result;

/// Evaluation rows `[n, C, H, W]` and their labels, borrowed where held in memory.
pub type Rows<'a> = (Cow<'a, [f32]>, Cow<'a, [u32]>);

/// The samples of one split.
#[derive(Clone)]
pub enum Source {
    Memory(Split),
    Stream(Stream),
}

impl Source {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Source::Memory(s) => s.len(),
            Source::Stream(s) => s.len(),
        }
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every sample's label (`u32::MAX`: unlabelled).
    pub fn labels(&self) -> &[u32] {
        match self {
            Source::Memory(s) => &s.labels,
            Source::Stream(s) => s.labels(),
        }
    }

    /// The first `n` samples (all when `n` is 0 or larger than the split).
    pub fn truncate(self, n: usize) -> Self {
        match self {
            Source::Memory(s) => Source::Memory(s.truncate(n)),
            Source::Stream(s) => Source::Stream(s.truncate(n)),
        }
    }

    /// The split when it is held in memory.
    pub fn memory(&self) -> Option<&Split> {
        match self {
            Source::Memory(s) => Some(s),
            Source::Stream(_) => None,
        }
    }

    /// Samples `start..start + n` as the evaluation takes them, `[n, C, H, W]`, with
    /// their labels.
    pub fn rows(&self, start: usize, n: usize) -> Result<Rows<'_>> {
        match self {
            Source::Memory(s) => {
                let d = s.sample_len();
                Ok((
                    Cow::Borrowed(&s.data[start * d..(start + n) * d]),
                    Cow::Borrowed(&s.labels[start..start + n]),
                ))
            }
            Source::Stream(s) => {
                let (x, y) = s.pick(&(start..start + n).collect::<Vec<_>>())?;
                Ok((Cow::Owned(x), Cow::Owned(y)))
            }
        }
    }

    /// Samples `indices` in memory, as the evaluation takes them.
    pub fn pick(&self, indices: &[usize]) -> Result<Split> {
        let (data, labels) = match self {
            Source::Memory(s) => (
                indices.iter().flat_map(|&i| s.sample(i).to_vec()).collect(),
                indices.iter().map(|&i| s.labels[i]).collect(),
            ),
            Source::Stream(s) => s.pick(indices)?,
        };
        Ok(Split {
            data,
            shape: self.shape(),
            labels,
        })
    }

    /// The first `n` samples in memory, as the evaluation takes them.
    pub fn head(&self, n: usize) -> Result<Split> {
        let n = n.min(self.len());
        let (data, labels) = self.rows(0, n)?;
        Ok(Split {
            data: data.into_owned(),
            shape: self.shape(),
            labels: labels.into_owned(),
        })
    }

    /// Bad files skipped since the last call (streams with `data.skip_bad`).
    pub fn take_skipped(&self) -> usize {
        match self {
            Source::Memory(_) => 0,
            Source::Stream(s) => s.take_skipped(),
        }
    }
}

impl Fetch for Source {
    fn shape(&self) -> [usize; 3] {
        match self {
            Source::Memory(s) => s.shape,
            Source::Stream(s) => s.shape(),
        }
    }

    fn fetch(&self, i: usize) -> Result<Image<'_>> {
        match self {
            Source::Memory(s) => s.fetch(i),
            Source::Stream(s) => s.image(i),
        }
    }

    fn fetch_planned(
        &self,
        i: usize,
        plan: &dyn Fn([usize; 2]) -> usize,
    ) -> Result<(Image<'_>, [usize; 2])> {
        match self {
            Source::Stream(s) if s.reduces() => s.image_planned(i, plan),
            _ => {
                let img = self.fetch(i)?;
                let full = [img.shape[1], img.shape[2]];
                Ok((img, full))
            }
        }
    }
}

/// A dataset as the trainer reads it: two sources with the class names.
#[derive(Clone)]
pub struct Data {
    pub name: String,
    pub train: Source,
    pub test: Source,
    pub classes: usize,
    pub class_names: Vec<String>,
    /// What decides a streamed collection's samples (its index's SHA-256), written into
    /// checkpoints; `None` for data held in memory.
    pub fingerprint: Option<String>,
}

impl From<Dataset> for Data {
    fn from(ds: Dataset) -> Self {
        Data {
            name: ds.name,
            train: Source::Memory(ds.train),
            test: Source::Memory(ds.test),
            classes: ds.classes,
            class_names: ds.class_names,
            fingerprint: None,
        }
    }
}
