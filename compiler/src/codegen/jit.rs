//! In-process compilation of kernels with `cranelift-jit`.
//!
//! [`JitKernels`] owns one `JITModule`. Each [`JitKernels::compile`] call emits and compiles a
//! batch of kernels, then finalises the module once (one round of relocation and memory
//! protection changes per batch) and returns a [`KernelFn`] per kernel. The code lives as
//! long as the `JitKernels`: dropping it frees the machine code.
//!
//! Compile time is dominated by Cranelift's backend; the emitter runs no passes of its own.
//! [`JitKernels::last_stats`] reports the time per kernel of the last batch.

use super::emit::{EmitOptions, declare_and_define_with};
use super::math::IMPORTED_SYMBOLS;
use super::{CodegenError, IsaOptions, native_isa};
use crate::kernel::{Kernel, KernelFn};
use cranelift_jit::{JITBuilder, JITModule};
use std::time::{Duration, Instant};

/// Timings of one [`JitKernels::compile`] batch.
#[derive(Clone, Debug, Default)]
pub struct CompileStats {
    /// Per kernel (in batch order): its name and the time to emit and compile it.
    pub per_kernel: Vec<(String, Duration)>,
    /// Time to finalise the module (relocations, making the code executable).
    pub finalize: Duration,
}

impl CompileStats {
    /// Total time of the batch.
    pub fn total(&self) -> Duration {
        self.per_kernel.iter().map(|(_, d)| *d).sum::<Duration>() + self.finalize
    }
}

/// A JIT module holding compiled kernels.
///
/// The [`KernelFn`] pointers it returns are valid while it is alive; it must outlive every
/// call through them.
pub struct JitKernels {
    module: Option<JITModule>,
    opts: EmitOptions,
    count: usize,
    stats: CompileStats,
}

impl JitKernels {
    /// A JIT for the host CPU with default options.
    pub fn new() -> Result<JitKernels, CodegenError> {
        Self::with_options(&IsaOptions::default(), EmitOptions::default())
    }

    /// A JIT with explicit ISA and emitter options (`isa.is_pic` must be `false`).
    pub fn with_options(isa: &IsaOptions, opts: EmitOptions) -> Result<JitKernels, CodegenError> {
        if isa.is_pic {
            return Err(CodegenError::Isa("the JIT needs is_pic = false".into()));
        }
        let isa = native_isa(isa)?;
        let mut builder = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
        for sym in IMPORTED_SYMBOLS {
            builder.symbol(sym.name(), sym.host_address());
        }
        Ok(JitKernels {
            module: Some(JITModule::new(builder)),
            opts,
            count: 0,
            stats: CompileStats::default(),
        })
    }

    fn module(&mut self) -> &mut JITModule {
        self.module.as_mut().expect("module present until drop")
    }

    /// Compile a batch of kernels; returns their entry points in order.
    pub fn compile(&mut self, kernels: &[Kernel]) -> Result<Vec<KernelFn>, CodegenError> {
        let mut stats = CompileStats::default();
        let mut ids = Vec::with_capacity(kernels.len());
        for k in kernels {
            let t = Instant::now();
            let name = format!("flumen_kernel_{}", self.count);
            self.count += 1;
            let opts = self.opts.clone();
            ids.push(declare_and_define_with(self.module(), k, &name, &opts)?);
            stats.per_kernel.push((k.name.clone(), t.elapsed()));
        }
        let t = Instant::now();
        self.module().finalize_definitions()?;
        stats.finalize = t.elapsed();
        self.stats = stats;
        let module = self.module();
        Ok(ids
            .into_iter()
            .map(|id| {
                let p = module.get_finalized_function(id);
                // SAFETY: `id` was defined by `declare_and_define_with` with the
                // `KernelFn` signature (pointer, usize, usize) -> () in the host's C calling
                // convention, and the module was just finalised, so `p` points to
                // executable code of that type that stays mapped while `self` lives.
                unsafe { std::mem::transmute::<*const u8, KernelFn>(p) }
            })
            .collect())
    }

    /// Compile one kernel.
    pub fn compile_one(&mut self, kernel: &Kernel) -> Result<KernelFn, CodegenError> {
        Ok(self.compile(std::slice::from_ref(kernel))?[0])
    }

    /// Timings of the last [`JitKernels::compile`] batch.
    pub fn last_stats(&self) -> &CompileStats {
        &self.stats
    }
}

impl Drop for JitKernels {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the documented contract of `JitKernels` is that no returned
            // `KernelFn` is called after it is dropped, so nothing uses this code any more.
            unsafe { m.free_memory() };
        }
    }
}
