//! Matrix multiplication over the last two axes with numpy-style broadcasting of the
//! leading (batch) axes.
//!
//! Floats (f32 and f64) are multiplied in f64 — f32 operands are widened, the product is
//! accumulated in f64 by ndarray's `dot` and rounded once — so the oracle is at least as
//! accurate as any backend. Integers accumulate in i64 with wrapping arithmetic, in order
//! of the inner index, and wrap back to the dtype.

use super::{Wide, from_vec, same_dtype, with_wide};
use flumen_frontend::{Element, Value, map_value};
use ndarray::{Array2, ArrayD, ArrayView2, Axis, Dimension, Ix2, IxDyn};

/// Wide types that can multiply matrices.
trait MatMulWide: Wide {
    /// The matrix product `a · b` (shapes already checked to agree).
    fn matmul(a: &ArrayView2<Self>, b: &ArrayView2<Self>) -> Array2<Self>;
}

impl MatMulWide for f64 {
    fn matmul(a: &ArrayView2<f64>, b: &ArrayView2<f64>) -> Array2<f64> {
        if a.ncols() == 0 {
            // An empty inner dimension sums nothing.
            return Array2::zeros((a.nrows(), b.ncols()));
        }
        a.dot(b)
    }
}

impl MatMulWide for i64 {
    fn matmul(a: &ArrayView2<i64>, b: &ArrayView2<i64>) -> Array2<i64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            a.row(i)
                .iter()
                .zip(b.column(j))
                .fold(0i64, |acc, (&x, &y)| acc.wrapping_add(x.wrapping_mul(y)))
        })
    }
}

/// `a · b` over the last two axes (each optionally transposed first), batch axes
/// broadcast to `out_shape`'s leading axes.
pub(in crate::interpreter) fn matmul(
    a: &Value,
    b: &Value,
    transpose_a: bool,
    transpose_b: bool,
    out_shape: &[usize],
) -> Result<Value, String> {
    map_value!(a, x => {
        let y = same_dtype(b, "the right operand")?;
        matmul_typed(x, y, transpose_a, transpose_b, out_shape).map(Value::from)
    })
}

fn matmul_typed<T: Element>(
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    transpose_a: bool,
    transpose_b: bool,
    out_shape: &[usize],
) -> Result<ArrayD<T>, String> {
    let Some(batch_rank) = out_shape.len().checked_sub(2) else {
        return Err(format!("matmul output shape {out_shape:?} has rank < 2"));
    };
    let batch_shape = &out_shape[..batch_rank];
    let mut data = Vec::with_capacity(out_shape.iter().product());
    with_wide!(T, W => {
        for batch in ndarray::indices(IxDyn(batch_shape)) {
            let lhs = batch_matrix(a, batch.slice(), transpose_a)?;
            let rhs = batch_matrix(b, batch.slice(), transpose_b)?;
            if lhs.ncols() != rhs.nrows() {
                return Err(format!(
                    "matmul inner dimensions differ: {:?} · {:?}",
                    lhs.shape(),
                    rhs.shape()
                ));
            }
            let product = W::matmul(&lhs.mapv(W::of).view(), &rhs.mapv(W::of).view());
            data.extend(product.iter().map(|&v| v.to::<T>()));
        }
    });
    from_vec(out_shape, data)
}

/// The matrix of operand `a` used for the output batch index `batch`: `a`'s batch axes are
/// aligned with the trailing axes of `batch`, and an axis of length 1 broadcasts.
fn batch_matrix<'a, T>(
    a: &'a ArrayD<T>,
    batch: &[usize],
    transpose: bool,
) -> Result<ArrayView2<'a, T>, String> {
    let shape_err = || {
        format!(
            "matmul operand of shape {:?} does not fit output batch index {batch:?}",
            a.shape()
        )
    };
    let own_batch_rank = a.ndim().checked_sub(2).ok_or_else(shape_err)?;
    let offset = batch
        .len()
        .checked_sub(own_batch_rank)
        .ok_or_else(shape_err)?;
    let mut view = a.view();
    for &i in &batch[offset..] {
        // Each step removes the leading axis, so the next batch axis is always axis 0.
        let len = view.shape()[0];
        let i = if len == 1 { 0 } else { i };
        if i >= len {
            return Err(shape_err());
        }
        view = view.index_axis_move(Axis(0), i);
    }
    let matrix = view.into_dimensionality::<Ix2>().map_err(|_| shape_err())?;
    Ok(if transpose {
        matrix.reversed_axes()
    } else {
        matrix
    })
}
