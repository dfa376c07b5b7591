#![no_main]
//! `contrastive::fuzz::cifar_records` under libFuzzer.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| contrastive::fuzz::cifar_records(data));
