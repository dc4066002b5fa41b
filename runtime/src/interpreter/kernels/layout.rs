//! Layout ops: they move elements without computing on them — `reshape`, `transpose`,
//! `broadcast_to`, `slice`, `concat`, `pad`, `tile` and `roll`.
//!
//! The copying ops work on contiguous row-major rows: they compute each row's offset once
//! (an odometer over the outer axes, see [`for_each_row`]) and move whole runs of the last
//! axis with `extend_from_slice`, never indexing element by element.

use super::{broadcast_view, from_vec, same_dtype, with_dtype};
use flumen_frontend::op::SliceSpec;
use flumen_frontend::{Element, Scalar, Value, map_value};
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use std::borrow::Cow;

/// The elements of `a` in row-major order: borrowed when `a` is already contiguous.
pub(super) fn row_major<T: Clone>(a: &ArrayD<T>) -> Cow<'_, [T]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().cloned().collect()),
    }
}

/// Row-major strides (in elements) of `shape`.
pub(super) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// Calls `f(index)` for every index of `shape` in row-major order (none when an axis is
/// empty, once with `[]` for rank 0), reusing one index buffer.
pub(super) fn for_each_row(
    shape: &[usize],
    mut f: impl FnMut(&[usize]) -> Result<(), String>,
) -> Result<(), String> {
    if shape.contains(&0) {
        return Ok(());
    }
    let mut index = vec![0; shape.len()];
    loop {
        f(&index)?;
        let mut axis = shape.len();
        loop {
            if axis == 0 {
                return Ok(());
            }
            axis -= 1;
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
}

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
    let out_shape = spec.out_shape();
    if out_shape.contains(&0) {
        return from_vec(&out_shape, Vec::new());
    }
    let offsets = slice_offsets(spec, a.shape())?;
    let src = row_major(a);
    let Some((last, outer)) = offsets.split_last() else {
        return from_vec(&out_shape, src.to_vec());
    };
    let mut data = Vec::with_capacity(out_shape.iter().product());
    let contiguous = last.windows(2).all(|w| w[1] == w[0] + 1);
    for_each_row(&out_shape[..outer.len()], |row| {
        let base: usize = row.iter().zip(outer).map(|(&j, o)| o[j]).sum();
        if contiguous {
            data.extend_from_slice(&src[base + last[0]..base + last[0] + last.len()]);
        } else {
            data.extend(last.iter().map(|&o| src[base + o]));
        }
        Ok(())
    })?;
    from_vec(&out_shape, data)
}

/// For every axis of a slice of a `shape`-tensor, the row-major offset (position × stride)
/// of each selected element. A bad position is reported as the row-major element-by-element
/// walk would first meet it.
pub(super) fn slice_offsets(spec: &SliceSpec, shape: &[usize]) -> Result<Vec<Vec<usize>>, String> {
    let strides = strides(shape);
    let mut first_error = None;
    let offsets = spec
        .dims
        .iter()
        .zip(&strides)
        .map(|(dim, &stride)| {
            (0..dim.len)
                .map(|j| slice_position(dim.start, dim.step, j).map(|p| p * stride))
                .collect::<Result<Vec<usize>, String>>()
                .unwrap_or_else(|e| {
                    first_error = Some(e);
                    Vec::new()
                })
        })
        .collect();
    match first_error {
        Some(e) => Err(e),
        None => Ok(offsets),
    }
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
    let arrays = inputs
        .iter()
        .enumerate()
        .map(|(i, v)| same_dtype::<T>(v, &format!("input {i}")))
        .collect::<Result<Vec<&ArrayD<T>>, String>>()?;
    let first = arrays[0].shape();
    let fits = axis < first.len()
        && arrays.iter().all(|a| {
            let s = a.shape();
            s.len() == first.len()
                && s.iter()
                    .zip(first)
                    .enumerate()
                    .all(|(i, (x, y))| i == axis || x == y)
        });
    if !fits {
        // Let ndarray describe the mismatch, as it always has.
        let views: Vec<ArrayViewD<T>> = arrays.iter().map(|a| a.view()).collect();
        return ndarray::concatenate(ndarray::Axis(axis), &views)
            .map_err(|e| format!("cannot concatenate along axis {axis}: {e}"));
    }
    let mut out_shape = first.to_vec();
    out_shape[axis] = arrays.iter().map(|a| a.shape()[axis]).sum();
    let outer: usize = first[..axis].iter().product();
    let inner: usize = first[axis + 1..].iter().product();
    let sources: Vec<(Cow<[T]>, usize)> = arrays
        .iter()
        .map(|a| (row_major(a), a.shape()[axis] * inner))
        .collect();
    let mut data = Vec::with_capacity(out_shape.iter().product());
    for o in 0..outer {
        for (src, chunk) in &sources {
            data.extend_from_slice(&src[o * chunk..(o + 1) * chunk]);
        }
    }
    from_vec(&out_shape, data)
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
        let mut out = vec![fill; out_shape.iter().product()];
        // The input goes to `before..before + len` of every axis.
        let out_strides = strides(out_shape);
        let start: usize = paddings.iter().zip(&out_strides).map(|(p, s)| p.0 * s).sum();
        let src = row_major(a);
        if let Some((&width, outer)) = a.shape().split_last() {
            let mut rows = src.chunks_exact(width.max(1));
            if width > 0 {
                for_each_row(outer, |row| {
                    let at = start + row.iter().zip(&out_strides).map(|(j, s)| j * s).sum::<usize>();
                    let run = rows.next().ok_or("internal error: pad ran out of input rows")?;
                    out[at..at + width].copy_from_slice(run);
                    Ok(())
                })?;
            }
        } else {
            out.copy_from_slice(&src);
        }
        from_vec(out_shape, out).map(Value::from)
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
        let numel: usize = out_shape.iter().product();
        let src = row_major(a);
        let Some((&width, outer)) = a.shape().split_last() else {
            return from_vec(out_shape, src.to_vec()).map(Value::from);
        };
        let mut data = Vec::with_capacity(numel);
        if numel > 0 {
            let in_strides = strides(a.shape());
            let repeats = out_shape[outer.len()] / width;
            for_each_row(&out_shape[..outer.len()], |row| {
                let at: usize = row
                    .iter()
                    .zip(outer)
                    .zip(&in_strides)
                    .map(|((&o, &d), s)| (o % d) * s)
                    .sum();
                for _ in 0..repeats {
                    data.extend_from_slice(&src[at..at + width]);
                }
                Ok(())
            })?;
        }
        from_vec(out_shape, data).map(Value::from)
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
    let inner: usize = x.shape()[axis + 1..].iter().product();
    // out[.., j, ..] for j < shift comes from in[.., n − shift + j, ..], the rest from
    // in[.., j − shift, ..]: two contiguous runs per outer index.
    let split = (n - shift) * inner;
    map_value!(x, a => {
        let src = row_major(a);
        let mut data = Vec::with_capacity(src.len());
        for block in src.chunks_exact((n * inner).max(1)) {
            data.extend_from_slice(&block[split..]);
            data.extend_from_slice(&block[..split]);
        }
        from_vec(a.shape(), data).map(Value::from)
    })
}
