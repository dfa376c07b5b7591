#![no_main]
//! `contrastive::fuzz::digits_csv` under libFuzzer.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| contrastive::fuzz::digits_csv(data));
