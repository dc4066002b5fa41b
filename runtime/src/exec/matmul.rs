//! Matrix products for executables: `c[b] = op(a[b]) · op(b[b])` for each batch `b`, where
//! `op` optionally transposes. Operands are dense row-major matrices; a batch stride of 0
//! broadcasts one operand over the batch.
//!
//! Products with at most [`gemv::MAX_M`] output rows (batch-1 inference) go to the small-m
//! kernels of [`gemv`]; everything else, and layouts those do not cover, to the `gemm`
//! crate.

use super::gemv::{self, GemvImpl};
use super::{KernelFn, Shared};
use flumen_frontend::DType;

/// Shapes and strides of a (batched) matrix product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatMulDims {
    /// Number of products.
    pub batch: usize,
    /// Rows of the output.
    pub m: usize,
    /// Columns of the output.
    pub n: usize,
    /// Contraction length.
    pub k: usize,
    /// `a` is stored `[k, m]` and used transposed.
    pub transpose_a: bool,
    /// `b` is stored `[n, k]` and used transposed.
    pub transpose_b: bool,
    /// Elements between consecutive batches of `a` (0 = broadcast).
    pub a_batch_stride: usize,
    /// Elements between consecutive batches of `b` (0 = broadcast).
    pub b_batch_stride: usize,
}

/// Products with at least this many multiply-adds use every core.
const PARALLEL_FLOPS: usize = 1 << 18;

/// Bytes of output per row block when an epilogue follows the product (kept in L2).
const EPILOGUE_BLOCK_BYTES: usize = 64 * 1024;

/// A compiled epilogue kernel and its argument array.
pub type Epilogue = (KernelFn, *const *mut u8);

/// Which code computes a product ([`choose_kernel`], [`matmul_into_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatMulKernel {
    /// The `gemm` crate (AVX-512 microkernels where the CPU has them).
    Gemm,
    /// The small-m kernels (m ≤ 4) in the given implementation.
    SmallM(GemvImpl),
}

/// The kernel [`matmul_into`] uses for `d` on this CPU: the small-m kernels when they cover
/// `d` and the CPU has AVX-512, else `gemm`. (The portable small-m kernels are not chosen
/// automatically: without AVX-512, `gemm`'s own vector code is at least as fast.)
pub fn choose_kernel(d: &MatMulDims) -> MatMulKernel {
    if gemv::covers(d) && gemv::best_impl() == GemvImpl::Avx512 {
        MatMulKernel::SmallM(GemvImpl::Avx512)
    } else {
        MatMulKernel::Gemm
    }
}

/// Compute the product into `c` (which must not overlap `a` or `b`) with the kernel
/// [`choose_kernel`] picks, then run the epilogue, if any, on each block of the output right
/// after it is computed (every element exactly once).
///
/// # Safety
/// The pointers must address buffers of the sizes `dims` implies, of element type `dtype`;
/// the epilogue's arguments must cover every access of its kernel over `batch·m·n`
/// iterations.
pub unsafe fn matmul_into(
    dtype: DType,
    a: *const u8,
    b: *const u8,
    c: *mut u8,
    d: &MatMulDims,
    epilogue: Option<Epilogue>,
) {
    // SAFETY: forwarded from the caller.
    unsafe { matmul_into_with(choose_kernel(d), dtype, a, b, c, d, epilogue) };
}

/// [`matmul_into`] with a chosen kernel (tests and benchmarks compare them). A small-m
/// kernel that does not cover `d`, or AVX-512 on a CPU without it, falls back to `gemm`;
/// returns the kernel that ran.
///
/// # Safety
/// As [`matmul_into`].
pub unsafe fn matmul_into_with(
    kernel: MatMulKernel,
    dtype: DType,
    a: *const u8,
    b: *const u8,
    c: *mut u8,
    d: &MatMulDims,
    epilogue: Option<Epilogue>,
) -> MatMulKernel {
    let kernel = match kernel {
        MatMulKernel::SmallM(GemvImpl::Avx512) if !gemv::has_avx512() => MatMulKernel::Gemm,
        MatMulKernel::SmallM(_) if !gemv::covers(d) => MatMulKernel::Gemm,
        k => k,
    };
    // SAFETY (every arm): forwarded from the caller.
    match (kernel, dtype) {
        (MatMulKernel::SmallM(imp), DType::F32) => unsafe {
            gemv::gemv_into::<f32>(imp, a.cast(), b.cast(), c.cast(), d, epilogue)
        },
        (MatMulKernel::SmallM(imp), DType::F64) => unsafe {
            gemv::gemv_into::<f64>(imp, a.cast(), b.cast(), c.cast(), d, epilogue)
        },
        (MatMulKernel::Gemm, DType::F32) => unsafe {
            mm::<f32>(a.cast(), b.cast(), c.cast(), d, 1.0, epilogue)
        },
        (MatMulKernel::Gemm, DType::F64) => unsafe {
            mm::<f64>(a.cast(), b.cast(), c.cast(), d, 1.0, epilogue)
        },
        _ => unreachable!("integer matmuls are lowered to interpreter steps"),
    }
    kernel
}

