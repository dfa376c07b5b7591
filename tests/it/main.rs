//! The integration tests, as one binary (one link of burn, tract and plotters instead
//! of one per file): a module per area, helpers in [`common`].
//!
//! Tests that seed burn's device generator or switch the fast kernels hold
//! [`common::serial`] so that they do not run beside each other.

mod common;

mod augment;
mod build_features;
mod cli_augment;
mod cli_train;
mod data_errors;
mod data_formats;
mod dcl;
mod dino;
mod docs;
mod kernels;
mod key_encoders;
mod loss_properties;
mod losses;
mod nan_guard;
mod neg_cosine;
mod onnx_teacher;
mod precision;
mod presets;
mod probe;
mod proto;
mod quantizer;
mod resume;
mod retrieval;
#[cfg(feature = "mpi")]
mod scale_out;
mod sgd;
mod similarity;
mod stream;
mod sweep;
mod tool;
mod vicreg_swav;
