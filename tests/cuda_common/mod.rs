//! Shared by the GPU tests (`tests/cuda_*.rs`): whether a CUDA device is usable, and
//! element-wise comparison with stated tolerances.
#![allow(dead_code)] // each test file uses part of it

use flumen::{DType, Device, Value};

/// Whether CUDA device 0 can be used; prints why not (the test then passes as skipped).
pub fn gpu(test: &str) -> bool {
    match Device::Cuda(0).describe() {
        Ok(d) => {
            eprintln!("{test}: running on {d}");
            true
        }
        Err(e) => {
            eprintln!("{test}: skipped, no usable CUDA device: {e}");
            false
        }
    }
}

/// Absolute and relative tolerance for a dtype.
pub fn tolerance(d: DType) -> (f64, f64) {
    match d {
        DType::F32 => (1e-5, 1e-4),
        DType::F64 => (1e-12, 1e-10),
        _ => (0.0, 0.0),
    }
}

/// `Err` naming the first element where `got` and `want` differ by more than
/// `atol + rtol·|want|` (NaN matches NaN; infinities must be equal).
pub fn compare(what: &str, got: &Value, want: &Value, atol: f64, rtol: f64) -> Result<(), String> {
    if got.dtype() != want.dtype() || got.shape() != want.shape() {
        return Err(format!(
            "{what}: got {}{:?}, want {}{:?}",
            got.dtype(),
            got.shape(),
            want.dtype(),
            want.shape()
        ));
    }
    for (i, (g, w)) in got.to_f64_vec().iter().zip(want.to_f64_vec()).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || *g == w || (g - w).abs() <= atol + rtol * w.abs();
        if !ok {
            return Err(format!(
                "{what}[{i}]: got {g}, want {w} (atol {atol}, rtol {rtol})"
            ));
        }
    }
    Ok(())
}
