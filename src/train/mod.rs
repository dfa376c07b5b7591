//! The training loop, its checkpoints and its metrics.

pub mod checkpoint;
pub mod config;
pub mod decay;
pub mod init;
pub mod keystate;
pub mod lars;
pub mod metrics;
pub mod pairing;
pub mod progress;
pub mod rundir;
pub mod saved;
pub mod schedule;
pub mod sgd;
pub mod trainer;

pub use progress::Progress;
pub use trainer::{resume, run, Outcome, TrainOptions, Trainer};
