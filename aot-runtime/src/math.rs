//! The math routines AOT kernels import (`flumen_rt_exp`, ...): the same bodies the JIT
//! binds to the same calls (`flumen_compiler::codegen::math`, `host_*`), so an exported
//! library and a JIT session compute identical bits. The names are
//! `flumen_compiler::aot::RUNTIME_IMPORT_PREFIX` + the C name of
//! `flumen_compiler::codegen::math::IMPORTED_SYMBOLS`.

/// `exp` as the JIT computes it.
#[unsafe(no_mangle)]
pub extern "C" fn flumen_rt_exp(x: f64) -> f64 {
    x.exp()
}

/// `log` as the JIT computes it.
#[unsafe(no_mangle)]
pub extern "C" fn flumen_rt_log(x: f64) -> f64 {
    x.ln()
}

/// `log1p` as the JIT computes it.
#[unsafe(no_mangle)]
pub extern "C" fn flumen_rt_log1p(x: f64) -> f64 {
    x.ln_1p()
}

/// `sin` as the JIT computes it.
#[unsafe(no_mangle)]
pub extern "C" fn flumen_rt_sin(x: f64) -> f64 {
    x.sin()
}

/// `cos` as the JIT computes it.
#[unsafe(no_mangle)]
pub extern "C" fn flumen_rt_cos(x: f64) -> f64 {
    x.cos()
}

/// `tanh` as the JIT computes it.
#[unsafe(no_mangle)]
pub extern "C" fn flumen_rt_tanh(x: f64) -> f64 {
    x.tanh()
}

/// `erf` as the JIT computes it (the `libm` crate, not the C library).
#[unsafe(no_mangle)]
pub extern "C" fn flumen_rt_erf(x: f64) -> f64 {
    libm::erf(x)
}

/// `pow` as the JIT computes it.
#[unsafe(no_mangle)]
pub extern "C" fn flumen_rt_pow(x: f64, y: f64) -> f64 {
    x.powf(y)
}

/// `fmod` as the JIT computes it.
#[unsafe(no_mangle)]
pub extern "C" fn flumen_rt_fmod(x: f64, y: f64) -> f64 {
    x % y
}
