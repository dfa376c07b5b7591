//! How well the embeddings cluster by class: spherical k-means into as many clusters as
//! there are classes, scored against the labels by normalised and adjusted mutual
//! information (NMI, AMI; Vinh et al. 2010), with the arithmetic mean of the two
//! entropies as the normaliser, as scikit-learn and pytorch-metric-learning compute them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::knn::Features;

/// NMI and AMI of k-means on a set of embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Clustering {
    pub nmi: f64,
    pub ami: f64,
    pub clusters: usize,
}

/// k-means of the labelled rows of `f` into `classes` clusters (seeded by `seed`), scored
/// against their labels; `None` with fewer than two rows or classes.
pub fn clustering(f: &Features, classes: usize, seed: u64) -> Option<Clustering> {
    let f = f.labelled(classes);
    if f.len() < 2 || classes < 2 {
        return None;
    }
    let k = classes.min(f.len());
    let (_, assigned) = crate::views::cluster::kmeans(&f.normalised().data, f.dim, k, seed);
    let (nmi, ami) = nmi_ami(&f.labels, &assigned);
    Some(Clustering {
        nmi,
        ami,
        clusters: k,
    })
}

/// `(NMI, AMI)` of labelling `b` against labelling `a` (same length):
///
/// `NMI = MI / mean(H(a), H(b))`, `AMI = (MI - E[MI]) / (mean(H(a), H(b)) - E[MI])`,
///
/// `E[MI]` the expected mutual information of two random labellings with the same class
/// sizes (the hypergeometric sum, with log-factorials). Both are 1 when the labellings
/// are each a single class.
pub fn nmi_ami(a: &[u32], b: &[u32]) -> (f64, f64) {
    let n = a.len();
    let count = |x: &[u32]| {
        let mut c = BTreeMap::<u32, usize>::new();
        x.iter().for_each(|&v| *c.entry(v).or_default() += 1);
        c
    };
    let (ca, cb) = (count(a), count(b));
    if (ca.len() <= 1 && cb.len() <= 1) || n == 0 {
        return (1.0, 1.0);
    }
    let mut joint = BTreeMap::<(u32, u32), usize>::new();
    for (&x, &y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_default() += 1;
    }
    let nf = n as f64;
    let entropy = |c: &BTreeMap<u32, usize>| -> f64 {
        c.values()
            .map(|&v| {
                let p = v as f64 / nf;
                -p * p.ln()
            })
            .sum()
    };
    let (ha, hb) = (entropy(&ca), entropy(&cb));
    let mi: f64 = joint
        .iter()
        .map(|(&(x, y), &nij)| {
            let nij = nij as f64;
            nij / nf * (nf * nij / (ca[&x] as f64 * cb[&y] as f64)).ln()
        })
        .sum::<f64>()
        .max(0.0);
    let mean = (ha + hb) / 2.0;
    let nmi = if mean > 0.0 { mi / mean } else { 1.0 };
    let emi = expected_mutual_information(&ca, &cb, n);
    let denominator = match mean - emi {
        d if d < 0.0 => d.min(-f64::EPSILON),
        d => d.max(f64::EPSILON),
    };
    (nmi, (mi - emi) / denominator)
}

/// `E[MI]` of two labellings with class sizes `ca` and `cb` over `n` items.
fn expected_mutual_information(
    ca: &BTreeMap<u32, usize>,
    cb: &BTreeMap<u32, usize>,
    n: usize,
) -> f64 {
    // ln k! for k = 0..=n
    let mut lf = vec![0f64; n + 1];
    for k in 1..=n {
        lf[k] = lf[k - 1] + (k as f64).ln();
    }
    let nf = n as f64;
    let mut emi = 0.0;
    for &ai in ca.values() {
        for &bj in cb.values() {
            let lo = (ai + bj).saturating_sub(n).max(1);
            for nij in lo..=ai.min(bj) {
                let term = nij as f64 / nf * (nf * nij as f64 / (ai as f64 * bj as f64)).ln();
                let log_p = lf[ai] + lf[bj] + lf[n - ai] + lf[n - bj]
                    - lf[n]
                    - lf[nij]
                    - lf[ai - nij]
                    - lf[bj - nij]
                    - lf[n - ai - bj + nij];
                emi += term * log_p.exp();
            }
        }
    }
    emi
}
