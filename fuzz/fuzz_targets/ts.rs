#![no_main]
//! `contrastive::fuzz::ucr_ts` under libFuzzer.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| contrastive::fuzz::ucr_ts(data));
