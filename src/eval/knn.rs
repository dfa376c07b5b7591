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
#[derive(Debug, Clone)]
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

/// Predicted class of every query row.
pub fn predict(
    memory: &Features,
    queries: &Features,
    k: usize,
    t: f32,
    classes: usize,
    device: &Device,
) -> Vec<u32> {
    let mem = memory.normalised();
    let q = queries.normalised();
    let n = mem.len();
    let k = k.min(n);
    let mem_t =
        Tensor::<2>::from_data(TensorData::new(mem.data.clone(), [n, mem.dim]), device).transpose();
    let mut out = Vec::with_capacity(q.len());
    for start in (0..q.len()).step_by(CHUNK) {
        let rows = CHUNK.min(q.len() - start);
        let block = q.data[start * q.dim..(start + rows) * q.dim].to_vec();
        let block = Tensor::<2>::from_data(TensorData::new(block, [rows, q.dim]), device);
        let sims = block.matmul(mem_t.clone()).into_data();
        let sims = sims.as_slice::<f32>().unwrap_or(&[]);
        let preds: Vec<u32> = sims
            .par_chunks(n)
            .map(|row| vote(row, &mem.labels, k, t, classes))
            .collect();
        out.extend(preds);
    }
    out
}

/// The weighted vote of the `k` most similar rows of `sims`.
fn vote(sims: &[f32], labels: &[u32], k: usize, t: f32, classes: usize) -> u32 {
    let mut idx: Vec<u32> = (0..sims.len() as u32).collect();
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, |&a, &b| {
            sims[b as usize].total_cmp(&sims[a as usize])
        });
        idx.truncate(k);
    }
    let mut score = vec![0f64; classes];
    for &i in &idx {
        score[labels[i as usize] as usize] += f64::from((sims[i as usize] / t).exp());
    }
    argmax(&score) as u32
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
}
