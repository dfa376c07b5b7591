//! Seeded batches of views, prepared on a background thread while the trainer computes.
//!
//! Memory: at most `data.prefetch` finished batches wait in the queue, one is being
//! built, and a streamed source holds one decoded image per worker thread.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use std::collections::BTreeMap;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Source;
use crate::error::{Error, Result};
use crate::views::transform::mix;
use crate::views::{Sampler, ViewBatch};

/// Salt that separates the shuffling RNG from the view RNGs.
const SHUFFLE: u64 = 0x5348_5546;

/// Salt of the class-balanced batch RNG.
const BALANCED: u64 = 0x5042_4154;

/// The order in which epoch `epoch` visits the `n` samples.
pub fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(
        seed,
        epoch as u64,
        SHUFFLE,
    )));
    order
}

/// How an epoch's batches are drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batching {
    /// A seeded permutation of all samples, cut into consecutive batches.
    Shuffled,
    /// P x K batches (Hermans et al. 2017): each batch takes `classes` distinct classes,
    /// drawn uniformly from the labelled classes with at least `per_class` samples, and
    /// `per_class` distinct samples of each. Samples are drawn afresh for every batch, so an
    /// epoch (as many batches as a shuffled one) may visit a sample twice or not at all.
    /// (pytorch-metric-learning's `MPerClassSampler` differs: it cycles through the
    /// classes and samples small ones with replacement.)
    Balanced {
        classes: usize,
        per_class: usize,
        /// The samples of each eligible class.
        members: Vec<Vec<usize>>,
        /// Labelled classes left out for having fewer than `per_class` samples.
        left_out: usize,
    },
}

impl Batching {
    /// Shuffled batches when `classes` is 0, else `classes` x (`batch` / `classes`)
    /// batches over `labels` (unlabelled samples, `u32::MAX`, are never drawn); refused,
    /// naming `train.classes_per_batch`, when the data have fewer than `classes` classes
    /// with enough samples. ([`crate::config::Config::validate`] has checked that
    /// `classes` divides `batch`.)
    pub fn new(classes: usize, batch: usize, labels: &[u32]) -> Result<Self> {
        if classes == 0 {
            return Ok(Batching::Shuffled);
        }
        let per_class = batch / classes;
        let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, &y) in labels.iter().enumerate().filter(|(_, &y)| y != u32::MAX) {
            by_class.entry(y).or_default().push(i);
        }
        let labelled = by_class.len();
        let members: Vec<Vec<usize>> = by_class
            .into_values()
            .filter(|m| m.len() >= per_class)
            .collect();
        if members.len() < classes {
            return Err(Error::config(
                "train.classes_per_batch",
                classes,
                format!(
                    "at most the {} labelled classes with at least {per_class} (train.batch_size / classes) training samples",
                    members.len()
                ),
            ));
        }
        Ok(Batching::Balanced {
            classes,
            per_class,
            left_out: labelled - members.len(),
            members,
        })
    }

    /// The samples that epoch `epoch`'s `steps` batches of `batch` visit, batch after
    /// batch (the last shuffled batch may be short).
    pub fn order(
        &self,
        n: usize,
        batch: usize,
        steps: usize,
        seed: u64,
        epoch: usize,
    ) -> Vec<usize> {
        match self {
            Batching::Shuffled => {
                let mut order = epoch_order(seed, epoch, n);
                order.truncate(steps * batch);
                order
            }
            Batching::Balanced {
                classes,
                per_class,
                members,
                ..
            } => {
                debug_assert_eq!(
                    batch,
                    classes * per_class,
                    "batch size of the P x K batching"
                );
                let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, epoch as u64, BALANCED));
                let mut order = Vec::with_capacity(steps * batch);
                for _ in 0..steps {
                    let start = order.len();
                    for m in members.choose_multiple(&mut rng, *classes) {
                        order.extend(m.choose_multiple(&mut rng, *per_class));
                    }
                    order[start..].shuffle(&mut rng);
                }
                order
            }
        }
    }
}

/// Number of batches of an epoch.
pub fn steps_per_epoch(n: usize, batch: usize, drop_last: bool) -> usize {
    if drop_last {
        n / batch
    } else {
        n.div_ceil(batch)
    }
}

/// One epoch's batches from step `start` on, as `(step in epoch, views)`; a batch whose
/// file cannot be read ends the epoch with its error.
pub struct EpochLoader {
    rx: Receiver<Result<(usize, ViewBatch)>>,
    worker: Option<JoinHandle<()>>,
}

/// How the loader runs: batches prepared ahead, and the threads that read and augment
/// (`None`: rayon's global pool).
#[derive(Clone)]
pub struct Prefetch {
    pub depth: usize,
    pub pool: Option<Arc<rayon::ThreadPool>>,
}

