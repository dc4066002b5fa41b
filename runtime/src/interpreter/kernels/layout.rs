//! Layout ops: they move elements without computing on them — `reshape`, `transpose`,
//! `broadcast_to`, `slice`, `concat`, `pad`, `tile` and `roll`.
//!
//! The copying ops work on contiguous row-major rows: they compute each row's offset once
//! (an odometer over the outer axes, see [`for_each_row`]) and move whole runs of the last
//! axis with `extend_from_slice`, never indexing element by element.
//!
//! The copies of `concat`, `pad`, `tile` and `roll` are slice-level functions
//! (`*_into`: row-major input slices in, a caller-owned output slice out, nothing
//! allocated for ranks up to [`STACK_RANK`]); the value-level kernels here and the
//! executor's native interpreter steps (`exec/native.rs`) both call them.

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

/// Ranks up to this use stack buffers for odometers and strides (no heap allocation).
pub(crate) const STACK_RANK: usize = 16;

/// Calls `f(buf)` with a zeroed `&mut [usize]` of length `n`: on the stack when
/// `n <= STACK_RANK`, else on the heap.
pub(crate) fn with_dims<R>(n: usize, f: impl FnOnce(&mut [usize]) -> R) -> R {
    let mut stack = [0usize; STACK_RANK];
    let mut heap = Vec::new();
    let buf: &mut [usize] = if n <= STACK_RANK {
        &mut stack[..n]
    } else {
        heap.resize(n, 0);
        &mut heap
    };
    f(buf)
}

/// Calls `f(strides)` with the row-major strides (in elements) of `shape`, without heap
/// allocation for ranks up to [`STACK_RANK`].
pub(crate) fn with_strides<R>(shape: &[usize], f: impl FnOnce(&[usize]) -> R) -> R {
    with_dims(shape.len(), |s| {
        let mut acc = 1;
        for (st, &d) in s.iter_mut().zip(shape).rev() {
            *st = acc;
            acc *= d;
        }
        f(s)
    })
}

