//! Natural clustering by prototypes: k-means over a memory bank of instance embeddings,
//! recomputed every few steps, turns cluster membership into positives (PCL; SwAV's Sinkhorn codes are `loss.kind = "swav"`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::keys::Bank;

/// Lloyd iterations per re-assignment.
const ITERATIONS: usize = 20;

/// A memory bank of L2-normalised embeddings per training instance and the cluster each
/// instance was last assigned to (`u32::MAX` before the first assignment).
#[derive(Debug, Clone)]
pub struct Prototypes {
    pub bank: Bank,
    pub assign: Vec<u32>,
    pub clusters: usize,
}

impl Prototypes {
    pub fn new(bank: Bank, clusters: usize) -> Self {
        let n = bank.labels.len();
        Self {
            bank,
            assign: vec![u32::MAX; n],
            clusters,
        }
    }

    /// Re-assigns every instance by spherical k-means on the bank, seeded by `seed`.
    pub fn recluster(&mut self, seed: u64) {
        let (_, assign) = kmeans(&self.bank.z, self.bank.dim, self.clusters, seed);
        self.assign = assign;
    }
}

/// Spherical k-means (cosine similarity on unit rows) of `data` (`n x dim`) into `k`
/// clusters: k-means++ seeding, then [`ITERATIONS`] Lloyd steps. Returns the unit-norm
/// centroids and each row's cluster. Written here because the k-means crates on
/// crates.io pull in ndarray/linfa stacks for what is fifty lines.
pub fn kmeans(data: &[f32], dim: usize, k: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let n = data.len() / dim;
    let row = |i: usize| &data[i * dim..(i + 1) * dim];
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut centroids: Vec<f32> = row(rng.random_range(0..n)).to_vec();
    let mut dist = vec![f32::INFINITY; n];
    for c in 1..k.min(n) {
        let last = centroids[(c - 1) * dim..c * dim].to_vec();
        dist.par_iter_mut().enumerate().for_each(|(i, d)| {
            *d = d.min((1.0 - dot(row(i), &last)).max(0.0));
        });
        let total: f32 = dist.iter().sum();
        let mut r = rng.random::<f32>() * total;
        let pick = dist
            .iter()
            .position(|&d| {
                r -= d;
                r <= 0.0
            })
            .unwrap_or(n - 1);
        centroids.extend_from_slice(row(pick));
    }
    let k = centroids.len() / dim;
    let mut assign = vec![0u32; n];
    for _ in 0..ITERATIONS {
        assign.par_iter_mut().enumerate().for_each(|(i, a)| {
            let x = row(i);
            let best = (0..k)
                .map(|c| dot(x, &centroids[c * dim..(c + 1) * dim]))
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (c, s)| if s > b.1 { (c, s) } else { b },
                );
            *a = best.0 as u32;
        });
        let mut sums = vec![0.0f32; k * dim];
        for (i, &a) in assign.iter().enumerate() {
            let a = a as usize;
            sums[a * dim..(a + 1) * dim]
                .iter_mut()
                .zip(row(i))
                .for_each(|(s, x)| *s += x);
        }
        for c in 0..k {
            let s = &mut sums[c * dim..(c + 1) * dim];
            let norm = dot(s, s).sqrt();
            if norm > 0.0 {
                s.iter_mut().for_each(|v| *v /= norm);
                centroids[c * dim..(c + 1) * dim].copy_from_slice(s);
            }
        }
    }
    (centroids, assign)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separated_directions_form_their_own_clusters() {
        // Rows near +x, near +y and near -x: three clusters, found exactly.
        let rows: [[f32; 2]; 6] = [
            [1.0, 0.05],
            [1.0, -0.05],
            [0.05, 1.0],
            [-0.05, 1.0],
            [-1.0, 0.05],
            [-1.0, -0.05],
        ];
        let data: Vec<f32> = rows
            .iter()
            .flat_map(|r| {
                let n = (r[0] * r[0] + r[1] * r[1]).sqrt();
                [r[0] / n, r[1] / n]
            })
            .collect();
        let (_, a) = kmeans(&data, 2, 3, 7);
        assert_eq!(a[0], a[1]);
        assert_eq!(a[2], a[3]);
        assert_eq!(a[4], a[5]);
        assert!(a[0] != a[2] && a[2] != a[4] && a[0] != a[4]);
    }
}
