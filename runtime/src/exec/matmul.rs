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

/// Compute the product into `c` (which must not overlap `a` or `b`).
///
/// # Safety
/// The pointers must address buffers of the sizes `dims` implies, of element type `dtype`.
pub unsafe fn matmul_into(dtype: DType, a: *const u8, b: *const u8, c: *mut u8, d: &MatMulDims) {
    match dtype {
        // SAFETY: forwarded from the caller.
        DType::F32 => unsafe { mm::<f32>(a as *const f32, b as *const f32, c as *mut f32, d) },
        DType::F64 => unsafe { mm::<f64>(a as *const f64, b as *const f64, c as *mut f64, d) },
        _ => unreachable!("integer matmuls are lowered to interpreter steps"),
    }
}

unsafe fn mm<T: ndarray::LinalgScalar>(a: *const T, b: *const T, c: *mut T, d: &MatMulDims) {
    use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};
    for i in 0..d.batch {
        // SAFETY: the caller guarantees the buffers' extents.
        unsafe {
            let ap = a.add(i * d.a_batch_stride);
            let bp = b.add(i * d.b_batch_stride);
            let cp = c.add(i * d.m * d.n);
            let av = if d.transpose_a {
                ArrayView2::from_shape_ptr((d.m, d.k).strides((1, d.m)), ap)
            } else {
                ArrayView2::from_shape_ptr((d.m, d.k), ap)
            };
            let bv = if d.transpose_b {
                ArrayView2::from_shape_ptr((d.k, d.n).strides((1, d.k)), bp)
            } else {
                ArrayView2::from_shape_ptr((d.k, d.n), bp)
            };
            let mut cv = ArrayViewMut2::from_shape_ptr((d.m, d.n), cp);
            ndarray::linalg::general_mat_mul(T::one(), &av, &bv, T::zero(), &mut cv);
        }
    }
}
