#![no_main]
//! `contrastive::fuzz::idx_file` under libFuzzer.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| contrastive::fuzz::idx_file(data));
