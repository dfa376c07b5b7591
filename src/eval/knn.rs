//! Weighted k-nearest-neighbour classification (Wu et al. 2018, as lightly's `knn_predict`).
//!
//! Cosine similarity between L2-normalised features; each of the `k` nearest training
//! samples votes for its class with weight `exp(sim / t)`; the class with most weight wins.

use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;

/// Rows of the query block scored against the memory at once.
const CHUNK: usize = 256;

/// Features `[n, dim]` row-major, with labels.
#[derive(Debug, Clone, Default)]
pub struct Features {
    pub data: Vec<f32>,
    pub dim: usize,
    pub labels: Vec<u32>,
}

impl Features {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows whose label is a class below `classes` (unlabelled rows, `u32::MAX`, left
    /// out), all of them when every row is.
    pub fn labelled(&self, classes: usize) -> Features {
        if self.labels.iter().all(|&l| (l as usize) < classes) {
            return self.clone();
        }
        let keep: Vec<usize> = (0..self.len())
            .filter(|&i| (self.labels[i] as usize) < classes)
            .collect();
        Features {
            data: keep.iter().flat_map(|&i| self.row(i).to_vec()).collect(),
            dim: self.dim,
            labels: keep.iter().map(|&i| self.labels[i]).collect(),
        }
    }

    /// A copy with every row scaled to unit L2 norm.
    pub fn normalised(&self) -> Features {
        let mut data = self.data.clone();
        data.par_chunks_mut(self.dim).for_each(|r| {
            let n = r.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            r.iter_mut().for_each(|v| *v /= n);
        });
        Features {
            data,
            dim: self.dim,
            labels: self.labels.clone(),
        }
    }
}

/// Predicted class of every query row (`u32::MAX` for all of them when the memory is
/// empty).
pub fn predict(
    memory: &Features,
    queries: &Features,
    k: usize,
    t: f32,
    classes: usize,
    device: &Device,
) -> Vec<u32> {
    ranked(memory, queries, k, t, classes, 1, device)
        .into_iter()
        .map(|r| r[0])
        .collect()
}

/// The `top` classes of every query row by weighted vote, best first (ties: the lower
/// class first); `[u32::MAX]` for every row when the memory is empty.
pub fn ranked(
    memory: &Features,
    queries: &Features,
    k: usize,
    t: f32,
    classes: usize,
    top: usize,
    device: &Device,
) -> Vec<Vec<u32>> {
    let mem = memory.normalised();
    let q = queries.normalised();
    let n = mem.len();
    if n == 0 {
        return vec![vec![u32::MAX]; q.len()];
    }
    let k = k.clamp(1, n);
    let mem_t =
        Tensor::<2>::from_data(TensorData::new(mem.data.clone(), [n, mem.dim]), device).transpose();
    let mut out = Vec::with_capacity(q.len());
    for start in (0..q.len()).step_by(CHUNK) {
        let rows = CHUNK.min(q.len() - start);
        let block = q.data[start * q.dim..(start + rows) * q.dim].to_vec();
        let block = Tensor::<2>::from_data(TensorData::new(block, [rows, q.dim]), device);
        let sims = block.matmul(mem_t.clone()).into_data();
        let sims = sims.as_slice::<f32>().unwrap_or(&[]);
        let preds: Vec<Vec<u32>> = sims
            .par_chunks(n)
            .map(|row| vote(row, &mem.labels, k, t, classes, top))
            .collect();
        out.extend(preds);
    }
    out
}

/// The `top` classes of the weighted vote of the `k` most similar rows of `sims`.
fn vote(sims: &[f32], labels: &[u32], k: usize, t: f32, classes: usize, top: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..sims.len() as u32).collect();
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, |&a, &b| {
            sims[b as usize].total_cmp(&sims[a as usize])
        });
        idx.truncate(k);
    }
    // exp(sim / t) relative to the nearest neighbour's, so that a low temperature cannot
    // overflow (exp(1 / 0.01) is beyond f32; the ratios, which decide the vote, are not)
    let nearest = idx
        .iter()
        .map(|&i| f64::from(sims[i as usize]))
        .fold(f64::NEG_INFINITY, f64::max);
    let mut score = vec![0f64; classes];
    for &i in &idx {
        if let Some(s) = score.get_mut(labels[i as usize] as usize) {
            *s += ((f64::from(sims[i as usize]) - nearest) / f64::from(t)).exp();
        }
    }
    if top == 1 {
        return vec![argmax(&score) as u32];
    }
    let mut order: Vec<u32> = (0..classes as u32).collect();
    order.sort_by(|&a, &b| {
        score[b as usize]
            .total_cmp(&score[a as usize])
            .then(a.cmp(&b))
    });
    order.truncate(top.max(1));
    order
}

