//! 2-D maps of embeddings for plotting: PCA and t-SNE.

use super::knn::Features;

/// Iterations of the PCA subspace iteration; the top-2 subspace of a few hundred
/// dimensions converges long before this.
const PCA_ITERATIONS: usize = 300;
/// t-SNE perplexity (van der Maaten & Hinton 2008's usual 30).
const PERPLEXITY: f32 = 30.0;
/// t-SNE gradient-descent epochs.
const TSNE_EPOCHS: usize = 750;
/// Barnes-Hut accuracy/speed trade-off (0.5 as in van der Maaten 2014).
const THETA: f32 = 0.5;

/// Projection of every row onto the two leading principal components, `[n, 2]` row-major.
///
/// The components are found by orthogonal (subspace) iteration on the `dim x dim`
/// covariance from a fixed start, so the map is deterministic; a linear-algebra crate
/// would be a large dependency for two eigenvectors.
pub fn pca(f: &Features) -> Vec<f32> {
    let (n, d) = (f.len(), f.dim);
    if n == 0 || d == 0 {
        return Vec::new();
    }
    let mut mean = vec![0f64; d];
    for r in f.data.chunks(d) {
        r.iter()
            .zip(&mut mean)
            .for_each(|(v, m)| *m += f64::from(*v) / n as f64);
    }
    let mut cov = vec![0f64; d * d];
    let mut centred = vec![0f64; d];
    for r in f.data.chunks(d) {
        centred
            .iter_mut()
            .zip(r.iter().zip(&mean))
            .for_each(|(c, (v, m))| *c = f64::from(*v) - m);
        for i in 0..d {
            let ci = centred[i];
            cov[i * d..(i + 1) * d]
                .iter_mut()
                .zip(&centred)
                .for_each(|(c, cj)| *c += ci * cj);
        }
    }
    let mut basis: [Vec<f64>; 2] = [
        (0..d).map(|i| 1.0 + (i % 7) as f64).collect(),
        (0..d)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect(),
    ];
    for _ in 0..PCA_ITERATIONS {
        for b in &mut basis {
            *b = (0..d)
                .map(|i| {
                    cov[i * d..(i + 1) * d]
                        .iter()
                        .zip(b.iter())
                        .map(|(c, v)| c * v)
                        .sum()
                })
                .collect();
        }
        orthonormalise(&mut basis);
    }
    let mean = &mean;
    f.data
        .chunks(d)
        .flat_map(|r| {
            basis.iter().map(move |b| {
                r.iter()
                    .zip(b)
                    .zip(mean)
                    .map(|((v, bj), m)| (f64::from(*v) - m) * bj)
                    .sum::<f64>() as f32
            })
        })
        .collect()
}

/// Gram-Schmidt on two vectors.
fn orthonormalise([a, b]: &mut [Vec<f64>; 2]) {
    let norm = |v: &mut Vec<f64>| {
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
        v.iter_mut().for_each(|x| *x /= n);
    };
    norm(a);
    let dot: f64 = a.iter().zip(b.iter()).map(|(x, y)| x * y).sum();
    b.iter_mut().zip(a.iter()).for_each(|(y, x)| *y -= dot * x);
    norm(b);
}

/// Barnes-Hut t-SNE (the `bhtsne` crate) of the L2-normalised rows with Euclidean
/// distances, `[n, 2]` row-major. It starts from the PCA map scaled to standard deviation
/// 1e-4 (Kobak & Berens 2019), so the result does not depend on a random start.
pub fn tsne(f: &Features) -> Vec<f32> {
    let n = f.len();
    if n < 4 {
        return pca(f);
    }
    let x = f.normalised();
    let mut init = pca(&x);
    let sd = (init.iter().map(|v| v * v).sum::<f32>() / init.len() as f32)
        .sqrt()
        .max(1e-12);
    init.iter_mut().for_each(|v| *v *= 1e-4 / sd);
    let rows: Vec<&[f32]> = x.data.chunks(x.dim).collect();
    let perplexity = PERPLEXITY.min((n as f32 - 1.0) / 3.0);
    let mut t = bhtsne::tSNE::<f32, &[f32], 2>::new(&rows);
    t.perplexity(perplexity)
        .epochs(TSNE_EPOCHS)
        .initial_embedding(init)
        .barnes_hut(THETA, |a, b| {
            a.iter()
                .zip(b.iter())
                .map(|(p, q)| (p - q) * (p - q))
                .sum::<f32>()
                .sqrt()
        });
    t.embedding()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_finds_the_long_axis() {
        let data: Vec<f32> = (0..50)
            .flat_map(|i| {
                let t = i as f32 - 25.0;
                [t, 0.5 * t, 0.01 * (i % 3) as f32]
            })
            .collect();
        let f = Features {
            data,
            dim: 3,
            labels: vec![0; 50],
        };
        let p = pca(&f);
        let spread = |k: usize| {
            p.iter()
                .skip(k)
                .step_by(2)
                .fold(0f32, |m, v| m.max(v.abs()))
        };
        assert!(
            spread(0) > 25.0 && spread(1) < 0.1,
            "{} {}",
            spread(0),
            spread(1)
        );
    }
}
