#![no_main]
//! `contrastive::fuzz::config_toml` under libFuzzer.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| contrastive::fuzz::config_toml(data));
