//! Seeded batches of views, prepared on a background thread while the trainer computes.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::Split;
use crate::views::transform::mix;
use crate::views::{Sampler, ViewBatch};

/// Salt that separates the shuffling RNG from the view RNGs.
const SHUFFLE: u64 = 0x5348_5546;
/// Batches prepared ahead of the trainer.
const PREFETCH: usize = 2;

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

/// Number of batches of an epoch.
pub fn steps_per_epoch(n: usize, batch: usize, drop_last: bool) -> usize {
    if drop_last {
        n / batch
    } else {
        n.div_ceil(batch)
    }
}

/// One epoch's batches from step `start` on, as `(step in epoch, views)`.
pub struct EpochLoader {
    rx: Receiver<(usize, ViewBatch)>,
    worker: Option<JoinHandle<()>>,
}

impl EpochLoader {
    /// Starts preparing the batches of `epoch`. Batch `s` holds the samples at positions
    /// `s*batch..(s+1)*batch` of [`epoch_order`], viewed with seed `mix(seed, epoch, s)`,
    /// so any step can be reproduced without replaying the ones before it.
    pub fn new(
        split: Arc<Split>,
        sampler: Arc<dyn Sampler>,
        batch: usize,
        drop_last: bool,
        seed: u64,
        epoch: usize,
        start: usize,
    ) -> Self {
        let (tx, rx) = sync_channel(PREFETCH);
        let worker = std::thread::spawn(move || {
            let order = epoch_order(seed, epoch, split.len());
            let steps = steps_per_epoch(split.len(), batch, drop_last);
            for s in start..steps {
                let idx = &order[s * batch..((s + 1) * batch).min(order.len())];
                let views = sampler.sample(&split, idx, mix(seed, epoch as u64, s as u64));
                if tx.send((s, views)).is_err() {
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
    type Item = (usize, ViewBatch);

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