impl Prefetch {
    /// `depth` batches ahead (`data.prefetch`); a pool of its own of `workers` threads (0:
    /// one per core) for a streamed source, whose reading and decoding then overlaps with
    /// the step instead of competing with it for the global pool.
    pub fn new(depth: usize, workers: usize, streamed: bool) -> Result<Self> {
        let pool = if streamed {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(workers)
                .thread_name(|i| format!("data-{i}"))
                .build()
                .map_err(|e| Error::Invalid(format!("data.workers = {workers}: {e}")))?;
            Some(Arc::new(pool))
        } else {
            None
        };
        Ok(Self { depth, pool })
    }
}

impl EpochLoader {
    /// Starts preparing the batches of `epoch` (with run seed `seed`) from step `start`.
    /// Batch `s` holds the samples at positions `s*batch..(s+1)*batch` of `order` (from
    /// [`Batching::order`]), viewed with seed `mix(seed, epoch, s)`, so any step can be
    /// reproduced without replaying the ones before it. Rank `r` of `n` (`part`) views its
    /// slice of each batch ([`crate::dist::part`]) exactly as one process draws it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: Arc<Source>,
        sampler: Arc<dyn Sampler>,
        order: Vec<usize>,
        batch: usize,
        (seed, epoch): (u64, usize),
        start: usize,
        (rank, ranks): (usize, usize),
        prefetch: Prefetch,
    ) -> Self {
        let (tx, rx) = sync_channel(prefetch.depth.max(1));
        let worker = std::thread::spawn(move || {
            for s in start..order.len().div_ceil(batch) {
                let idx = &order[s * batch..((s + 1) * batch).min(order.len())];
                let mine = crate::dist::part(rank, ranks, idx.len());
                let seed = mix(seed, epoch as u64, s as u64);
                let draw = || sampler.sample_from(&*source, &idx[mine.clone()], seed, mine.start);
                let views = match &prefetch.pool {
                    Some(pool) => pool.install(draw),
                    None => draw(),
                };
                let failed = views.is_err();
                if tx.send(views.map(|v| (s, v))).is_err() || failed {
                    return;
                }
            }
        });
        Self {
            rx,
            worker: Some(worker),
        }
    }
}

impl Iterator for EpochLoader {
    type Item = Result<(usize, ViewBatch)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.recv().ok()
    }
}

impl Drop for EpochLoader {
    fn drop(&mut self) {
        let (_, dead) = sync_channel(0);
        drop(std::mem::replace(&mut self.rx, dead));
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 classes of 10 samples, 2 of class 10 (too few for K = 4), and 20 unlabelled.
    fn labels() -> Vec<u32> {
        (0..100u32)
            .map(|i| i % 10)
            .chain([10, 10])
            .chain([u32::MAX; 20])
            .collect()
    }

    #[test]
    fn balanced_batches_hold_p_classes_of_k_distinct_samples() {
        let labels = labels();
        let b = Batching::new(4, 16, &labels).unwrap();
        assert!(matches!(b, Batching::Balanced { left_out: 1, .. }), "{b:?}");
        let order = b.order(labels.len(), 16, 6, 7, 0);
        assert_eq!(order.len(), 6 * 16);
        for batch in order.chunks(16) {
            let mut seen = batch.to_vec();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), 16, "a sample twice in {batch:?}");
            let mut count: BTreeMap<u32, usize> = BTreeMap::new();
            for &i in batch {
                *count.entry(labels[i]).or_default() += 1;
            }
            assert_eq!(count.len(), 4, "{count:?}");
            assert!(count.values().all(|&k| k == 4), "{count:?}");
            assert!(
                !count.contains_key(&10),
                "class 10 has fewer than K samples"
            );
        }
        assert_eq!(order, b.order(labels.len(), 16, 6, 7, 0));
        assert_ne!(order, b.order(labels.len(), 16, 6, 7, 1));
        assert_ne!(order, b.order(labels.len(), 16, 6, 8, 0));
    }

    #[test]
    fn shuffled_batches_are_the_epoch_permutation() {
        let labels = labels();
        let b = Batching::new(0, 16, &labels).unwrap();
        assert_eq!(b, Batching::Shuffled);
        let order = b.order(labels.len(), 16, 6, 7, 2);
        assert_eq!(order, epoch_order(7, 2, labels.len())[..96]);
        assert_eq!(b.order(labels.len(), 16, 8, 7, 2).len(), 122);
    }

    #[test]
    fn too_few_classes_are_refused_by_key() {
        let labels = labels();
        for (p, batch, n) in [(12, 24, 11), (4, 48, 0)] {
            let e = Batching::new(p, batch, &labels).unwrap_err().to_string();
            let want = format!(
                "config key `train.classes_per_batch` = {p}: expected at most the {n} labelled classes with at least {}",
                batch / p
            );
            assert!(e.starts_with(&want), "{e}");
        }
    }
}
