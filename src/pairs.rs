//! The one contract between similarity distributions and losses: each row of encoder
//! input carries a [`Tag`]; a [`Rule`] over tags says which (query, key) pairs are
//! positive; the [`PositiveMap`] holds the result for a batch. Losses and kernels read
//! nothing else about the batch, so this module sits at the bottom of the graph and
//! imports none of the four parts.
//!
//! ```
//! use contrastive::pairs::PositiveMap;
//! // SimCLR's batch: 3 samples, two views each, rows [a0, b0, c0, a1, b1, c1]
//! let m = PositiveMap::two_views(3);
//! assert_eq!(m.positives_of(0), vec![3]);
//! // SupCon: every other row of the same label, rows are queries and keys alike
//! let m = PositiveMap::from_labels(&[0, 1, 0, 1]);
//! assert_eq!(m.positives_of(0), vec![2]);
//! ```

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Where a row of encoder input came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    /// Index of the source sample in its split.
    pub instance: u32,
    /// Class label (`u32::MAX` when unknown).
    pub label: u32,
    /// Which view of the instance this row is.
    pub view: u16,
    /// Position inside the instance: a window's first time step, a patch's index.
    pub time: u32,
    /// Cluster (prototype) the instance is assigned to (`u32::MAX` when none yet).
    pub cluster: u32,
}

impl Tag {
    /// View `view` of `instance`, at time 0 and in no cluster.
    pub fn new(instance: u32, label: u32, view: u16) -> Self {
        Self {
            instance,
            label,
            view,
            time: 0,
            cluster: u32::MAX,
        }
    }
}

/// Which (query, key) pairs are positives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// Rows of the same instance (instance discrimination: SimCLR, MoCo, InstDisc; the
    /// other modality in CMC; a patch and its own whole in DIM).
    Instance,
    /// Rows with the same label (supervised contrastive, SupCon).
    Label,
    /// Rows of the same sequence at most `max_gap` time steps apart (sequential
    /// coherence, as in time-contrastive learning); farther windows are negatives.
    Temporal,
    /// Rows of the same instance or of the same cluster prototype (PCL, SwAV-style
    /// natural clustering); rows not yet assigned fall back to their instance.
    Cluster,
}

/// A relation with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub relation: Relation,
    /// Largest time distance of a temporal positive.
    pub max_gap: u32,
}

impl From<Relation> for Rule {
    fn from(relation: Relation) -> Self {
        Self {
            relation,
            max_gap: 0,
        }
    }
}

impl Rule {
    /// Whether key `k` is a positive of query `q` under this rule.
    pub fn positive(&self, q: &Tag, k: &Tag) -> bool {
        match self.relation {
            Relation::Instance => q.instance == k.instance,
            Relation::Label => q.label != u32::MAX && q.label == k.label,
            Relation::Temporal => {
                q.instance == k.instance && q.time.abs_diff(k.time) <= self.max_gap
            }
            Relation::Cluster => {
                q.instance == k.instance || (q.cluster != u32::MAX && q.cluster == k.cluster)
            }
        }
    }

    /// The index key that positives of a query share with it (besides a cluster);
    /// candidates found through it are then filtered by [`Self::positive`].
    fn bucket(&self, t: &Tag) -> Option<u32> {
        match self.relation {
            Relation::Instance | Relation::Temporal | Relation::Cluster => Some(t.instance),
            Relation::Label => (t.label != u32::MAX).then_some(t.label),
        }
    }
}

/// For each query, which keys are its positives and which keys are not candidates at all
/// (the query itself in a joint forward pass, known false negatives). Every other key is
/// a negative. Stored per query as sorted key indices, so that a queue of 65,536 keys or a
/// batch of 8,192 views costs memory in proportion to the positives, not to
/// `rows x cols`.
#[derive(Debug, Clone, PartialEq)]
pub struct PositiveMap {
    pub rows: usize,
    pub cols: usize,
    /// Positive keys of each query, sorted, never excluded.
    pub positives: Vec<Vec<u32>>,
    /// Keys that are not candidates of each query, sorted.
    pub excluded: Vec<Vec<u32>>,
}

impl PositiveMap {
    /// Two views of `n` samples as one batch of `2n` rows, `[x_0 .. x_n, x'_0 .. x'_n]`,
    /// every row a query and a key: each row's positive is its other view, and itself is
    /// no candidate (SimCLR's NT-Xent).
    pub fn two_views(n: usize) -> Self {
        let tags: Vec<Tag> = (0..2 * n)
            .map(|i| Tag::new((i % n) as u32, u32::MAX, (i / n) as u16))
            .collect();
        Self::build(Relation::Instance, &tags, &tags, true)
    }

