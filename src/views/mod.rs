//! Similarity distributions: which inputs form positive pairs.
//!
//! A view sampler turns dataset samples into one or more [`Group`]s of encoder inputs,
//! each row carrying a [`Tag`] (which instance it came from, its label, which view it is).
//! A [`Relation`] then says which (query, key) pairs are positive, producing the
//! [`PositiveMap`], the one contract between views and losses.

pub mod augment;
pub mod cluster;
pub mod config;
pub mod modalities;
pub mod sequence;
pub mod transform;

pub use crate::pairs::{PositiveMap, Relation, Rule, Tag};

use crate::data::Fetch;
use crate::error::Result;

/// Rows of encoder input of one shape, `[n, c, h, w]`, with their tags.
#[derive(Debug, Clone)]
pub struct Group {
    pub data: Vec<f32>,
    pub shape: [usize; 4],
    pub tags: Vec<Tag>,
}

impl Group {
    /// The view of every row.
    pub fn views(&self) -> Vec<u16> {
        self.tags.iter().map(|t| t.view).collect()
    }
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
    /// Views of `indices` in `data`; `seed` fixes every random choice.
    fn sample(&self, data: &dyn Fetch, indices: &[usize], seed: u64) -> Result<ViewBatch> {
        self.sample_from(data, indices, seed, 0)
    }

    /// [`Self::sample`] of a slice of a batch that starts at position `first`: each
    /// sample draws as it would at its position in the whole batch, so ranks that each
    /// view their slice draw exactly the views of one process viewing the whole batch.
    /// Fails only where a streamed file cannot be read.
    fn sample_from(
        &self,
        data: &dyn Fetch,
        indices: &[usize],
        seed: u64,
        first: usize,
    ) -> Result<ViewBatch>;
}
