//! Elementwise kernels: unary ops, binary ops with numpy broadcasting, `select` and `cast`.
//!
//! The scalar semantics are the frontend's ([`UnaryOp::eval_float`], [`BinaryOp::eval_int`],
//! [`BinaryOp::compare`], [`BinaryOp::eval_bool`], ...), applied through the wide type of
//! the dtype (see [`Wide`]).

use super::{Wide, broadcast_view, same_dtype, with_wide};
use flumen_frontend::op::{BinaryKind, BinaryOp, UnaryOp};
use flumen_frontend::{DType, Element, Value, map_value};
use ndarray::{ArrayD, Zip};

/// `op(x)` elementwise; the output has the input's dtype and shape.
pub(in crate::interpreter) fn unary(op: UnaryOp, x: &Value) -> Result<Value, String> {
    if !op.dtypes().accepts(x.dtype()) {
        return Err(format!(
            "{} needs {}, got {}",
            op.name(),
            op.dtypes().describe(),
            x.dtype()
        ));
    }
    map_value!(x, a => unary_typed(op, a).map(Value::from))
}

fn unary_typed<T: Element>(op: UnaryOp, a: &ArrayD<T>) -> Result<ArrayD<T>, String> {
    with_wide!(T, W => {
        let data = a
            .iter()
            .map(|&x| W::unary(op, W::of(x)).map(W::to::<T>))
            .collect::<Option<Vec<T>>>()
            .ok_or_else(|| format!("{} is not defined for {}", op.name(), T::DTYPE))?;
        super::from_vec(a.shape(), data)
    })
}

/// `op(a, b)` elementwise with numpy broadcasting to `out_shape`.
pub(in crate::interpreter) fn binary(
    op: BinaryOp,
    a: &Value,
    b: &Value,
    out_shape: &[usize],
) -> Result<Value, String> {
    if a.dtype() != b.dtype() || !op.dtypes().accepts(a.dtype()) {
        return Err(format!(
            "{} needs two operands of {}, got {} and {}",
            op.name(),
            op.dtypes().describe(),
            a.dtype(),
            b.dtype()
        ));
    }
    match op.kind() {
        BinaryKind::Arithmetic => map_value!(a, x => {
            let y = same_dtype(b, "the right operand")?;
            arithmetic(op, x, y, out_shape).map(Value::from)
        }),
        BinaryKind::Comparison => map_value!(a, x => {
            let y = same_dtype(b, "the right operand")?;
            comparison(op, x, y, out_shape).map(Value::from)
        }),
        BinaryKind::Logical => {
            let x = same_dtype::<bool>(a, "the left operand")?;
            let y = same_dtype::<bool>(b, "the right operand")?;
            zip_broadcast(x, y, out_shape, |p, q| op.eval_bool(p, q)).map(Value::from)
        }
    }
}

fn arithmetic<T: Element>(
    op: BinaryOp,
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    out_shape: &[usize],
) -> Result<ArrayD<T>, String> {
    with_wide!(T, W => zip_broadcast(a, b, out_shape, |x, y| {
        W::binary(op, W::of(x), W::of(y)).to::<T>()
    }))
}

fn comparison<T: Element>(
    op: BinaryOp,
    a: &ArrayD<T>,
    b: &ArrayD<T>,
    out_shape: &[usize],
) -> Result<ArrayD<bool>, String> {
    with_wide!(T, W => zip_broadcast(a, b, out_shape, |x, y| op.compare(W::of(x), W::of(y))))
}

/// `f(a, b)` over `a` and `b` broadcast to `shape`.
fn zip_broadcast<A: Copy, B: Copy, R>(
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    shape: &[usize],
    mut f: impl FnMut(A, B) -> R,
) -> Result<ArrayD<R>, String> {
    let (a, b) = (broadcast_view(a, shape)?, broadcast_view(b, shape)?);
    Ok(Zip::from(&a).and(&b).map_collect(|&x, &y| f(x, y)))
}

/// `cond ? a : b` elementwise, all three broadcast to `out_shape`.
pub(in crate::interpreter) fn select(
    cond: &Value,
    a: &Value,
    b: &Value,
    out_shape: &[usize],
) -> Result<Value, String> {
    let cond = same_dtype::<bool>(cond, "the condition")?;
    let cond = broadcast_view(cond, out_shape)?;
    map_value!(a, x => {
        let y = same_dtype(b, "the second branch")?;
        let (x, y) = (broadcast_view(x, out_shape)?, broadcast_view(y, out_shape)?);
        Ok(Value::from(
            Zip::from(&cond)
                .and(&x)
                .and(&y)
                .map_collect(|&c, &p, &q| if c { p } else { q }),
        ))
    })
}

/// Convert to `dtype` with [`Value::cast`]'s rules.
pub(in crate::interpreter) fn cast(x: &Value, dtype: DType) -> Value {
    x.cast(dtype)
}
