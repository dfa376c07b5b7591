//! The one place that names a concrete burn backend.
//!
//! The default is burn's pure-Rust CPU backend `flex` (run-time AVX-512/AVX2 dispatch,
//! im2col + gemm convolutions), so `cargo build` needs nothing but Rust. The Cargo
//! features `cuda` and `wgpu` add GPU backends, chosen at run time with `--device`.

use burn::prelude::Device;

use crate::error::{Error, Result};

/// Names accepted by [`device`], for help texts and error messages.
pub const DEVICES: &str = "flex (default), cuda (feature `cuda`), wgpu (feature `wgpu`)";

/// The compute device for `name`, without autodiff; call `.autodiff()` for training.
pub fn device(name: &str) -> Result<Device> {
    match name {
        "flex" | "cpu" => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::prelude::DeviceKind::DefaultDevice)),
        other => Err(Error::Config {
            key: "train.device".into(),
            value: other.into(),
            allowed: DEVICES.into(),
        }),
    }
}

/// The default device: `flex`.
pub fn default_device() -> Device {
    Device::flex()
}