/// Calls `f(index)` for every index of `shape` in row-major order (none when an axis is
/// empty, once with `[]` for rank 0), reusing one index buffer (on the stack for ranks up
/// to [`STACK_RANK`]).
pub(crate) fn for_each_row(
    shape: &[usize],
    mut f: impl FnMut(&[usize]) -> Result<(), String>,
) -> Result<(), String> {
    if shape.contains(&0) {
        return Ok(());
    }
    with_dims(shape.len(), |index| {
        loop {
            f(index)?;
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
    })
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
    let strides: Vec<usize> = with_strides(shape, <[usize]>::to_vec);
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
    let mut data = vec![T::default(); out_shape.iter().product()];
    concat_into(&mut data, outer, sources.len(), |i| {
        (&*sources[i].0, sources[i].1)
    })?;
    from_vec(&out_shape, data)
}

/// The copy of a concatenation: for each of `outer` blocks, input `i`'s chunk of
/// `source(i) = (data, chunk)` elements (its axis length times the inner size), inputs in
/// order, into `out` (row-major, `outer · Σ chunk` elements).
pub(crate) fn concat_into<'a, T: Copy + 'a>(
    out: &mut [T],
    outer: usize,
    count: usize,
    source: impl Fn(usize) -> (&'a [T], usize),
) -> Result<(), String> {
    let mut at = 0;
    for o in 0..outer {
        for i in 0..count {
            let (src, chunk) = source(i);
            let (from, to) = (o * chunk, (o + 1) * chunk);
            match (src.get(from..to), out.get_mut(at..at + chunk)) {
                (Some(s), Some(d)) => d.copy_from_slice(s),
                _ => return Err(format!("internal error: concat input {i} does not fit")),
            }
            at += chunk;
        }
    }
    if at != out.len() {
        return Err("internal error: concat inputs do not fill the output".into());
    }
    Ok(())
}

/// Whether `paddings` take `shape` to `out_shape`, or the error naming them.
pub(crate) fn check_pad(
    shape: &[usize],
    paddings: &[(usize, usize)],
    out_shape: &[usize],
) -> Result<(), String> {
    let fits = paddings.len() == shape.len()
        && out_shape.len() == shape.len()
        && paddings
            .iter()
            .zip(shape)
            .zip(out_shape)
            .all(|((&(before, after), &d), &o)| {
                before.checked_add(d).and_then(|n| n.checked_add(after)) == Some(o)
            });
    if fits {
        Ok(())
    } else {
        Err(format!(
            "paddings {paddings:?} do not take shape {shape:?} to {out_shape:?}"
        ))
    }
}

/// Pad with `value` (converted to the dtype) to `out_shape`: `paddings[i] = (before,
/// after)` for axis `i`.
pub(in crate::interpreter) fn pad(
    x: &Value,
    paddings: &[(usize, usize)],
    value: Scalar,
    out_shape: &[usize],
) -> Result<Value, String> {
    check_pad(x.shape(), paddings, out_shape)?;
    let fill = Value::full(x.dtype(), &[], value);
    map_value!(x, a => {
        let fill = same_dtype(&fill, "the pad value")?.first().copied().unwrap_or_default();
        let mut out = vec![fill; out_shape.iter().product()];
        pad_into(&row_major(a), a.shape(), paddings, out_shape, fill, &mut out)?;
        from_vec(out_shape, out).map(Value::from)
    })
}

/// The copy of a pad (shapes already checked by [`check_pad`]): `out` (row-major,
/// `out_shape`) is filled with `fill`, then each row of `src` (row-major, `shape`) goes to
/// `before..before + len` of every axis.
pub(crate) fn pad_into<T: Copy>(
    src: &[T],
    shape: &[usize],
    paddings: &[(usize, usize)],
    out_shape: &[usize],
    fill: T,
    out: &mut [T],
) -> Result<(), String> {
    out.fill(fill);
    with_strides(out_shape, |out_strides| {
        let start: usize = paddings.iter().zip(out_strides).map(|(p, s)| p.0 * s).sum();
        let Some((&width, outer)) = shape.split_last() else {
            out.copy_from_slice(src);
            return Ok(());
        };
        if width == 0 {
            return Ok(());
        }
        let mut rows = src.chunks_exact(width);
        for_each_row(outer, |row| {
            let at = start
                + row
                    .iter()
                    .zip(out_strides)
                    .map(|(j, s)| j * s)
                    .sum::<usize>();
            let run = rows
                .next()
                .ok_or("internal error: pad ran out of input rows")?;
            out.get_mut(at..at + width)
                .ok_or("internal error: a pad row is outside the output")?
                .copy_from_slice(run);
            Ok(())
        })
    })
}

/// Whether `shape` tiles to `out_shape` (every output axis a multiple of the input's), or
/// the error naming them.
pub(crate) fn check_tile(shape: &[usize], out_shape: &[usize]) -> Result<(), String> {
    let fits = out_shape.len() == shape.len()
        && shape
            .iter()
            .zip(out_shape)
            .all(|(&d, &o)| if d == 0 { o == 0 } else { o % d == 0 });
    if fits {
        Ok(())
    } else {
        Err(format!("shape {shape:?} does not tile to {out_shape:?}"))
    }
}

/// Repeat the input along every axis to `out_shape` (a multiple of the input's shape):
/// `out[o] = in[o mod shape]`.
pub(in crate::interpreter) fn tile(x: &Value, out_shape: &[usize]) -> Result<Value, String> {
    check_tile(x.shape(), out_shape)?;
    map_value!(x, a => {
        let mut data = vec![Default::default(); out_shape.iter().product()];
        tile_into(&row_major(a), a.shape(), out_shape, &mut data)?;
        from_vec(out_shape, data).map(Value::from)
    })
}

/// The copy of a tile (shapes already checked by [`check_tile`]): `src` is row-major
/// `shape`, `out` row-major `out_shape`; per output row, the source row is repeated.
pub(crate) fn tile_into<T: Copy>(
    src: &[T],
    shape: &[usize],
    out_shape: &[usize],
    out: &mut [T],
) -> Result<(), String> {
    let Some((&width, outer)) = shape.split_last() else {
        out.copy_from_slice(src);
        return Ok(());
    };
    if out.is_empty() {
        return Ok(());
    }
    let repeats = out_shape[outer.len()] / width;
    let mut at_out = 0;
    with_strides(shape, |in_strides| {
        for_each_row(&out_shape[..outer.len()], |row| {
            let at: usize = row
                .iter()
                .zip(outer)
                .zip(in_strides)
                .map(|((&o, &d), s)| (o % d) * s)
                .sum();
            let run = src
                .get(at..at + width)
                .ok_or("internal error: a tile row is outside the input")?;
            for _ in 0..repeats {
                out.get_mut(at_out..at_out + width)
                    .ok_or("internal error: tile ran past the output")?
                    .copy_from_slice(run);
                at_out += width;
            }
            Ok(())
        })
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
    let inner: usize = x.shape()[axis + 1..].iter().product();
    map_value!(x, a => {
        let src = row_major(a);
        let mut data = vec![Default::default(); src.len()];
        roll_into(&src, n, inner, shift, &mut data);
        from_vec(a.shape(), data).map(Value::from)
    })
}

/// The copy of a roll by `shift` along an axis of length `n` whose trailing axes hold
/// `inner` elements: `src` and `out` are row-major and of equal length (a multiple of
/// `n · inner`).
pub(crate) fn roll_into<T: Copy>(src: &[T], n: usize, inner: usize, shift: i64, out: &mut [T]) {
    if n == 0 || inner == 0 {
        return;
    }
    // The shift reduced into 0..n; computed in i128 so no shift overflows.
    let shift = usize::try_from((shift as i128).rem_euclid(n as i128)).unwrap_or(0);
    // out[.., j, ..] for j < shift comes from in[.., n − shift + j, ..], the rest from
    // in[.., j − shift, ..]: two contiguous runs per outer index.
    let split = (n - shift) * inner;
    let block = n * inner;
    for (s, d) in src.chunks_exact(block).zip(out.chunks_exact_mut(block)) {
        d[..block - split].copy_from_slice(&s[split..]);
        d[block - split..].copy_from_slice(&s[..split]);
    }
}
