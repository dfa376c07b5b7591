#![no_main]
//! `contrastive::fuzz::streamed_collection` under libFuzzer.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| contrastive::fuzz::streamed_collection(data));
