//! The steps an executable runs.

use super::{BufId, KernelFn, MatMulDims};
use flumen_frontend::DType;
use flumen_frontend::op::{Op, TensorType};

/// A JIT-compiled fused kernel.
pub struct KernelStep {
    /// Readable name (the fused nodes).
    pub name: String,
    /// The compiled code.
    pub f: KernelFn,
    /// The buffer of each access, in access order (the kernel's `args`).
    pub args: Vec<BufId>,
    /// Number of outer iterations.
    pub outer_len: usize,
    /// Estimated work, used to decide whether to split the kernel across threads.
    pub work: usize,
}

/// A (batched) matrix product `c = a · b` through the GEMM library.
pub struct MatMulStep {
    /// Left operand.
    pub a: BufId,
    /// Right operand.
    pub b: BufId,
    /// Output (never aliases an input).
    pub c: BufId,
    /// Shapes, strides and transposes.
    pub dims: MatMulDims,
    /// Element type.
    pub dtype: DType,
    /// An elementwise kernel (and its argument buffers) run on each block of output rows
    /// right after the block is computed; its outer index is the product's linear index.
    pub epilogue: Option<(KernelFn, Vec<BufId>)>,
}

/// One step of an executable.
pub enum Step {
    /// A fused kernel.
    Kernel(KernelStep),
    /// A matrix product.
    MatMul(MatMulStep),
    /// An op evaluated by the reference interpreter on copies of its inputs (the fallback
    /// for ops that have no compiled kernel yet, and for random ops, which need the
    /// session's counters).
    Interpret {
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
    /// Copy one buffer into another of the same dtype and size (assign).
    Copy {
        /// Source.
        src: BufId,
        /// Destination.
        dst: BufId,
    },
}

impl Step {
    /// One-line description for dumps.
    pub fn describe(&self) -> String {
        match self {
            Step::Kernel(k) => format!(
                "kernel {} ({} outer iterations) args {:?}",
                k.name, k.outer_len, k.args
            ),
            Step::MatMul(m) => format!(
                "matmul {:?} · {:?} -> {:?} {:?}{}",
                m.a,
                m.b,
                m.c,
                m.dims,
                if m.epilogue.is_some() {
                    " + epilogue"
                } else {
                    ""
                }
            ),
            Step::Interpret {
                op,
                name,
                inputs,
                output,
                ..
            } => {
                let ins: Vec<BufId> = inputs.iter().map(|(b, _)| *b).collect();
                format!("interpret {} `{name}` {ins:?} -> {output:?}", op.name())
            }
            Step::Copy { src, dst } => format!("copy {src:?} -> {dst:?}"),
        }
    }
}
