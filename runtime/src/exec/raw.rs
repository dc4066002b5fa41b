//! The pointer-level core of running an executable, shared by [`Executable::run`]
//! (session-owned values) and ahead-of-time shared libraries (caller-owned memory): resolve
//! every buffer to a base pointer, then run the steps on those pointers.
//!
//! Both callers go through [`run_steps`], so a JIT session and an AOT library execute the
//! same step code (kernels split the same way, the same GEMM calls, the same interpreter
//! fallbacks) and produce the same bits.
//!
//! Interpreter steps of the index, layout, sort and random ops run natively on their
//! buffers ([`native`]); the others evaluate `eval_op` on copies of their inputs.
//!
//! [`Executable::run`]: super::Executable::run

#[path = "native.rs"]
mod native;

use super::run::{read_value, write_value};
use super::{BufId, BufferDecl, KernelFn, KernelStep, Shared, Step, Storage, matmul_into};
use crate::interpreter::{EvalContext, eval_op};
use flumen_frontend::op::{Op, TensorType};
use flumen_frontend::{GraphError, Result, Value};

/// Work (estimated scalar operations) above which a kernel is split across threads.
const PARALLEL_WORK: usize = 1 << 16;

/// The memory one run works on: the arena of temporaries and the base pointer of every
/// feed, variable and constant, indexed like [`Storage`].
#[derive(Clone, Copy, Debug)]
pub struct RunMemory<'a> {
    /// Base of the arena (64-byte aligned, at least the planned size).
    pub arena: *mut u8,
    /// Feed data, by feed index (read only).
    pub feeds: &'a [*const u8],
    /// Variable data, by variable index (written by assign steps).
    pub variables: &'a [*mut u8],
    /// Constant data, by constant index (read only).
    pub constants: &'a [*const u8],
}

/// The base pointer of every buffer of `buffers` in `mem`, in buffer order, written to
/// `out` (cleared first). Storage indices must be in range for `mem` (the compiler and
/// [`Plan::validate`](super::Plan::validate) guarantee it), and an alias must name an
/// earlier buffer.
pub fn resolve_buffers(buffers: &[BufferDecl], mem: &RunMemory<'_>, out: &mut Vec<*mut u8>) {
    out.clear();
    for b in buffers {
        let p = match &b.storage {
            // Pointer arithmetic only; the offset was planned inside the arena.
            Storage::Arena { offset } => mem.arena.wrapping_add(*offset),
            Storage::Feed(i) => mem.feeds[*i] as *mut u8,
            Storage::Variable(i) => mem.variables[*i],
            Storage::Constant(i) => mem.constants[*i] as *mut u8,
            Storage::Alias(other) => out[other.0],
        };
        out.push(p);
    }
}

/// Run `steps` on the buffer pointers `ptrs` (from [`resolve_buffers`]). `counter(name)`
/// returns the next execution count of the random node `name` (its Philox counter) and
/// advances it; `args` is scratch space reused between steps.
///
/// # Safety
/// `ptrs[i]` must address memory for buffer `i` of the executable the steps belong to
/// (its dtype and element count), kernels must be the compiled code of their steps, and
/// nothing else may access that memory during the run.
pub unsafe fn run_steps(
    steps: &[Step],
    buffers: &[BufferDecl],
    ptrs: &[*mut u8],
    counter: &mut dyn FnMut(&str) -> u64,
    args: &mut Vec<*mut u8>,
) -> Result<()> {
    for step in steps {
        match step {
            Step::Kernel(k) => {
                args.clear();
                args.extend(k.args.iter().map(|b| ptrs[b.0]));
                // SAFETY: the compiler planned every access inside its buffer.
                unsafe { run_kernel(k, args) };
            }
            Step::MatMul(m) => {
                let epilogue = m.epilogue.as_ref().map(|(f, bufs)| {
                    args.clear();
                    args.extend(bufs.iter().map(|b| ptrs[b.0]));
                    (*f, args.as_ptr())
                });
                // SAFETY: planned buffers of the right sizes; c does not alias a or b; the
                // epilogue's arguments cover its accesses.
                unsafe {
                    matmul_into(
                        m.dtype,
                        ptrs[m.a.0],
                        ptrs[m.b.0],
                        ptrs[m.c.0],
                        &m.dims,
                        epilogue,
                    )
                };
            }
            Step::Interpret {
                op,
                name,
                inputs,
                output,
                ty,
            } => {
                let count = if op.is_stateful() { counter(name) } else { 0 };
                // SAFETY: each input buffer holds a value of its recorded type and the
                // output buffer has room for the node's type.
                let native = unsafe { native::run(op, inputs, ptrs, *output, ty, count) };
                match native {
                    Some(r) => r.map_err(|m| GraphError::runtime(op.name(), name, m))?,
                    // SAFETY: as above.
                    None => unsafe { interpret(op, name, inputs, ptrs, *output, ty, count)? },
                }
            }
            Step::Copy { src, dst } => {
                let bytes = buffers[dst.0].bytes();
                // SAFETY: same-size buffers; `copy` tolerates overlap.
                unsafe { std::ptr::copy(ptrs[src.0], ptrs[dst.0], bytes) };
            }
        }
    }
    Ok(())
}

/// The generic interpreter step: `eval_op` on copies of the inputs, the result copied to
/// the output buffer (allocates per run; the fallback for ops without a native path).
///
/// # Safety
/// As [`native::run`].
unsafe fn interpret(
    op: &Op,
    name: &str,
    inputs: &[(BufId, TensorType)],
    ptrs: &[*mut u8],
    output: BufId,
    ty: &TensorType,
    count: u64,
) -> Result<()> {
    // SAFETY: each input buffer holds a value of its recorded type.
    let values: Vec<Value> = inputs
        .iter()
        .map(|(b, t)| unsafe { read_value(ptrs[b.0], t) })
        .collect();
    let refs: Vec<&Value> = values.iter().collect();
    let v = eval_op(op, &refs, ty, EvalContext { counter: count })
        .map_err(|m| GraphError::runtime(op.name(), name, m))?;
    // SAFETY: the output buffer has room for the node's type.
    unsafe { write_value(ptrs[output.0], &v) };
    Ok(())
}

/// Run one kernel, split across the current rayon pool's threads when it is large: the
/// outer range is cut into one chunk per thread and the chunks are run by recursive
/// `rayon::join` (stack-allocated jobs; `rayon::scope` would box one job per spawn).
///
/// # Safety
/// `args` must hold valid base pointers for every access of the kernel.
unsafe fn run_kernel(k: &KernelStep, args: &[*mut u8]) {
    let n = k.outer_len;
    if k.work >= PARALLEL_WORK && n >= 2 && rayon::current_num_threads() > 1 {
        let threads = rayon::current_num_threads().min(n);
        let chunk = n.div_ceil(threads);
        split(k.f, Shared(args.as_ptr()), 0, n, chunk);
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { (k.f)(args.as_ptr(), 0, n) }
    }
}

/// Run `f` on `begin..end` in pieces of `chunk` outer iterations (cut at multiples of
/// `chunk` from `begin`), in parallel.
fn split(f: KernelFn, p: Shared<*const *mut u8>, begin: usize, end: usize, chunk: usize) {
    let pieces = (end - begin).div_ceil(chunk);
    if pieces <= 1 {
        // SAFETY: the caller's args outlive the join; ranges are disjoint.
        unsafe { f(p.get(), begin, end) }
    } else {
        let mid = begin + pieces / 2 * chunk;
        rayon::join(
            move || split(f, p, begin, mid, chunk),
            move || split(f, p, mid, end, chunk),
        );
    }
}
