//! Where keys come from: the review's encoder taxonomy (end-to-end, momentum encoder,
//! past snapshot, frozen teacher) and key sources (the batch, a FIFO queue, a memory
//! bank of per-instance embeddings).

pub mod config;

pub use config::{KeyEncoderKind, KeySourceKind, KeysConfig, Pairing};

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::TensorData;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::kernels::gemm::{self, Mat};
use crate::model::Model;
use crate::pairs::Tag;
use crate::views::transform::mix;

/// Every float parameter (and running statistic) of a module, flattened, in visiting order.
struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().detach();
        let n = t.shape().num_elements();
        self.0.push(t.reshape([n]));
    }
}

/// Replaces each float parameter `k` by `m k + (1 - m) q`, `q` taken in visiting order.
struct Ema {
    online: std::vec::IntoIter<Tensor<1>>,
    m: f64,
}

impl ModuleMapper for Ema {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(q) = self.online.next() else {
            return param;
        };
        let m = self.m;
        param.map(|k| {
            let q = q.reshape(k.dims()).to_device(&k.device());
            (k.mul_scalar(m) + q.mul_scalar(1.0 - m)).detach()
        })
    }
}

/// `key = m key + (1 - m) online`, parameter by parameter (running statistics included:
/// the key encoder's own forward passes update them too, so they stay close either way).
pub fn ema(key: Model, online: &Model, m: f64) -> Model {
    let mut c = Collect(Vec::new());
    online.visit(&mut c);
    key.map(&mut Ema {
        online: c.0.into_iter(),
        m,
    })
}

/// An independent copy of `model` (its own running statistics), without gradients.
pub fn frozen_copy(model: &Model, fresh: Model) -> Model {
    fresh.load_record(model.clone().into_record()).no_grad()
}

/// A queue of earlier keys, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    pub dim: usize,
    pub capacity: usize,
    pub z: Vec<f32>,
    pub tags: Vec<Tag>,
}

impl Queue {
    /// Appends keys `z` (`[n, dim]`) with their tags, dropping the oldest beyond capacity.
    pub fn push(&mut self, z: &[f32], tags: &[Tag]) {
        self.z.extend_from_slice(z);
        self.tags.extend_from_slice(tags);
        let n = self.tags.len();
        if n > self.capacity {
            let drop = n - self.capacity;
            self.z.drain(..drop * self.dim);
            self.tags.drain(..drop);
        }
    }

    /// For each row of `z` (`[n, dim]`), the index of the held key of highest cosine
    /// similarity (the first on ties): NNCLR's support-set look-up, one GEMM of the unit
    /// rows. `None` while the queue is empty.
    pub fn nearest(&self, z: &[f32]) -> Option<Vec<usize>> {
        if self.tags.is_empty() {
            return None;
        }
        let unit = |rows: &[f32]| {
            let mut rows = rows.to_vec();
            rows.chunks_mut(self.dim).for_each(normalise);
            rows
        };
        let (held, q) = (unit(&self.z), unit(z));
        let (s, n) = (self.tags.len(), q.len() / self.dim);
        let sim = gemm::product(
            Mat::rows(&q, n, self.dim),
            Mat::rows(&held, s, self.dim).t(),
        );
        Some(
            sim.chunks(s)
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .fold(
                            (0, f32::NEG_INFINITY),
                            |b, (j, &v)| if v > b.1 { (j, v) } else { b },
                        )
                        .0
                })
                .collect(),
        )
    }
}

/// One L2-normalised embedding per training instance, updated with momentum.
#[derive(Debug, Clone)]
pub struct Bank {
    pub dim: usize,
    pub z: Vec<f32>,
    pub labels: Vec<u32>,
}

impl Bank {
    /// Random unit vectors for `labels.len()` instances, from `seed`.
    pub fn new(dim: usize, labels: Vec<u32>, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut z: Vec<f32> = (0..labels.len() * dim)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect();
        z.chunks_mut(dim).for_each(normalise);
        Self { dim, z, labels }
    }

    /// `b_i = normalise(m b_i + (1 - m) normalise(z))` for each instance `i` and its new
    /// embedding `z`.
    pub fn update(&mut self, instances: &[u32], z: &[f32], m: f32) {
        for (&i, new) in instances.iter().zip(z.chunks(self.dim)) {
            let mut new = new.to_vec();
            normalise(&mut new);
            let row = &mut self.z[i as usize * self.dim..(i as usize + 1) * self.dim];
            row.iter_mut()
                .zip(&new)
                .for_each(|(b, &v)| *b = m * *b + (1.0 - m) * v);
            normalise(row);
        }
    }

