//! The CUDA side of the runtime.
//!
//! [`program`] (always built) holds the plain-data [`CudaProgram`] that the compiler
//! produces. With the `cuda` feature, [`device`] opens a GPU through the driver API loaded
//! at run time (a missing driver, device or library is an error naming it, never a link
//! failure or a panic) and [`exec`] runs programs on it: temporaries in one device arena
//! with the compiler's liveness plan, variables resident in device memory across runs,
//! host↔device copies only for feeds and fetches, kernels compiled with NVRTC for the
//! device's architecture and cached per source hash, matrix products in cuBLAS, and each
//! run of device steps captured once as a CUDA graph and replayed by later runs.

pub mod program;

#[cfg(feature = "cuda")]
pub mod device;
#[cfg(feature = "cuda")]
pub mod exec;
#[cfg(feature = "cuda")]
mod memory;
#[cfg(feature = "cuda")]
mod profile;

pub use program::{CudaProgram, DeviceKernel, DeviceStep, GemmStep, Launch};

#[cfg(feature = "cuda")]
pub use device::{CudaDevice, DeviceInfo};
#[cfg(feature = "cuda")]
pub use exec::{CudaExecutable, DeviceVariables};