    /// `n` queries against `n` keys where key `i` is query `i`'s one positive and every
    /// other key a negative (one view against the other: MoCo, BYOL, VICReg).
    pub fn paired(n: usize) -> Self {
        Self {
            rows: n,
            cols: n,
            positives: (0..n as u32).map(|i| vec![i]).collect(),
            excluded: vec![Vec::new(); n],
        }
    }

    /// Rows with `labels`, queries and keys alike: each row's positives are the other rows
    /// of its label (SupCon); `u32::MAX` marks an unlabelled row, positive to none.
    pub fn from_labels(labels: &[u32]) -> Self {
        let tags: Vec<Tag> = labels
            .iter()
            .enumerate()
            .map(|(i, &l)| Tag::new(i as u32, l, 0))
            .collect();
        Self::build(Relation::Label, &tags, &tags, true)
    }

    /// A map from per-query key lists; keys are sorted and de-duplicated, excluded keys
    /// removed from the positives, and indices checked against `cols`.
    pub fn new(
        rows: usize,
        cols: usize,
        mut positives: Vec<Vec<u32>>,
        mut excluded: Vec<Vec<u32>>,
    ) -> crate::Result<Self> {
        if positives.len() != rows || excluded.len() != rows {
            return Err(crate::Error::Invalid(format!(
                "positive map for {rows} queries has {} positive and {} exclusion lists",
                positives.len(),
                excluded.len()
            )));
        }
        for (p, e) in positives.iter_mut().zip(&mut excluded) {
            for list in [&mut *p, &mut *e] {
                list.sort_unstable();
                list.dedup();
                if let Some(&j) = list.last().filter(|&&j| j as usize >= cols) {
                    return Err(crate::Error::Invalid(format!(
                        "key {j} out of range for {cols} keys"
                    )));
                }
            }
            p.retain(|j| e.binary_search(j).is_err());
        }
        Ok(Self {
            rows,
            cols,
            positives,
            excluded,
        })
    }

    /// A map from dense `rows x cols` 0/1 matrices of positives and candidates.
    pub fn from_dense(
        rows: usize,
        cols: usize,
        positive: &[f32],
        candidate: &[f32],
    ) -> crate::Result<Self> {
        if positive.len() != rows * cols || candidate.len() != rows * cols {
            return Err(crate::Error::Invalid(format!(
                "dense masks of {} and {} values for a {rows}x{cols} map",
                positive.len(),
                candidate.len()
            )));
        }
        let pick = |m: &[f32], want: bool| -> Vec<Vec<u32>> {
            m.chunks(cols.max(1))
                .map(|r| {
                    (0..cols as u32)
                        .filter(|&j| (r[j as usize] > 0.0) == want)
                        .collect()
                })
                .collect()
        };
        Self::new(rows, cols, pick(positive, true), pick(candidate, false))
    }

