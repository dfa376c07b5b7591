//! # contrastive
//!
//! Contrastive representation learning after Le-Khac, Healy and Smeaton, "Contrastive
//! Representation Learning: A Framework and Review" (IEEE Access 8, 2020). Every method
//! is a dictionary look-up: a query must find its positive key among negatives, and
//! every method is a composition of four parts, written as a configuration:
//!
//! | part | question | module |
//! |---|---|---|
//! | similarity distribution | which inputs are positive pairs? | [`views`] |
//! | encoders | how are inputs turned into representations `h`? | [`encoder`] |
//! | transform heads | how is `h` mapped to the scored embedding `z`? | [`head`] |
//! | loss with a scoring function | how similar are `z_q` and `z_k`, what is minimised? | [`score`], [`loss`] |
//!
//! One training step:
//!
//! ```text
//! dataset --(samples, labels)--> views --(inputs, tags)--> e -> g -> z
//!         tags --relation--> positive map;  score(z_q, z_k) + map -> loss -> SGD
//! ```
//!
//! The positive map is the one contract between views and losses; it lives in [`pairs`],
//! at the bottom of the module graph, so that losses and kernels import no part above
//! them.
//!
//! Around the parts: [`data`] (datasets, loaders, fetching), [`train`] (the loop,
//! checkpoints, metrics), [`eval`] (kNN, linear probe, geometry, 2-D maps), [`report`]
//! (the HTML run report), [`npy`] (exported arrays), [`presets`] and [`config`].

/// The README's Rust example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub mod backend;
pub mod config;
pub mod data;
pub mod dist;
pub mod encoder;
pub mod error;
pub mod eval;
pub mod fuzz;
pub mod head;
pub mod host;
pub mod kernels;
pub mod keys;
pub mod loss;
pub mod memory;
pub mod model;
pub mod npy;
pub mod pairs;
pub mod presets;
pub mod reference;
#[cfg(feature = "report")]
pub mod report;
pub mod score;
pub mod study;
pub mod train;
pub mod views;

pub use config::Config;
pub use error::{Error, Result};
