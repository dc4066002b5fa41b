//! What the compiler hands the CUDA runtime: a [`CudaProgram`], the device counterpart of
//! [`Executable`](crate::exec::Executable). Buffers, feeds, variables, constants and
//! fetches use the CPU executable's types and the same liveness-planned arena layout; the
//! steps carry CUDA C source instead of machine code.
//!
//! These types are plain data and always built, so the compiler can produce (and tests
//! can inspect) programs on machines without CUDA; running one needs the `cuda` feature.

use crate::exec::{BufId, BufferDecl, MatMulDims};
use flumen_frontend::op::{Op, TensorType};
use flumen_frontend::{DType, Value};

/// Grid and block size of a kernel launch (one-dimensional).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Launch {
    /// Number of blocks (`gridDim.x`); 0 means there is nothing to do.
    pub blocks: u32,
    /// Threads per block (`blockDim.x`), a multiple of 32.
    pub threads: u32,
}

/// One `extern "C" __global__` function in CUDA C and how to launch it.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceKernel {
    /// Readable name (the fused nodes), for errors and dumps.
    pub name: String,
    /// The function's symbol: `fk_` and the hash of its source, so identical kernels share
    /// one compiled function.
    pub entry: String,
    /// The function's source (without the shared prelude, [`CudaProgram::prelude`]).
    pub source: String,
    /// Hash of `source` (the compiled-kernel cache key).
    pub hash: u64,
    /// The buffer behind each pointer parameter, in order.
    pub args: Vec<BufId>,
    /// Whether the function takes one more parameter, `int* err`, the program's error word,
    /// where it records a bad index (see [`CudaProgram::error_sites`]).
    pub error_flag: bool,
    /// Launch configuration.
    pub launch: Launch,
}

/// A (batched) matrix product through cuBLAS, optionally followed by an elementwise
/// epilogue kernel over the product's elements.
#[derive(Clone, Debug, PartialEq)]
pub struct GemmStep {
    /// Left operand.
    pub a: BufId,
    /// Right operand.
    pub b: BufId,
    /// Output (never aliases an input).
    pub c: BufId,
    /// Shapes, strides and transposes (row-major, as on the CPU).
    pub dims: MatMulDims,
    /// Element type (f32 or f64).
    pub dtype: DType,
    /// Bias, activation …: an elementwise kernel over `c`'s elements, launched right after.
    pub epilogue: Option<DeviceKernel>,
}

/// One step of a device program.
#[derive(Clone, Debug, PartialEq)]
pub enum DeviceStep {
    /// A generated kernel.
    Kernel(DeviceKernel),
    /// A matrix product.
    Gemm(GemmStep),
    /// An op without a device kernel, evaluated by the reference interpreter on the host:
    /// its inputs are copied to the host and its output back (random ops, sorting …). Runs
    /// between captured CUDA graphs.
    Host {
        /// The op.
        op: Op,
        /// The node's name (errors, random counters).
        name: String,
        /// Input buffers and their types.
        inputs: Vec<(BufId, TensorType)>,
        /// Output buffer.
        output: BufId,
        /// Output type.
        ty: TensorType,
    },
    /// Device-to-device copy of a whole buffer into another of the same size.
    Copy {
        /// Source.
        src: BufId,
        /// Destination.
        dst: BufId,
    },
    /// Set every byte of a buffer to zero (before a scatter-add accumulates into it).
    Zero {
        /// The buffer.
        buf: BufId,
    },
}

impl DeviceStep {
    /// One-line description for dumps and errors.
    pub fn describe(&self) -> String {
        match self {
            DeviceStep::Kernel(k) => format!(
                "kernel {} `{}` <<<{}, {}>>> args {:?}",
                k.entry, k.name, k.launch.blocks, k.launch.threads, k.args
            ),
            DeviceStep::Gemm(g) => format!(
                "gemm {:?} · {:?} -> {:?} {:?} {}{}",
                g.a,
                g.b,
                g.c,
                g.dims,
                g.dtype,
                g.epilogue
                    .as_ref()
                    .map(|e| format!(" + epilogue {}", e.entry))
                    .unwrap_or_default()
            ),
            DeviceStep::Host { op, name, .. } => format!("host {} `{name}`", op.name()),
            DeviceStep::Copy { src, dst } => format!("copy {src:?} -> {dst:?}"),
            DeviceStep::Zero { buf } => format!("zero {buf:?}"),
        }
    }
}

/// A graph compiled for a CUDA device: everything the device runtime needs to allocate,
/// compile (NVRTC), capture and run it.
#[derive(Clone, Debug)]
pub struct CudaProgram {
    /// Every buffer; temporaries live in one device arena at the planned offsets.
    pub buffers: Vec<BufferDecl>,
    /// Steps in execution order.
    pub steps: Vec<DeviceStep>,
    /// Placeholder names and types, in feed order.
    pub feeds: Vec<(String, TensorType)>,
    /// Variable names, indexed by `Storage::Variable`.
    pub variables: Vec<String>,
    /// Constants, indexed by `Storage::Constant` (uploaded once).
    pub constants: Vec<Value>,
    /// Fetched buffers and their types, in fetch order.
    pub fetches: Vec<(BufId, TensorType)>,
    /// Bytes of the temporaries' arena.
    pub arena_bytes: usize,
    /// CUDA C shared by every kernel (type helpers, math with the interpreter's semantics,
    /// block reductions); prepended once to each NVRTC translation unit.
    pub prelude: String,
    /// For each value an error word can take (1, 2 …), the op and node that set it: index
    /// kernels record the first out-of-range index instead of reading out of bounds.
    pub error_sites: Vec<String>,
}

impl CudaProgram {
    /// Every generated kernel (steps and epilogues), in step order.
    pub fn kernels(&self) -> impl Iterator<Item = &DeviceKernel> {
        self.steps.iter().filter_map(|s| match s {
            DeviceStep::Kernel(k) => Some(k),
            DeviceStep::Gemm(g) => g.epilogue.as_ref(),
            _ => None,
        })
    }

    /// The full CUDA C translation unit: the prelude and each distinct kernel once.
    pub fn source(&self) -> String {
        let mut out = self.prelude.clone();
        let mut seen = std::collections::HashSet::new();
        for k in self.kernels() {
            if seen.insert(k.hash) {
                out.push_str(&format!("\n// {}\n{}", k.name, k.source));
            }
        }
        out
    }
}
