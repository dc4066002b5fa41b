//! Reductions: `reduce_*` over a set of axes, `argmax`/`argmin` along one axis and
//! `cumsum`.
//!
//! Accumulation happens in the wide type (f64 for floats, rounded once at the end; i64 for
//! integers, wrapping) in row-major order of the reduced elements. Empty reductions give
//! the identity: sum 0, prod 1, max −∞ (integers: the dtype's minimum), min +∞ (integers:
//! the maximum), mean NaN. Max and min propagate NaN.

use super::layout::row_major;
use super::{Wide, compare_nan, from_vec, with_dtype, with_wide};
use flumen_frontend::op::{ArgReduceOp, BinaryOp, ReduceOp};
use flumen_frontend::{DType, Element, Value, map_value};
use ndarray::{ArrayD, IxDyn};
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
    let shape = x.shape();
    let Some(&n) = shape.get(axis) else {
        return Err(format!(
            "axis {axis} is out of range for rank {}",
            shape.len()
        ));
    };
    let inner: usize = shape[axis + 1..].iter().product();
    let out_shape = [&shape[..axis], &shape[axis + 1..]].concat();
    map_value!(x, a => with_dtype!(dtype, I => {
        let mut out = vec![I::default(); out_shape.iter().product()];
        arg_reduce_into(op, &row_major(a), axis, n, inner, &mut out)?;
        from_vec(&out_shape, out).map(Value::from)
    }))
}

/// The search of an argmax/argmin along an axis of length `n` (`axis`, for the error)
/// whose trailing axes hold `inner` elements: `src` is row-major, `out` gets one index per
/// lane (row-major over the remaining axes). ArgMax ranks NaN above everything, ArgMin
/// below; the first extreme wins. An empty axis is an error.
pub(crate) fn arg_reduce_into<T: Element, I: Element>(
    op: ArgReduceOp,
    src: &[T],
    axis: usize,
    n: usize,
    inner: usize,
    out: &mut [I],
) -> Result<(), String> {
    if n == 0 {
        return Err(format!("{} over an empty axis {axis}", op.name()));
    }
    if inner == 0 {
        return Ok(());
    }
    let (nan_high, better) = match op {
        ArgReduceOp::ArgMax => (true, Ordering::Greater),
        ArgReduceOp::ArgMin => (false, Ordering::Less),
    };
    with_wide!(T, W => {
        for (s, d) in src.chunks_exact(n * inner).zip(out.chunks_exact_mut(inner)) {
            for (j, slot) in d.iter_mut().enumerate() {
                let mut best = 0;
                for i in 1..n {
                    if compare_nan(W::of(s[i * inner + j]), W::of(s[best * inner + j]), nan_high)
                        == better
                    {
                        best = i;
                    }
                }
                *slot = I::from_i64(best as i64);
            }
        }
    });
    Ok(())
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

/// Lanes accumulated together by [`cumsum_in_place`] (one cache line of f32).
const CUMSUM_TILE: usize = 16;

/// The sums of a cumsum along an axis of length `n` whose trailing axes hold `inner`
/// elements, in place on row-major `data`: each lane is accumulated in the wide type and
/// rounded once per element (exclusive: the sum before the element; reverse: from the end).
/// Lanes go [`CUMSUM_TILE`] at a time with their accumulators on the stack, so the walk
/// along the axis reads contiguous runs of each row.
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
            let mut j0 = 0;
            while j0 < inner {
                let width = CUMSUM_TILE.min(inner - j0);
                let mut acc = [W::zero(); CUMSUM_TILE];
                for step in 0..n {
                    let t = if reverse { n - 1 - step } else { step };
                    let at = t * inner + j0;
                    for (slot, a) in chunk[at..at + width].iter_mut().zip(acc.iter_mut()) {
                        let here = W::of(*slot);
                        if exclusive {
                            *slot = a.to();
                            *a = a.add(here);
                        } else {
                            *a = a.add(here);
                            *slot = a.to();
                        }
                    }
                }
                j0 += width;
            }
        }
    });
}
