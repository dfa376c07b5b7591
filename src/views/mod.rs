//! Similarity distributions: which inputs form positive pairs.
//!
//! A view sampler turns dataset samples into one or more [`Group`]s of encoder inputs,
//! each row carrying a [`Tag`] (which instance it came from, its label, which view it is).
//! A [`Relation`] then says which (query, key) pairs are positive, producing the
//! [`PositiveMap`], the one contract between views and losses.

pub mod augment;
pub mod transform;

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
}

/// Rows of encoder input of one shape, `[n, c, h, w]`, with their tags.
#[derive(Debug, Clone)]
pub struct Group {
    pub data: Vec<f32>,
    pub shape: [usize; 4],
    pub tags: Vec<Tag>,
}

/// Everything a training step needs from the data side.
#[derive(Debug, Clone)]
pub struct ViewBatch {
    pub groups: Vec<Group>,
}

impl ViewBatch {
    /// The tags of every row of every group, in order.
    pub fn tags(&self) -> Vec<Tag> {
        self.groups
            .iter()
            .flat_map(|g| g.tags.iter().copied())
            .collect()
    }
}

/// Draws the views of a batch of instances.
pub trait Sampler: Send + Sync {
    /// Views of `indices` in `split`; `seed` fixes every random choice.
    fn sample(&self, split: &crate::data::Split, indices: &[usize], seed: u64) -> ViewBatch;
}

/// Which (query, key) pairs are positives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// Rows of the same instance (instance discrimination: SimCLR, MoCo, InstDisc).
    Instance,
    /// Rows with the same label (supervised contrastive, SupCon).
    Label,
}

/// For each query, which keys are positives and which are candidates at all.
///
/// Both are dense `rows x cols` 0/1 matrices, row-major. A key that is the query itself
/// (same row of the same forward pass) is neither positive nor candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct PositiveMap {
    pub rows: usize,
    pub cols: usize,
    pub positive: Vec<f32>,
    pub candidate: Vec<f32>,
}

impl PositiveMap {
    /// Builds the map from query and key tags. When `same_rows`, key `i` is query `i`
    /// (one forward pass of all views) and is excluded from query `i`'s candidates.
    pub fn build(relation: Relation, queries: &[Tag], keys: &[Tag], same_rows: bool) -> Self {
        let (rows, cols) = (queries.len(), keys.len());
        let mut positive = vec![0.0; rows * cols];
        let mut candidate = vec![1.0; rows * cols];
        for (i, q) in queries.iter().enumerate() {
            for (j, k) in keys.iter().enumerate() {
                let o = i * cols + j;
                if same_rows && i == j {
                    candidate[o] = 0.0;
                    continue;
                }
                let pos = match relation {
                    Relation::Instance => q.instance == k.instance,
                    Relation::Label => q.label != u32::MAX && q.label == k.label,
                };
                if pos {
                    positive[o] = 1.0;
                }
            }
        }
        Self {
            rows,
            cols,
            positive,
            candidate,
        }
    }

    /// The map as one matrix for the fused InfoNCE kernel: `-1` where a key is not a
    /// candidate, `1 / (|P(i)| rows)` on positives, 0 on negatives.
    pub fn loss_code(&self) -> Vec<f32> {
        let mut code = Vec::with_capacity(self.rows * self.cols);
        for i in 0..self.rows {
            let row = i * self.cols..(i + 1) * self.cols;
            let (pos, cand) = (&self.positive[row.clone()], &self.candidate[row]);
            let n: f32 = pos.iter().zip(cand).map(|(p, c)| p * c).sum();
            let w = 1.0 / (n * self.rows as f32);
            code.extend(
                pos.iter()
                    .zip(cand)
                    .map(|(&p, &c)| if c == 0.0 { -1.0 } else { p * w }),
            );
        }
        code
    }

    /// Positive key indices of query `i`.
    pub fn positives_of(&self, i: usize) -> Vec<usize> {
        (0..self.cols)
            .filter(|&j| self.positive[i * self.cols + j] > 0.0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(instance: u32, label: u32, view: u16) -> Tag {
        Tag {
            instance,
            label,
            view,
        }
    }

    #[test]
    fn two_views_pair_each_row_with_its_other_view() {
        let tags = [tag(0, 1, 0), tag(1, 1, 0), tag(0, 1, 1), tag(1, 1, 1)];
        let m = PositiveMap::build(Relation::Instance, &tags, &tags, true);
        assert_eq!(m.positives_of(0), vec![2]);
        assert_eq!(m.positives_of(1), vec![3]);
        assert_eq!(m.positives_of(2), vec![0]);
        assert_eq!(m.positives_of(3), vec![1]);
        assert_eq!(m.candidate[0], 0.0);
        assert_eq!(m.candidate.iter().sum::<f32>(), 12.0);
    }

    #[test]
    fn labels_make_every_same_class_row_positive() {
        let tags = [tag(0, 1, 0), tag(1, 1, 0), tag(2, 2, 0)];
        let m = PositiveMap::build(Relation::Label, &tags, &tags, true);
        assert_eq!(m.positives_of(0), vec![1]);
        assert_eq!(m.positives_of(2), Vec::<usize>::new());
    }
}
