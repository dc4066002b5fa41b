//! Compiled executables: a table of buffers (one planned arena for temporaries, plus feeds,
//! variables and constants) and an ordered list of steps (JIT-compiled kernels, matrix
//! products, copies, and interpreter fallbacks for ops without a compiled kernel yet).
//!
//! The compiler builds an [`Executable`]; a session runs it many times. Steady-state runs
//! allocate nothing but the fetched output arrays. [`run_steps`] is the pointer-level core
//! both sessions and ahead-of-time libraries run; a [`Plan`] is an executable without its
//! machine code, encoded as bytes for embedding in a shared library.

mod buffers;
mod gemv;
mod matmul;
mod plan;
mod raw;
mod run;
mod steps;

pub use buffers::{Arena, BufferDecl, Storage};
pub use gemv::GemvImpl;
pub use matmul::{
    Epilogue, MatMulDims, MatMulKernel, choose_kernel, matmul_into, matmul_into_with,
};
pub use plan::{DataRef, PLAN_MAGIC, Plan, PlanStep};
pub use raw::{RunMemory, resolve_buffers, run_steps};
pub use steps::{KernelStep, MatMulStep, Step};

use flumen_frontend::{TensorType, Value};

/// Raw pointers handed to the rayon pool by the parallel kernels (split kernels, GEMM row
/// blocks, GEMV column blocks), each task touching memory no other task touches while the
/// pointed-to buffers outlive the parallel section.
#[derive(Clone, Copy)]
pub(crate) struct Shared<T>(pub(crate) T);
// SAFETY: every user splits the work into tasks over disjoint memory (outer ranges, row
// blocks, column blocks) and joins them before the buffers go away.
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T: Copy> Shared<T> {
    /// The pointers (a method, so closures capture the whole `Send` wrapper).
    pub(crate) fn get(self) -> T {
        self.0
    }
}

/// Index of a buffer in an executable's buffer table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufId(pub usize);

/// The entry point of a compiled kernel: `args[i]` is the base pointer of the buffer of
/// access `i`; the kernel runs outer iterations `begin..end` (row-major linear outer index),
/// so the executor can split one kernel across threads.
pub type KernelFn = unsafe extern "C" fn(args: *const *mut u8, begin: usize, end: usize);

/// A compiled graph for one feed-shape signature and one set of fetches.
pub struct Executable {
    /// Every buffer.
    pub buffers: Vec<BufferDecl>,
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// Placeholder names, in the order feeds are passed to [`Executable::run`].
    pub feeds: Vec<(String, TensorType)>,
    /// Variable names, indexed by [`Storage::Variable`].
    pub variables: Vec<String>,
    /// Constant values, indexed by [`Storage::Constant`] (contiguous, standard layout).
    pub constants: Vec<Value>,
    /// Fetched buffers and their types, in fetch order.
    pub fetches: Vec<(BufId, TensorType)>,
    /// The arena holding every temporary.
    pub arena: Arena,
    /// Keeps the compiled code (e.g. a JIT module) alive as long as the kernels may run.
    pub code: Option<Box<dyn std::any::Any + Send>>,
}

impl std::fmt::Debug for Executable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "executable: {} buffers, arena {} bytes",
            self.buffers.len(),
            self.arena.len()
        )?;
        for s in &self.steps {
            writeln!(f, "  {}", s.describe())?;
        }
        Ok(())
    }
}
