//! Native code generation for the fused-kernel IR ([`crate::kernel`]) with Cranelift.
//!
//! One emitter ([`emit`]) turns a [`Kernel`](crate::kernel::Kernel) into one Cranelift
//! function with the [`KernelFn`](crate::kernel::KernelFn) signature, inside any
//! [`cranelift_module::Module`]: a `JITModule` for in-process execution ([`jit`]) and, for
//! ahead-of-time shared libraries, an `ObjectModule`. The scalar math routines it needs are
//! built in CLIF by [`math`]; the few it cannot build (f64 transcendentals, `pow`, `fmod`) are
//! calls to C math-library symbols listed in one place, [`math::IMPORTED_SYMBOLS`].
//!
//! # Semantics
//! The reference is [`eval_kernel`](crate::kernel::eval::eval_kernel). Compiled kernels agree
//! with it exactly for integers, bools, casts, comparisons, selects and IEEE arithmetic
//! (`+ − × ÷ √`, `square`, `reciprocal`, `rsqrt`, `floor`, `ceil`, `round`, `abs`, `neg`,
//! `sign`, `relu`, NaN-propagating `maximum`/`minimum`, `mod`, `pow`); each f32 op is
//! rounded to f32 like the reference (no contraction of `a·b + c` into an FMA). f64
//! transcendentals call the C library and agree exactly with the reference; f32
//! transcendentals are vectorised polynomials whose error bounds are listed in [`math`].
//! Reductions that the emitter vectorises along the reduced axis (sum only reassociates;
//! max/min are order-independent) differ from the sequential reference by reassociation
//! only: `|Δ| ≤ n·ε·Σ|xᵢ|`.
//!
//! # Vectorisation
//! Cranelift's x86-64 backend has 128-bit vectors, so a vector holds 4 lanes of f32/i32 or 2
//! of f64/i64. The emitter picks one of three strategies per kernel (see [`emit`]): the
//! innermost reduced axis (several independent accumulators for reductions), the innermost
//! outer axis (elementwise kernels and column reductions), or plain scalar loops, which
//! handle every stride pattern.

pub mod emit;
mod int_ops;
pub mod jit;
mod layout;
pub mod math;
mod ops;
mod plan;

pub use emit::{EmitOptions, declare_and_define, declare_and_define_with};
pub use jit::JitKernels;
pub use plan::{Strategy, plan};

use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};

/// Why a kernel could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    /// The kernel IR is malformed (the message says where).
    #[error("invalid kernel `{kernel}`: {msg}")]
    Invalid {
        /// Kernel name.
        kernel: String,
        /// What is wrong.
        msg: String,
    },
    /// The kernel is valid but uses something the code generator does not support.
    #[error("unsupported in kernel `{kernel}`: {msg}")]
    Unsupported {
        /// Kernel name.
        kernel: String,
        /// What is not supported.
        msg: String,
    },
    /// The host ISA could not be configured.
    #[error("cannot configure the target ISA: {0}")]
    Isa(String),
    /// Cranelift rejected the function or the module failed (declaration, relocation,
    /// finalisation).
    #[error("cranelift: {0}")]
    Module(String),
}

impl From<cranelift_module::ModuleError> for CodegenError {
    fn from(e: cranelift_module::ModuleError) -> Self {
        CodegenError::Module(format!("{e:?}"))
    }
}

/// Options for [`native_isa`].
#[derive(Clone, Debug)]
pub struct IsaOptions {
    /// Position-independent code (needed for shared libraries; the JIT requires `false`).
    pub is_pic: bool,
    /// Run Cranelift's IR verifier on every function (slower compiles; on in debug builds).
    pub verify: bool,
}

impl Default for IsaOptions {
    fn default() -> Self {
        IsaOptions {
            is_pic: false,
            verify: cfg!(debug_assertions),
        }
    }
}

/// The host ISA with every feature the CPU has (cranelift-native detects SSE4.1, AVX, FMA,
/// ...), `opt_level=speed`, and the given options.
pub fn native_isa(opts: &IsaOptions) -> Result<OwnedTargetIsa, CodegenError> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| {
        f.set(k, v)
            .map_err(|e| CodegenError::Isa(format!("{k}={v}: {e}")))
    };
    set(&mut flags, "opt_level", "speed")?;
    set(
        &mut flags,
        "is_pic",
        if opts.is_pic { "true" } else { "false" },
    )?;
    set(
        &mut flags,
        "enable_verifier",
        if opts.verify { "true" } else { "false" },
    )?;
    // Calls to the C math library may be far away from JIT code.
    set(&mut flags, "use_colocated_libcalls", "false")?;
    let builder = cranelift_native::builder().map_err(|e| CodegenError::Isa(e.to_string()))?;
    builder
        .finish(settings::Flags::new(flags))
        .map_err(|e| CodegenError::Isa(e.to_string()))
}
