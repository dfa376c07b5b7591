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
        "wgpu" => wgpu_device(),
        other => Err(Error::Config {
            key: "train.device".into(),
            value: other.into(),
            allowed: DEVICES.into(),
        }),
    }
}

/// The wgpu device, once an adapter that is not a software renderer has been opened.
///
/// Without a GPU, wgpu falls back to what the graphics stack offers, such as Mesa's
/// llvmpipe through OpenGL: a training step then stalls for minutes and ends in a panic
/// inside wgpu. So the adapter is opened here first (`try_init_setup` registers it for
/// the device burn then uses), and a missing or CPU-only adapter is a one-line error.
#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device> {
    use burn::backend::wgpu::{graphics::AutoGraphicsApi, wgpu::DeviceType};
    use burn::backend::wgpu::{try_init_setup, RuntimeOptions, WgpuDevice};
    use std::sync::OnceLock;
    static OPENED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let opened = OPENED.get_or_init(|| {
        // The default `WgpuDevice` is the one `Device::wgpu(DeviceKind::DefaultDevice)` names.
        let setup =
            try_init_setup::<AutoGraphicsApi>(&WgpuDevice::default(), RuntimeOptions::default())
                .map_err(|e| format!("no GPU adapter could be opened ({e})"))?;
        let info = setup.adapter.get_info();
        match info.device_type {
            DeviceType::Cpu => Err(format!(
                "the only adapter is {} on {:?}, a software renderer on the CPU and far slower \
                 than `flex`",
                info.name, info.backend
            )),
            _ => Ok(()),
        }
    });
    match opened {
        Ok(()) => Ok(Device::wgpu(burn::prelude::DeviceKind::DefaultDevice)),
        Err(why) => Err(Error::Invalid(format!(
            "train.device = \"wgpu\": {why}; use train.device = \"flex\""
        ))),
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