/// One block: rows `r0..r1` of batch `bi`.
///
/// # Safety
/// As [`matmul_into`].
#[allow(clippy::too_many_arguments)]
unsafe fn block<T: Copy + 'static>(
    a: *const T,
    b: *const T,
    c: *mut T,
    d: &MatMulDims,
    one: T,
    bi: usize,
    rows: (usize, usize),
    parallelism: gemm::Parallelism,
) {
    let (m, n, k) = (d.m, d.n, d.k);
    let (r0, r1) = rows;
    // Element strides (row, column) of op(a) [m, k] and op(b) [k, n].
    let (a_rs, a_cs) = if d.transpose_a {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let (b_rs, b_cs) = if d.transpose_b {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    // SAFETY: every offset stays inside the caller's buffers.
    unsafe {
        let cp = c.add(bi * m * n + r0 * n);
        if k == 0 {
            std::ptr::write_bytes(cp, 0, (r1 - r0) * n);
            return;
        }
        let ap = a.add(bi * d.a_batch_stride).offset(r0 as isize * a_rs);
        let bp = b.add(bi * d.b_batch_stride);
        gemm::gemm(
            r1 - r0,
            n,
            k,
            cp,
            1,
            n as isize,
            false,
            ap,
            a_cs,
            a_rs,
            bp,
            b_cs,
            b_rs,
            one,
            one,
            false,
            false,
            false,
            parallelism,
        );
    }
}

unsafe fn mm<T: Copy + Send + Sync + 'static>(
    a: *const T,
    b: *const T,
    c: *mut T,
    d: &MatMulDims,
    one: T,
    epi: Option<Epilogue>,
) {
    let (m, n, k) = (d.m, d.n, d.k);
    let big = d.batch * m * n * k >= PARALLEL_FLOPS && rayon::current_num_threads() > 1;
    let Some((f, args)) = epi else {
        let par = if big {
            gemm::Parallelism::Rayon(rayon::current_num_threads())
        } else {
            gemm::Parallelism::None
        };
        for bi in 0..d.batch {
            // SAFETY: forwarded from the caller.
            unsafe { block(a, b, c, d, one, bi, (0, m), par) };
        }
        return;
    };
    // At least 4 rows per block, at most all of them (`clamp` would panic for m < 4).
    let rows_per_block = (EPILOGUE_BLOCK_BYTES / (n.max(1) * std::mem::size_of::<T>()))
        .max(4)
        .min(m.max(1));
    let blocks: Vec<(usize, usize, usize)> = (0..d.batch)
        .flat_map(|bi| {
            (0..m)
                .step_by(rows_per_block)
                .map(move |r0| (bi, r0, (r0 + rows_per_block).min(m)))
        })
        .collect();
    let shared = Shared((a, b, c, args));
    let run = move |&(bi, r0, r1): &(usize, usize, usize)| {
        let (a, b, c, args) = shared.get();
        // SAFETY: disjoint rows per task; the epilogue reads the rows just written and
        // writes its own output at the same linear indices.
        unsafe {
            block(a, b, c, d, one, bi, (r0, r1), gemm::Parallelism::None);
            f(args, (bi * m + r0) * n, (bi * m + r1) * n);
        }
    };
    if big && blocks.len() > 1 {
        use rayon::prelude::*;
        blocks.par_iter().for_each(run);
    } else {
        blocks.iter().for_each(run);
    }
}
