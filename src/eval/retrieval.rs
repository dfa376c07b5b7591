//! Retrieval metrics, as metric-learning papers and pytorch-metric-learning's
//! `AccuracyCalculator` report them: every labelled embedding is a query against all the
//! others (itself excluded), ranked by cosine similarity.
//!
//! - Recall@k: the fraction of queries with a same-label row among their `k` nearest
//!   (Recall@1 is pytorch-metric-learning's `precision_at_1`).
//! - R-precision: with `R` the number of other rows of the query's label, the fraction of
//!   same-label rows among its `R` nearest.
//! - mAP@R (Musgrave et al. 2020): `1/R sum_{i <= R} P(i) rel(i)`, the precision at each
//!   same-label rank among the first `R`.
//!
//! Queries whose label has no other row (`R = 0`) are left out of every mean.

use rayon::prelude::*;
use serde::Serialize;

use super::knn::Features;

/// The `k` of Recall@k.
pub const RECALL_AT: [usize; 4] = [1, 2, 4, 8];

/// Retrieval metrics of one set of embeddings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retrieval {
    /// `(k, Recall@k)` for each k of [`RECALL_AT`].
    pub recall_at: Vec<(usize, f64)>,
    pub r_precision: f64,
    pub map_at_r: f64,
    /// Queries that counted (their label has another row).
    pub queries: usize,
}

/// The retrieval metrics of `f` (rows with labels), `None` when no query has a
/// same-label row to find.
pub fn retrieval(f: &Features) -> Option<Retrieval> {
    let z = f.normalised();
    let n = z.len();
    let mut per_label = std::collections::HashMap::<u32, usize>::new();
    for &l in &z.labels {
        *per_label.entry(l).or_default() += 1;
    }
    let kmax = RECALL_AT[RECALL_AT.len() - 1];
    // (recall hits per k, R-precision, AP@R) of each query that counts
    let rows: Vec<([bool; 4], f64, f64)> = (0..n)
        .into_par_iter()
        .filter_map(|q| {
            let label = z.labels[q];
            let r = per_label[&label] - 1;
            if r == 0 {
                return None;
            }
            let query = z.row(q);
            let mut order: Vec<(f32, usize)> = (0..n)
                .filter(|&j| j != q)
                .map(|j| {
                    let s: f32 = query.iter().zip(z.row(j)).map(|(a, b)| a * b).sum();
                    (s, j)
                })
                .collect();
            let top = r.max(kmax).min(order.len());
            order.select_nth_unstable_by(top - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            order.truncate(top);
            order.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let same: Vec<bool> = order.iter().map(|&(_, j)| z.labels[j] == label).collect();
            let mut hits = [false; 4];
            for (h, &k) in hits.iter_mut().zip(&RECALL_AT) {
                *h = same.iter().take(k).any(|&s| s);
            }
            let (mut found, mut ap) = (0usize, 0f64);
            for (i, &s) in same.iter().take(r).enumerate() {
                if s {
                    found += 1;
                    ap += found as f64 / (i + 1) as f64;
                }
            }
            Some((hits, found as f64 / r as f64, ap / r as f64))
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    let m = rows.len() as f64;
    let recall_at = RECALL_AT
        .iter()
        .enumerate()
        .map(|(i, &k)| (k, rows.iter().filter(|r| r.0[i]).count() as f64 / m))
        .collect();
    Some(Retrieval {
        recall_at,
        r_precision: rows.iter().map(|r| r.1).sum::<f64>() / m,
        map_at_r: rows.iter().map(|r| r.2).sum::<f64>() / m,
        queries: rows.len(),
    })
}
