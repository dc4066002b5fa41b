//! Layout ops: they move elements without computing on them — `reshape`, `transpose`,
//! `broadcast_to`, `slice`, `concat`, `pad`, `tile` and `roll`.
//!
//! Most are written as "output element at index `o` is input element at index `f(o)`"
//! ([`try_from_index_fn`]), which states the semantics directly.

use super::{broadcast_view, element_at, from_vec, same_dtype, try_from_index_fn, with_dtype};
use flumen_frontend::op::SliceSpec;
use flumen_frontend::{Element, Scalar, Value, map_value};
use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};

/// The same elements in row-major order, in a new shape.
pub(in crate::interpreter) fn reshape(x: &Value, shape: &[usize]) -> Result<Value, String> {
    let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if numel != Some(x.len()) {
        return Err(format!("cannot reshape {:?} to {shape:?}", x.shape()));
    }
    map_value!(x, a => from_vec(shape, a.iter().copied().collect()).map(Value::from))
}

/// Permute axes: output axis `i` is input axis `perm[i]`.
pub(in crate::interpreter) fn transpose(x: &Value, perm: &[usize]) -> Result<Value, String> {
    let rank = x.shape().len();
    let mut seen = vec![false; rank];
    let is_permutation = perm.len() == rank
        && perm
            .iter()
            .all(|&p| p < rank && !std::mem::replace(&mut seen[p], true));
    if !is_permutation {
        return Err(format!("{perm:?} is not a permutation of 0..{rank}"));
    }
    Ok(map_value!(x, a => Value::from(
        a.view().permuted_axes(IxDyn(perm)).as_standard_layout().into_owned()
    )))
}

/// Numpy-broadcast to `shape`.
pub(in crate::interpreter) fn broadcast_to(x: &Value, shape: &[usize]) -> Result<Value, String> {
    map_value!(x, a => Ok(Value::from(broadcast_view(a, shape)?.as_standard_layout().into_owned())))
}

/// The strided slice: element `j` of axis `i` is input index `start + j·step`.
pub(in crate::interpreter) fn slice(x: &Value, spec: &SliceSpec) -> Result<Value, String> {
    spec.check(x.shape()).map_err(|e| e.to_string())?;
    map_value!(x, a => slice_typed(a, spec).map(Value::from))
}

/// The elements of `a` selected by `spec` (already checked against `a`'s shape).
fn slice_typed<T: Copy>(a: &ArrayD<T>, spec: &SliceSpec) -> Result<ArrayD<T>, String> {
    let mut source = vec![0; a.ndim()];
    try_from_index_fn(&spec.out_shape(), |out| {
        for ((src, &j), dim) in source.iter_mut().zip(out).zip(&spec.dims) {
            *src = slice_position(dim.start, dim.step, j)?;
        }
        element_at(a, &source)
    })
}

/// `start + j·step` as an index, or an error if it is negative or overflows.
pub(super) fn slice_position(start: usize, step: i64, j: usize) -> Result<usize, String> {
    i64::try_from(j)
        .ok()
        .and_then(|j| j.checked_mul(step))
        .and_then(|offset| i64::try_from(start).ok()?.checked_add(offset))
        .and_then(|pos| usize::try_from(pos).ok())
        .ok_or_else(|| format!("slice position {start} + {j}·{step} is out of range"))
}

/// Concatenate along `axis` (all inputs of one dtype, equal shapes off `axis`).
pub(in crate::interpreter) fn concat(inputs: &[&Value], axis: usize) -> Result<Value, String> {
    let Some(first) = inputs.first() else {
        return Err("concat needs at least one input".into());
    };
    with_dtype!(first.dtype(), T => concat_typed::<T>(inputs, axis).map(Value::from))
}

fn concat_typed<T: Element>(inputs: &[&Value], axis: usize) -> Result<ArrayD<T>, String> {
    let views = inputs
        .iter()
        .enumerate()
        .map(|(i, v)| same_dtype::<T>(v, &format!("input {i}")).map(|x| x.view()))
        .collect::<Result<Vec<ArrayViewD<T>>, String>>()?;
    ndarray::concatenate(Axis(axis), &views)
        .map_err(|e| format!("cannot concatenate along axis {axis}: {e}"))
}

/// Pad with `value` (converted to the dtype) to `out_shape`: `paddings[i] = (before,
/// after)` for axis `i`.
pub(in crate::interpreter) fn pad(
    x: &Value,
    paddings: &[(usize, usize)],
    value: Scalar,
    out_shape: &[usize],
) -> Result<Value, String> {
    let fits = paddings.len() == x.shape().len()
        && out_shape.len() == x.shape().len()
        && paddings
            .iter()
            .zip(x.shape())
            .zip(out_shape)
            .all(|((&(before, after), &d), &o)| {
                before.checked_add(d).and_then(|n| n.checked_add(after)) == Some(o)
            });
    if !fits {
        return Err(format!(
            "paddings {paddings:?} do not take shape {:?} to {out_shape:?}",
            x.shape()
        ));
    }
    let fill = Value::full(x.dtype(), &[], value);
    map_value!(x, a => {
        let fill = same_dtype(&fill, "the pad value")?.first().copied().unwrap_or_default();
        let mut out = ArrayD::from_elem(IxDyn(out_shape), fill);
        // The input goes to `before..before + len` of every axis.
        out.slice_each_axis_mut(|ax| {
            let i = ax.axis.index();
            let before = paddings[i].0;
            Slice::from(before..before + a.shape()[i])
        })
        .assign(a);
        Ok(Value::from(out))
    })
}

/// Repeat the input along every axis to `out_shape` (a multiple of the input's shape):
/// `out[o] = in[o mod shape]`.
pub(in crate::interpreter) fn tile(x: &Value, out_shape: &[usize]) -> Result<Value, String> {
    let fits = out_shape.len() == x.shape().len()
        && x.shape()
            .iter()
            .zip(out_shape)
            .all(|(&d, &o)| if d == 0 { o == 0 } else { o % d == 0 });
    if !fits {
        return Err(format!(
            "shape {:?} does not tile to {out_shape:?}",
            x.shape()
        ));
    }
    map_value!(x, a => {
        let mut source = vec![0; a.ndim()];
        try_from_index_fn(out_shape, |out| {
            for ((src, &o), &d) in source.iter_mut().zip(out).zip(a.shape()) {
                *src = o % d;
            }
            element_at(a, &source)
        })
        .map(Value::from)
    })
}

/// Rotate along `axis`: `out[(i + shift) mod n] = in[i]`, i.e. `out[o] = in[(o − shift) mod n]`.
pub(in crate::interpreter) fn roll(x: &Value, shift: i64, axis: usize) -> Result<Value, String> {
    let Some(&n) = x.shape().get(axis) else {
        return Err(format!(
            "axis {axis} is out of range for rank {}",
            x.shape().len()
        ));
    };
    if n == 0 {
        return Ok(x.clone());
    }
    // The shift reduced into 0..n; computed in i128 so no shift overflows.
    let n_wide = n as i128;
    let shift = usize::try_from((shift as i128).rem_euclid(n_wide)).unwrap_or(0);
    map_value!(x, a => {
        let mut source = vec![0; a.ndim()];
        try_from_index_fn(a.shape(), |out| {
            source.copy_from_slice(out);
            source[axis] = (out[axis] + n - shift) % n;
            element_at(a, &source)
        })
        .map(Value::from)
    })
}
