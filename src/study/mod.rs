//! Tools that answer the review's open questions on a user's own data: sweeps over any
//! setting, with their summaries.

pub mod audit;
pub mod invariance;
pub mod sweep;
