//! The training loop, its checkpoints and its metrics.

pub mod checkpoint;
pub mod lars;
pub mod metrics;
pub mod pairing;
pub mod rundir;
pub mod saved;
pub mod schedule;
pub mod sgd;
pub mod trainer;

pub use trainer::{resume, run, Outcome, Progress, TrainOptions, Trainer};
