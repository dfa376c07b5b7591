//! Image collections streamed from disk (`data.dataset = "images"`): decoded on the fly
//! at full size, so that memory does not grow with the collection.
//!
//! Training takes each image at its own size (the views' random-resized crops are cut
//! from the original, as torchvision's are); evaluation takes `Resize(side)` +
//! `CenterCrop(side)` ([`decode::Decoded::resized_centre`]). The whole collection's
//! decoded pixels are cached in memory after their first decode when they fit in
//! `data.cache_mb` and in a quarter of the memory available ([`cache_rule`]).

pub mod decode;
pub mod index;

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;

use self::decode::Decoded;
use self::index::{Entry, Index, Stamp};
use super::{Image, Pixels};
use crate::error::{Error, Result};

/// How many following samples a bad file's place is offered to before giving up.
const SUBSTITUTES: usize = 64;

/// What the two splits of a collection share.
struct Shared {
    index: Index,
    channels: usize,
    max_pixels: u64,
    skip_bad: bool,
    /// Decode JPEGs at a reduced scale where every view's crop allows it.
    reduce: bool,
    /// Files found bad (unreadable, undecodable or changed), so each is tried once.
    bad: Vec<AtomicBool>,
    /// Bad files met since [`Stream::take_skipped`] was last called.
    skipped: AtomicUsize,
}

/// One split of a streamed collection.
#[derive(Clone)]
pub struct Stream {
    shared: Arc<Shared>,
    /// This split's entries of the index, in order.
    rows: Arc<Vec<usize>>,
    labels: Arc<Vec<u32>>,
    /// Decoded images, when the cache rule holds.
    cache: Option<Arc<Vec<OnceLock<Arc<Decoded>>>>>,
    /// The side of the evaluated square.
    side: usize,
    /// Samples in use (`data.limit`).
    len: usize,
}

/// How a collection is streamed.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub side: usize,
    pub max_pixels: u64,
    pub skip_bad: bool,
    pub cache_bytes: u64,
    pub holdout: f64,
    /// `data.reduced_decode`.
    pub reduced_decode: bool,
}

/// A collection opened for streaming.
pub struct Opened {
    pub train: Stream,
    pub test: Stream,
    pub classes: Vec<String>,
    /// [`Index::fingerprint`].
    pub fingerprint: String,
    /// A line saying what was found and whether each split is cached.
    pub said: String,
}

/// The collection at `path`, indexed ([`Index::open`]) and split.
pub fn open(path: &Path, o: &Options) -> Result<Opened> {
    let index = Index::open(path, o.holdout)?;
    let first = index.entries.iter().find(|e| !e.test).ok_or_else(|| {
        Error::data(
            path,
            "no training images (every sample is in the test split)",
        )
    })?;
    let channels = match first.channels {
        0 => {
            let bytes = read(&index, first)?;
            decode::header(&bytes)
                .map_err(|m| Error::data(index.file(first), m))?
                .2
        }
        c => usize::from(c),
    };
    let fingerprint = index.fingerprint();
    let classes = index.classes.clone();
    let n = index.entries.len();
    let shared = Arc::new(Shared {
        channels,
        max_pixels: o.max_pixels,
        skip_bad: o.skip_bad,
        reduce: o.reduced_decode,
        bad: (0..n).map(|_| AtomicBool::new(false)).collect(),
        skipped: AtomicUsize::new(0),
        index,
    });
    let split = |test: bool| {
        let rows: Vec<usize> = (0..n)
            .filter(|&k| shared.index.entries[k].test == test)
            .collect();
        let labels = rows
            .iter()
            .map(|&k| shared.index.entries[k].label)
            .collect();
        let cached = cache_rule(
            &shared.index,
            &rows,
            channels,
            o.cache_bytes,
            crate::host::available(),
        );
        Stream {
            cache: cached.then(|| Arc::new((0..rows.len()).map(|_| OnceLock::new()).collect())),
            len: rows.len(),
            rows: Arc::new(rows),
            labels: Arc::new(labels),
            shared: shared.clone(),
            side: o.side,
        }
    };
    let (train, test) = (split(false), split(true));
    let said = format!(
        "streaming {} training and {} test images from {} ({channels} channels, evaluated at {side}x{side}); decoded images cached in memory: train {}, test {}",
        train.len,
        test.len,
        path.display(),
        if train.cache.is_some() { "yes" } else { "no" },
        if test.cache.is_some() { "yes" } else { "no" },
        side = o.side,
    );
    Ok(Opened {
        train,
        test,
        classes,
        fingerprint,
        said,
    })
}

