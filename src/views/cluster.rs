//! Natural clustering by prototypes: k-means over a memory bank of instance embeddings,
//! recomputed every few steps, turns cluster membership into positives (PCL; SwAV's Sinkhorn codes are `loss.kind = "swav"`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::keys::Bank;

/// Lloyd iterations per re-assignment.
const ITERATIONS: usize = 20;

/// One k-means clustering of the bank: its unit centroids (`k x dim`, empty before the
/// first assignment), each instance's cluster (`u32::MAX` before it) and each cluster's
/// concentration `phi` ([`crate::loss::proto::concentration`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    pub k: usize,
    pub centroids: Vec<f32>,
    pub assign: Vec<u32>,
    pub phi: Vec<f32>,
}

/// A memory bank of L2-normalised embeddings per training instance and its clusterings:
/// one for the `cluster` relation, one per `loss.proto.clusters` for ProtoNCE.
#[derive(Debug, Clone)]
pub struct Prototypes {
    pub bank: Bank,
    pub sets: Vec<Clustering>,
    /// `alpha` and the mean temperature of the concentrations.
    pub alpha: f64,
    pub temperature: f64,
}

impl Prototypes {
    /// Clusterings of `clusters[m]` prototypes each over `bank`, none assigned yet.
    pub fn new(bank: Bank, clusters: &[usize], alpha: f64, temperature: f64) -> Self {
        let n = bank.labels.len();
        let sets = clusters
            .iter()
            .map(|&k| Clustering {
                k,
                centroids: Vec::new(),
                assign: vec![u32::MAX; n],
                phi: Vec::new(),
            })
            .collect();
        Self {
            bank,
            sets,
            alpha,
            temperature,
        }
    }

    /// Each instance's cluster in the first clustering (the `cluster` relation's).
    pub fn assign(&self) -> &[u32] {
        &self.sets[0].assign
    }

    /// Re-assigns every instance by spherical k-means on the bank, each clustering seeded
    /// from `seed` and its place in the list, and estimates the concentrations.
    pub fn recluster(&mut self, seed: u64) {
        let (z, dim) = (&self.bank.z, self.bank.dim);
        for (m, set) in self.sets.iter_mut().enumerate() {
            let seed = seed ^ (m as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let (centroids, assign) = kmeans(z, dim, set.k, seed);
            set.phi = crate::loss::proto::concentration(
                z,
                dim,
                &centroids,
                &assign,
                self.alpha,
                self.temperature,
            );
            (set.centroids, set.assign) = (centroids, assign);
        }
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
