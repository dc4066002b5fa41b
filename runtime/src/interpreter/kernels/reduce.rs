//! Reductions: `reduce_*` over a set of axes, `argmax`/`argmin` along one axis and
//! `cumsum`.
//!
//! Accumulation happens in the wide type (f64 for floats, rounded once at the end; i64 for
//! integers, wrapping) in row-major order of the reduced elements. Empty reductions give
//! the identity: sum 0, prod 1, max −∞ (integers: the dtype's minimum), min +∞ (integers:
//! the maximum), mean NaN. Max and min propagate NaN.

use super::{Wide, compare_nan, from_vec, with_dtype, with_wide};
use flumen_frontend::op::{ArgReduceOp, BinaryOp, ReduceOp};
use flumen_frontend::{DType, Element, Value, map_value};
use ndarray::{ArrayD, Axis, IxDyn, Zip};
use std::cmp::Ordering;

/// Reduce `x` over `axes` (sorted, distinct) to `out_shape`.
pub(in crate::interpreter) fn reduce(
    op: ReduceOp,
    x: &Value,
    axes: &[usize],
    out_shape: &[usize],
) -> Result<Value, String> {
    map_value!(x, a => reduce_typed(op, a, axes, out_shape).map(Value::from))
}

fn reduce_typed<T: Element>(
    op: ReduceOp,
    a: &ArrayD<T>,
    axes: &[usize],
    out_shape: &[usize],
) -> Result<ArrayD<T>, String> {
    let rank = a.ndim();
    if let Some(bad) = axes.iter().find(|&&ax| ax >= rank) {
        return Err(format!("axis {bad} is out of range for rank {rank}"));
    }
    // Move the reduced axes last: then every output element reduces one contiguous run
    // of `group` elements of the permuted view's row-major order.
    let kept: Vec<usize> = (0..rank).filter(|ax| !axes.contains(ax)).collect();
    let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
    if perm.len() != rank {
        return Err(format!("reduction axes {axes:?} are not distinct"));
    }
    let group: usize = axes.iter().map(|&ax| a.shape()[ax]).product();
    let outer: usize = kept.iter().map(|&ax| a.shape()[ax]).product();
    let view = a.view().permuted_axes(IxDyn(&perm));
    with_wide!(T, W => {
        let mut elements = view.iter().map(|&v| W::of(v));
        let data = (0..outer)
            .map(|_| reduce_group::<W>(op, elements.by_ref().take(group), T::DTYPE).to::<T>())
            .collect();
        from_vec(out_shape, data)
    })
}

/// Reduce one group of wide values, in order.
fn reduce_group<W: Wide>(op: ReduceOp, group: impl Iterator<Item = W>, dtype: DType) -> W {
    let (identity, combine) = match op {
        ReduceOp::Sum | ReduceOp::Mean => (W::zero(), BinaryOp::Add),
        ReduceOp::Prod => (W::one(), BinaryOp::Mul),
        ReduceOp::Max => (W::lowest(dtype), BinaryOp::Maximum),
        ReduceOp::Min => (W::highest(dtype), BinaryOp::Minimum),
    };
    let mut count = 0usize;
    let total = group
        .inspect(|_| count += 1)
        .fold(identity, |acc, v| W::binary(combine, acc, v));
    match op {
        // Float 0/0 is NaN, the documented mean of nothing.
        ReduceOp::Mean => W::binary(BinaryOp::Div, total, W::count(count)),
        _ => total,
    }
}

/// Index of the first maximum (NaN counts as the maximum) or first minimum (NaN counts as
/// the minimum) along `axis`, which is removed; output dtype `dtype` (i32 or i64).
pub(in crate::interpreter) fn arg_reduce(
    op: ArgReduceOp,
    x: &Value,
    axis: usize,
    dtype: DType,
) -> Result<Value, String> {
    if !matches!(dtype, DType::I32 | DType::I64) {
        return Err(format!("{} outputs i32 or i64, not {dtype}", op.name()));
    }
    let positions = map_value!(x, a => arg_reduce_typed(op, a, axis))?;
    with_dtype!(dtype, I => Ok(Value::from(positions.mapv(|p| I::from_i64(p as i64)))))
}

fn arg_reduce_typed<T: Element>(
    op: ArgReduceOp,
    a: &ArrayD<T>,
    axis: usize,
) -> Result<ArrayD<usize>, String> {
    match a.shape().get(axis) {
        None => return Err(format!("axis {axis} is out of range for rank {}", a.ndim())),
        Some(0) => return Err(format!("{} over an empty axis {axis}", op.name())),
        Some(_) => {}
    }
    // ArgMax: NaN ranks above everything; ArgMin: below. The first extreme wins.
    let (nan_high, better) = match op {
        ArgReduceOp::ArgMax => (true, Ordering::Greater),
        ArgReduceOp::ArgMin => (false, Ordering::Less),
    };
    with_wide!(T, W => Ok(Zip::from(a.lanes(Axis(axis))).map_collect(|lane| {
        let mut best = 0;
        for (i, &v) in lane.iter().enumerate() {
            if compare_nan(W::of(v), W::of(lane[best]), nan_high) == better {
                best = i;
            }
        }
        best
    })))
}

/// Cumulative sum along `axis`: inclusive or `exclusive` of the current element, from the
/// start or (`reverse`) from the end.
pub(in crate::interpreter) fn cumsum(
    x: &Value,
    axis: usize,
    exclusive: bool,
    reverse: bool,
) -> Result<Value, String> {
    map_value!(x, a => cumsum_typed(a, axis, exclusive, reverse).map(Value::from))
}

fn cumsum_typed<T: Element>(
    a: &ArrayD<T>,
    axis: usize,
    exclusive: bool,
    reverse: bool,
) -> Result<ArrayD<T>, String> {
    if axis >= a.ndim() {
        return Err(format!("axis {axis} is out of range for rank {}", a.ndim()));
    }
    let mut out = a.as_standard_layout().into_owned();
    let n = a.shape()[axis];
    let inner: usize = a.shape()[axis + 1..].iter().product();
    let data = out
        .as_slice_mut()
        .ok_or("internal error: cumsum output is not contiguous")?;
    cumsum_in_place(data, n, inner, exclusive, reverse);
    Ok(out)
}

/// The sums of a cumsum along an axis of length `n` whose trailing axes hold `inner`
/// elements, in place on row-major `data`: each lane is accumulated in the wide type and
/// rounded once per element (exclusive: the sum before the element; reverse: from the end).
pub(crate) fn cumsum_in_place<T: Element>(
    data: &mut [T],
    n: usize,
    inner: usize,
    exclusive: bool,
    reverse: bool,
) {
    let block = n * inner;
    if block == 0 {
        return;
    }
    with_wide!(T, W => {
        for chunk in data.chunks_exact_mut(block) {
            for j in 0..inner {
                let mut acc = W::zero();
                let mut step = |slot: &mut T| {
                    let here = W::of(*slot);
                    if exclusive {
                        *slot = acc.to();
                        acc = W::binary(BinaryOp::Add, acc, here);
                    } else {
                        acc = W::binary(BinaryOp::Add, acc, here);
                        *slot = acc.to();
                    }
                };
                let lane = chunk[j..].iter_mut().step_by(inner);
                if reverse {
                    lane.rev().for_each(&mut step);
                } else {
                    lane.for_each(&mut step);
                }
            }
        }
    });
}
