//! The one place that names a concrete burn backend.
//!
//! The default is burn's pure-Rust CPU backend `flex` (run-time AVX-512/AVX2 dispatch,
//! im2col + gemm convolutions), so `cargo build` needs nothing but Rust. The Cargo
//! features `cuda` and `wgpu` add GPU backends, chosen at run time by the config key `train.device` (`--set train.device=wgpu`).

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

/// Keeps large freed blocks in the process heap instead of returning them to the kernel.
///
/// glibc serves allocations above its mmap threshold with fresh mappings and unmaps them on
/// free, so every training step faults in (and the kernel zeroes) its multi-megabyte
/// activation buffers again: about a tenth of a step's time in the profiles of
/// `examples/step_bench`. Raising the threshold and the trim threshold lets freed buffers
/// be reused. Call once at start-up, before other threads allocate; a no-op off glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; it is called before other threads
    // start allocating.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