    /// Builds the map from query and key tags. When `same_rows`, key `i` is query `i`
    /// (one forward pass of all views) and is excluded from query `i`'s candidates.
    pub fn build(rule: impl Into<Rule>, queries: &[Tag], keys: &[Tag], same_rows: bool) -> Self {
        let rule = rule.into();
        let mut by_bucket: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut by_cluster: HashMap<u32, Vec<u32>> = HashMap::new();
        for (j, k) in keys.iter().enumerate() {
            if let Some(b) = rule.bucket(k) {
                by_bucket.entry(b).or_default().push(j as u32);
            }
            if rule.relation == Relation::Cluster && k.cluster != u32::MAX {
                by_cluster.entry(k.cluster).or_default().push(j as u32);
            }
        }
        let candidates = |q: &Tag| -> Vec<u32> {
            let mut p: Vec<u32> = rule
                .bucket(q)
                .and_then(|b| by_bucket.get(&b))
                .cloned()
                .unwrap_or_default();
            if let Some(c) = by_cluster.get(&q.cluster) {
                p.extend(c);
                p.sort_unstable();
                p.dedup();
            }
            p
        };
        let positives = queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let mut p = candidates(q);
                p.retain(|&j| {
                    (!same_rows || j as usize != i) && rule.positive(q, &keys[j as usize])
                });
                p
            })
            .collect();
        let excluded = (0..queries.len())
            .map(|i| if same_rows { vec![i as u32] } else { vec![] })
            .collect();
        Self {
            rows: queries.len(),
            cols: keys.len(),
            positives,
            excluded,
        }
    }

    /// Whether key `j` is a candidate (positive or negative) of query `i`.
    pub fn is_candidate(&self, i: usize, j: usize) -> bool {
        self.excluded[i].binary_search(&(j as u32)).is_err()
    }

    /// Whether key `j` is a positive of query `i`.
    pub fn is_positive(&self, i: usize, j: usize) -> bool {
        self.positives[i].binary_search(&(j as u32)).is_ok()
    }

    /// Number of negatives of query `i`.
    pub fn negatives(&self, i: usize) -> usize {
        self.cols - self.excluded[i].len() - self.positives[i].len()
    }

    /// Dense `rows x cols` 0/1 matrices of positives and of candidates, row-major.
    pub fn dense(&self) -> (Vec<f32>, Vec<f32>) {
        let mut pos = vec![0.0; self.rows * self.cols];
        let mut cand = vec![1.0; self.rows * self.cols];
        for i in 0..self.rows {
            for &j in &self.positives[i] {
                pos[i * self.cols + j as usize] = 1.0;
            }
            for &j in &self.excluded[i] {
                cand[i * self.cols + j as usize] = 0.0;
            }
        }
        (pos, cand)
    }

    /// Removes from the candidates every key that shares its query's (known) label
    /// without being a positive: false negatives when labels are available.
    pub fn exclude_false_negatives(&mut self, queries: &[Tag], keys: &[Tag]) {
        let mut by_label: HashMap<u32, Vec<u32>> = HashMap::new();
        for (j, k) in keys.iter().enumerate().filter(|(_, k)| k.label != u32::MAX) {
            by_label.entry(k.label).or_default().push(j as u32);
        }
        for (i, q) in queries.iter().enumerate() {
            if let Some(same) = by_label.get(&q.label) {
                let extra = same
                    .iter()
                    .filter(|j| self.positives[i].binary_search(j).is_err());
                self.excluded[i].extend(extra);
                self.excluded[i].sort_unstable();
                self.excluded[i].dedup();
            }
        }
    }

    /// Mean number of candidates per query.
    pub fn mean_candidates(&self) -> f64 {
        let excluded: usize = self.excluded.iter().map(Vec::len).sum();
        (self.rows * self.cols - excluded) as f64 / self.rows.max(1) as f64
    }

    /// Positive key indices of query `i`.
    pub fn positives_of(&self, i: usize) -> Vec<usize> {
        self.positives[i].iter().map(|&j| j as usize).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(instance: u32, label: u32, view: u16) -> Tag {
        Tag::new(instance, label, view)
    }

    #[test]
    fn the_constructors_give_simclr_and_supcon_maps() {
        let m = PositiveMap::two_views(2);
        assert_eq!((m.rows, m.cols), (4, 4));
        assert_eq!(
            (0..4).map(|i| m.positives_of(i)).collect::<Vec<_>>(),
            vec![vec![2], vec![3], vec![0], vec![1]]
        );
        assert!(!m.is_candidate(1, 1) && m.negatives(1) == 2);
        let m = PositiveMap::from_labels(&[0, 1, 0, u32::MAX]);
        assert_eq!(m.positives_of(0), vec![2]);
        assert!(m.positives_of(1).is_empty() && m.positives_of(3).is_empty());
    }

    #[test]
    fn two_views_pair_each_row_with_its_other_view() {
        let tags = [tag(0, 1, 0), tag(1, 1, 0), tag(0, 1, 1), tag(1, 1, 1)];
        let m = PositiveMap::build(Relation::Instance, &tags, &tags, true);
        assert_eq!(m.positives_of(0), vec![2]);
        assert_eq!(m.positives_of(1), vec![3]);
        assert_eq!(m.positives_of(2), vec![0]);
        assert_eq!(m.positives_of(3), vec![1]);
        assert!(!m.is_candidate(0, 0) && m.is_candidate(0, 1));
        assert_eq!(m.mean_candidates(), 3.0);
    }

    #[test]
    fn labels_make_every_same_class_row_positive() {
        let tags = [tag(0, 1, 0), tag(1, 1, 0), tag(2, 2, 0)];
        let m = PositiveMap::build(Relation::Label, &tags, &tags, true);
        assert_eq!(m.positives_of(0), vec![1]);
        assert_eq!(m.positives_of(2), Vec::<usize>::new());
    }

    #[test]
    fn false_negatives_leave_the_candidates() {
        let q = [tag(0, 1, 0)];
        let keys = [tag(0, 1, 1), tag(1, 1, 0), tag(2, 2, 0)];
        let mut m = PositiveMap::build(Relation::Instance, &q, &keys, false);
        m.exclude_false_negatives(&q, &keys);
        assert_eq!(m.positives_of(0), vec![0]);
        assert!(
            !m.is_candidate(0, 1),
            "same label, other instance: excluded"
        );
        assert!(m.is_candidate(0, 2));
        assert_eq!(m.negatives(0), 1);
    }
}
