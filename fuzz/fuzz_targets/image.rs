#![no_main]
//! `contrastive::fuzz::image_folder` under libFuzzer.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| contrastive::fuzz::image_folder(data));