/// Whether a split is cached: its decoded 8-bit pixels, from the index's image sizes
/// (else the first image's size times the count), fit in `cache_bytes` and in a quarter
/// of the memory `available`.
pub fn cache_rule(
    index: &Index,
    rows: &[usize],
    channels: usize,
    cache_bytes: u64,
    available: Option<u64>,
) -> bool {
    let Some(&k0) = rows.first() else {
        return false;
    };
    let e0 = &index.entries[k0];
    let guess = match (e0.width, e0.height) {
        (0, _) | (_, 0) => match read(index, e0).ok().and_then(|b| decode::header(&b).ok()) {
            Some((w, h, _)) => (w * h) as u64,
            None => return false,
        },
        (w, h) => u64::from(w) * u64::from(h),
    };
    let bytes: u64 = rows
        .iter()
        .map(|&k| {
            let e = &index.entries[k];
            match (e.width, e.height) {
                (0, _) | (_, 0) => guess,
                (w, h) => u64::from(w) * u64::from(h),
            }
        })
        .sum::<u64>()
        * channels as u64;
    bytes <= cache_bytes && available.is_none_or(|a| bytes <= a / 4)
}

/// The bytes of entry `e`'s image, after checking that its file has the size and
/// modification time the index recorded.
pub fn read(index: &Index, e: &Entry) -> Result<Vec<u8>> {
    let file = index.file(e);
    let now = Stamp::of(&file)?;
    if now != e.stamp {
        return Err(Error::data(
            &file,
            format!(
                "changed since it was indexed ({} bytes, was {}; or a new modification time): run `contrastive data index` again",
                now.bytes, e.stamp.bytes
            ),
        ));
    }
    let mut f = std::fs::File::open(&file).map_err(|err| Error::io(&file, err))?;
    match e.member {
        None => {
            let mut bytes = Vec::with_capacity(e.stamp.bytes as usize);
            f.read_to_end(&mut bytes)
                .map_err(|err| Error::io(&file, err))?;
            Ok(bytes)
        }
        Some((offset, len)) => {
            let mut bytes = vec![0; len as usize];
            f.seek(SeekFrom::Start(offset))
                .and_then(|_| f.read_exact(&mut bytes))
                .map_err(|err| Error::io(&file, err))?;
            Ok(bytes)
        }
    }
}

impl Stream {
    /// Samples in use.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the split has no samples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The labels of the samples in use.
    pub fn labels(&self) -> &[u32] {
        &self.labels[..self.len]
    }

