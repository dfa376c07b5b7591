#![no_main]
//! `contrastive::fuzz::checkpoint_file` under libFuzzer.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| contrastive::fuzz::checkpoint_file(data));