/// Fraction of queries whose true class is among their ranked classes.
pub fn top_k_accuracy(ranked: &[Vec<u32>], truth: &[u32]) -> f64 {
    let hit = ranked
        .iter()
        .zip(truth)
        .filter(|(r, t)| r.contains(t))
        .count();
    hit as f64 / truth.len().max(1) as f64
}

/// Index of the largest value (the first on ties).
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Fraction of `pred` equal to `truth`.
pub fn accuracy(pred: &[u32], truth: &[u32]) -> f64 {
    let hit = pred.iter().zip(truth).filter(|(a, b)| a == b).count();
    hit as f64 / truth.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seven classes at angles 0, 10, 20, ... degrees: a query at 0 degrees ranks them by
    /// angle, and top-5 holds a class that top-1 misses.
    #[test]
    fn ranked_classes_follow_the_vote_and_top5_counts_the_first_five() {
        let angle = |d: f32| {
            let r = d.to_radians();
            [r.cos(), r.sin()]
        };
        let memory = Features {
            data: (0..7).flat_map(|c| angle(10.0 * c as f32)).collect(),
            dim: 2,
            labels: (0..7).collect(),
        };
        let queries = Features {
            data: angle(1.0).to_vec(),
            dim: 2,
            labels: vec![3],
        };
        let device = Device::flex();
        let r = ranked(&memory, &queries, 7, 0.1, 7, 5, &device);
        assert_eq!(r, vec![vec![0, 1, 2, 3, 4]]);
        assert_eq!(predict(&memory, &queries, 7, 0.1, 7, &device), vec![0]);
        assert_eq!(top_k_accuracy(&r, &[3]), 1.0);
        assert_eq!(top_k_accuracy(&r, &[6]), 0.0);
    }

    #[test]
    fn nearest_class_wins() {
        let memory = Features {
            data: vec![1.0, 0.0, 0.9, 0.1, 0.0, 1.0],
            dim: 2,
            labels: vec![0, 0, 1],
        };
        let queries = Features {
            data: vec![1.0, 0.05, 0.1, 1.0],
            dim: 2,
            labels: vec![0, 1],
        };
        let p = predict(&memory, &queries, 1, 0.1, 2, &Device::flex());
        assert_eq!(p, vec![0, 1]);
    }

    /// Issue 18, item 8: at t = 0.01, exp(sim / t) overflowed f32 and every vote tied.
    #[test]
    fn a_low_temperature_still_weighs_the_votes() {
        // one near neighbour of class 1 against two far ones of class 0: at a low
        // temperature the near one must win (overflowed, all three weighed inf, and the
        // tie went to class 0)
        let sims = [0.99f32, 0.95, 0.96];
        let labels = [1u32, 0, 0];
        for t in [0.02f32, 0.01, 0.001] {
            assert_eq!(vote(&sims, &labels, 3, t, 2, 1), vec![1], "t = {t}");
        }
        assert_eq!(
            vote(&sims, &labels, 3, 10.0, 2, 1),
            vec![0],
            "a high t counts votes"
        );
    }
}