    /// The entries of `instances` and their tags.
    pub fn gather(&self, instances: &[u32]) -> (Vec<f32>, Vec<Tag>) {
        let mut z = Vec::with_capacity(instances.len() * self.dim);
        let tags = instances
            .iter()
            .map(|&i| {
                z.extend_from_slice(&self.z[i as usize * self.dim..(i as usize + 1) * self.dim]);
                Tag::new(i, self.labels[i as usize], u16::MAX)
            })
            .collect();
        (z, tags)
    }

    /// The entries a step scores its queries against: the batch's own `instances`, once
    /// each in ascending order, then [`Self::sample`]'s `negatives` draws.
    pub fn candidates(
        &self,
        instances: &[u32],
        negatives: usize,
        seed: u64,
        step: usize,
    ) -> Vec<u32> {
        let mut idx = instances.to_vec();
        idx.sort_unstable();
        idx.dedup();
        idx.extend(self.sample(negatives, seed, step));
        idx
    }

    /// `k` instances drawn uniformly with replacement, from the step's seed.
    fn sample(&self, k: usize, seed: u64, step: usize) -> Vec<u32> {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, step as u64, 0x42414e4b));
        (0..k)
            .map(|_| rng.random_range(0..self.labels.len() as u32))
            .collect()
    }
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
}

/// Rows of a tensor as host values.
pub fn host(t: &Tensor<2>) -> Vec<f32> {
    t.clone().detach().into_data().iter::<f32>().collect()
}

/// Host rows `[n, dim]` as a tensor on `device`.
pub fn device_rows(z: Vec<f32>, dim: usize, device: &Device) -> Tensor<2> {
    let n = z.len() / dim.max(1);
    Tensor::from_data(TensorData::new(z, [n, dim]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(i: u32) -> Tag {
        Tag::new(i, 0, 1)
    }

    #[test]
    fn key_encoders_need_cross_pairing_and_keys_to_compute() {
        let err = |c: KeysConfig| c.validate().unwrap_err().to_string();
        let context = KeysConfig {
            encoder: KeyEncoderKind::Momentum,
            pairing: Pairing::Context,
            ..KeysConfig::default()
        };
        assert!(err(context).starts_with("config key `keys.pairing` = context"));
        let bank = KeysConfig {
            encoder: KeyEncoderKind::Teacher,
            teacher: Some("t.onnx".into()),
            source: KeySourceKind::Bank,
            pairing: Pairing::Cross,
            ..KeysConfig::default()
        };
        assert!(err(bank).starts_with("config key `keys.encoder` = teacher"));
    }

    #[test]
    fn queue_keeps_the_newest_keys_in_order() {
        let mut q = Queue {
            dim: 2,
            capacity: 3,
            ..Queue::default()
        };
        q.push(&[1., 1., 2., 2.], &[tag(1), tag(2)]);
        q.push(&[3., 3., 4., 4.], &[tag(3), tag(4)]);
        assert_eq!(q.z, vec![2., 2., 3., 3., 4., 4.]);
        assert_eq!(
            q.tags.iter().map(|t| t.instance).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
    }

    #[test]
    fn bank_update_is_the_normalised_momentum_average() {
        let mut b = Bank {
            dim: 2,
            z: vec![1., 0., 0., 1.],
            labels: vec![0, 1],
        };
        b.update(&[1], &[1.0, 0.0], 0.5);
        let s = 0.5f32.sqrt();
        assert!((b.z[2] - s).abs() < 1e-6 && (b.z[3] - s).abs() < 1e-6);
        assert_eq!(&b.z[..2], &[1., 0.], "other rows untouched");
        let (z, tags) = b.gather(&[1, 0]);
        assert_eq!(z.len(), 4);
        assert_eq!(tags[0].instance, 1);
    }

    #[test]
    fn momentum_schedule_runs_from_start_to_end() {
        let k = KeysConfig {
            momentum: 0.99,
            momentum_end: 1.0,
            ..KeysConfig::default()
        };
        assert!((k.momentum_at(0, 100) - 0.99).abs() < 1e-12);
        assert!((k.momentum_at(100, 100) - 1.0).abs() < 1e-12);
        assert!((k.momentum_at(50, 100) - 0.995).abs() < 1e-12);
    }
}