    /// The shape of an evaluated sample, `[channels, side, side]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.shared.channels, self.side, self.side]
    }

    /// The first `n` samples (all when `n` is 0 or larger than the split).
    pub fn truncate(mut self, n: usize) -> Self {
        if n > 0 && n < self.len {
            self.len = n;
        }
        self
    }

    /// Bad files skipped since the last call (with `data.skip_bad`).
    pub fn take_skipped(&self) -> usize {
        self.shared.skipped.swap(0, Ordering::Relaxed)
    }

    /// The path (and tar member) of sample `i`, for messages.
    fn name(&self, i: usize) -> PathBuf {
        let e = &self.shared.index.entries[self.rows[i]];
        let file = self.shared.index.file(e);
        match e.member {
            Some((offset, _)) => PathBuf::from(format!("{}@{offset}", file.display())),
            None => file,
        }
    }

    /// Sample `i` decoded, from the cache when there is one.
    fn decoded(&self, i: usize) -> Result<Arc<Decoded>> {
        let load = || -> Result<Arc<Decoded>> {
            let s = &self.shared;
            let e = &s.index.entries[self.rows[i]];
            let bytes = read(&s.index, e)?;
            let d = decode::decode(&bytes, s.channels, s.max_pixels)
                .map_err(|m| Error::data(self.name(i), m))?;
            Ok(Arc::new(d))
        };
        match &self.cache {
            Some(cache) => match cache[i].get() {
                Some(d) => Ok(d.clone()),
                None => {
                    let d = load()?;
                    Ok(cache[i].get_or_init(|| d).clone())
                }
            },
            None => load(),
        }
    }

    /// Whether views may get reduced-scale decodes ([`Self::image_planned`]): asked for,
    /// and not cached (the cache holds full-size images).
    pub fn reduces(&self) -> bool {
        self.shared.reduce && self.cache.is_none()
    }

    /// `load(i)`, or with `data.skip_bad` that of the first good sample after `i`
    /// (wrapping around), with the index of the one loaded. Each bad file is counted once.
    fn good<T>(&self, i: usize, load: impl Fn(usize) -> Result<T>) -> Result<(usize, T)> {
        let s = &self.shared;
        let mut first_error = None;
        for j in (i..i + SUBSTITUTES.min(self.len)).map(|j| j % self.len) {
            if s.bad[self.rows[j]].load(Ordering::Relaxed) {
                continue;
            }
            match load(j) {
                Ok(d) => return Ok((j, d)),
                Err(e) if s.skip_bad => {
                    if !s.bad[self.rows[j]].swap(true, Ordering::Relaxed) {
                        s.skipped.fetch_add(1, Ordering::Relaxed);
                    }
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(match first_error {
            Some(e) => Error::Invalid(format!(
                "{SUBSTITUTES} bad files in a row from {} on (data.skip_bad): {e}",
                self.name(i).display()
            )),
            None => Error::Invalid(format!(
                "no good file within {SUBSTITUTES} of {} (data.skip_bad)",
                self.name(i).display()
            )),
        })
    }

    /// Sample `i` at full size for the views (see [`Self::good`] for bad files).
    pub fn image(&self, i: usize) -> Result<Image<'static>> {
        let (j, d) = self.good(i, |j| self.decoded(j))?;
        Ok(Image {
            data: Pixels::Hwc8(d.clone()),
            shape: d.shape(),
            index: j,
            label: self.labels[j],
        })
    }

    /// Sample `i` decoded at `1/plan([h, w])` of its full sides where it is a JPEG and the
    /// divisor is 4 or 8 ([`decode::decode_reduced`]), with its full `[h, w]`.
    pub fn image_planned(
        &self,
        i: usize,
        plan: &dyn Fn([usize; 2]) -> usize,
    ) -> Result<(Image<'static>, [usize; 2])> {
        let s = &self.shared;
        let (j, (d, full)) = self.good(i, |j| {
            let bytes = read(&s.index, &s.index.entries[self.rows[j]])?;
            let bad = |m| Error::data(self.name(j), m);
            let (w, h, _) = decode::header(&bytes).map_err(bad)?;
            let div = plan([h, w]);
            let d = decode::decode_reduced(&bytes, (w, h), s.channels, s.max_pixels, div)
                .map_err(bad)?;
            Ok((d, [h, w]))
        })?;
        let img = Image {
            shape: d.shape(),
            data: Pixels::Hwc8(Arc::new(d)),
            index: j,
            label: self.labels[j],
        };
        Ok((img, full))
    }

    /// Samples `indices` resized and centre-cropped for evaluation, as `[n, channels,
    /// side, side]` values in `[0, 1]`, decoded in parallel, with the labels of the images
    /// used.
    pub fn pick(&self, indices: &[usize]) -> Result<(Vec<f32>, Vec<u32>)> {
        let got: Vec<(Vec<f32>, u32)> = indices
            .par_iter()
            .map(|&i| {
                let (j, d) = self.good(i, |j| self.decoded(j))?;
                Ok((d.resized_centre(self.side).chw(), self.labels[j]))
            })
            .collect::<Result<_>>()?;
        let labels = got.iter().map(|g| g.1).collect();
        Ok((got.into_iter().flat_map(|g| g.0).collect(), labels))
    }
}
