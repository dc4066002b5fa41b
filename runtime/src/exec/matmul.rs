//! Matrix products for executables: `c[b] = op(a[b]) · op(b[b])` for each batch `b`, where
//! `op` optionally transposes. Operands are dense row-major matrices; a batch stride of 0
//! broadcasts one operand over the batch.

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

/// Compute the product into `c` (which must not overlap `a` or `b`) with the `gemm` crate
/// (AVX-512 microkernels where the CPU has them).
///
/// # Safety
/// The pointers must address buffers of the sizes `dims` implies, of element type `dtype`.
pub unsafe fn matmul_into(dtype: DType, a: *const u8, b: *const u8, c: *mut u8, d: &MatMulDims) {
    match dtype {
        // SAFETY: forwarded from the caller.
        DType::F32 => unsafe { mm::<f32>(a as *const f32, b as *const f32, c as *mut f32, d, 1.0) },
        DType::F64 => unsafe { mm::<f64>(a as *const f64, b as *const f64, c as *mut f64, d, 1.0) },
        _ => unreachable!("integer matmuls are lowered to interpreter steps"),
    }
}

unsafe fn mm<T: Copy + 'static>(a: *const T, b: *const T, c: *mut T, d: &MatMulDims, one: T) {
    let (m, n, k) = (d.m, d.n, d.k);
    // Element strides (row, column) of op(a) [m, k] and op(b) [k, n].
    let (a_rs, a_cs) = if d.transpose_a { (1, m as isize) } else { (k as isize, 1) };
    let (b_rs, b_cs) = if d.transpose_b { (1, k as isize) } else { (n as isize, 1) };
    let parallelism = if m * n * k >= PARALLEL_FLOPS && rayon::current_num_threads() > 1 {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    for i in 0..d.batch {
        // SAFETY: the caller guarantees the buffers' extents; c does not alias a or b.
        unsafe {
            let cp = c.add(i * m * n);
            if k == 0 {
                std::ptr::write_bytes(cp, 0, m * n);
                continue;
            }
            gemm::gemm(
                m,
                n,
                k,
                cp,
                1,
                n as isize,
                false,
                a.add(i * d.a_batch_stride),
                a_cs,
                a_rs,
                b.add(i * d.b_batch_stride),
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
}
