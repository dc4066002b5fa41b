//! Indexing ops: `gather` and its adjoint `scatter_add`, `top_k`, `argsort`, and the
//! slice assignment behind `assign_slice`.
//!
//! Indices may be i32 or i64. Every index is checked before any element moves: an index
//! outside `0..len` is an error naming the index and the valid range, whether or not the
//! output would use it.
//!
//! The kernels work on row-major data in blocks: gather and scatter_add split the outer
//! tensor into `batch × mid × len × inner` (axes before `batch_dims`, the axes between it
//! and `axis`, `axis` itself, and the axes after it) and move whole `inner` runs; top_k
//! selects the `k` largest of each row before sorting just those.

use super::layout::{for_each_row, row_major, slice_offsets};
use super::{Wide, compare_nan, from_vec, same_dtype, with_wide};
use flumen_frontend::op::{BinaryOp, SliceSpec};
use flumen_frontend::{Element, Value, map_value};
use ndarray::{ArrayD, Axis, Zip};
use std::cmp::Ordering;

/// The index tensor as positions in `0..len` (the length of `axis`), row-major, or an error
/// naming the first bad index.
fn positions(indices: &Value, axis: usize, len: usize) -> Result<Vec<usize>, String> {
    let check = |i: i64| {
        usize::try_from(i).ok().filter(|&p| p < len).ok_or_else(|| {
            format!(
                "index {i} is out of range for axis {axis} of length {len} (valid indices: 0..{len})"
            )
        })
    };
    match indices {
        Value::I32(a) => a.iter().map(|&i| check(i.into())).collect(),
        Value::I64(a) => a.iter().map(|&i| check(i)).collect(),
        other => Err(format!("indices must be i32 or i64, got {}", other.dtype())),
    }
}

/// The layout shared by gather's output and scatter_add's updates:
/// `outer[..axis] ++ indices[batch_dims..] ++ outer[axis + 1..]`, where `outer` is the
/// shape of gather's params or scatter_add's output. Errors when the attributes do not fit.
fn gathered_shape(
    outer: &[usize],
    indices: &[usize],
    axis: usize,
    batch_dims: usize,
) -> Result<Vec<usize>, String> {
    let fits = axis < outer.len()
        && batch_dims <= axis
        && batch_dims <= indices.len()
        && outer[..batch_dims] == indices[..batch_dims];
    if !fits {
        return Err(format!(
            "axis {axis} and batch_dims {batch_dims} do not fit shapes {outer:?} and indices {indices:?}"
        ));
    }
    Ok([&outer[..axis], &indices[batch_dims..], &outer[axis + 1..]].concat())
}

/// The block decomposition of a gather/scatter_add: the outer tensor (params, or
/// scatter_add's output) is `batch × mid × len × inner`, and each batch has `per_batch`
/// indices.
struct Blocks {
    batch: usize,
    mid: usize,
    len: usize,
    inner: usize,
    per_batch: usize,
}

impl Blocks {
    /// The blocks of an `outer`-shaped tensor indexed by `indices` (shapes already checked
    /// by [`gathered_shape`]).
    fn new(outer: &[usize], indices: &[usize], axis: usize, batch_dims: usize) -> Blocks {
        Blocks {
            batch: outer[..batch_dims].iter().product(),
            mid: outer[batch_dims..axis].iter().product(),
            len: outer[axis],
            inner: outer[axis + 1..].iter().product(),
            per_batch: indices[batch_dims..].iter().product(),
        }
    }

    /// Calls `f(outer_offset)` for every run of `inner` elements, in the row-major order of
    /// the gathered layout; `outer_offset` is where that run starts in the outer tensor.
    fn for_each_run(&self, positions: &[usize], mut f: impl FnMut(usize)) {
        for b in 0..self.batch {
            let rows = &positions[b * self.per_batch..(b + 1) * self.per_batch];
            for m in 0..self.mid {
                let base = (b * self.mid + m) * self.len;
                for &p in rows {
                    f((base + p) * self.inner);
                }
            }
        }
    }
}

/// TF `gather(params, indices, axis, batch_dims)`.
pub(in crate::interpreter) fn gather(
    params: &Value,
    indices: &Value,
    axis: usize,
    batch_dims: usize,
) -> Result<Value, String> {
    let shape = gathered_shape(params.shape(), indices.shape(), axis, batch_dims)?;
    let positions = positions(indices, axis, params.shape()[axis])?;
    let blocks = Blocks::new(params.shape(), indices.shape(), axis, batch_dims);
    let inner = blocks.inner;
    map_value!(params, p => {
        let src = row_major(p);
        let mut data = Vec::with_capacity(shape.iter().product());
        if inner == 1 {
            blocks.for_each_run(&positions, |at| data.push(src[at]));
        } else {
            blocks.for_each_run(&positions, |at| data.extend_from_slice(&src[at..at + inner]));
        }
        from_vec(&shape, data).map(Value::from)
    })
}

/// The adjoint of gather: sums `updates` (shaped like gather's output) into zeros whose
/// `axis` has length `dim`, in row-major order of the updates.
pub(in crate::interpreter) fn scatter_add(
    updates: &Value,
    indices: &Value,
    axis: usize,
    batch_dims: usize,
    dim: usize,
) -> Result<Value, String> {
    let index_rank = indices.shape().len().saturating_sub(batch_dims);
    let u = updates.shape();
    if u.len() < axis + index_rank {
        return Err(format!(
            "updates {u:?} do not fit indices {:?} at axis {axis}",
            indices.shape()
        ));
    }
    let out_shape = [&u[..axis], &[dim], &u[axis + index_rank..]].concat();
    if gathered_shape(&out_shape, indices.shape(), axis, batch_dims)? != u {
        return Err(format!(
            "updates {u:?} are not shaped like gather's output for indices {:?} (axis {axis}, batch_dims {batch_dims})",
            indices.shape()
        ));
    }
    let positions = positions(indices, axis, dim)?;
    let blocks = Blocks::new(&out_shape, indices.shape(), axis, batch_dims);
    map_value!(updates, a => scatter_add_typed(a, &positions, &blocks, &out_shape).map(Value::from))
}

fn scatter_add_typed<T: Element>(
    updates: &ArrayD<T>,
    positions: &[usize],
    blocks: &Blocks,
    out_shape: &[usize],
) -> Result<ArrayD<T>, String> {
    let src = row_major(updates);
    let inner = blocks.inner;
    with_wide!(T, W => {
        let mut sums = vec![W::zero(); out_shape.iter().product()];
        let mut next = 0;
        blocks.for_each_run(positions, |at| {
            let run = &src[next..next + inner];
            next += inner;
            for (slot, &update) in sums[at..at + inner].iter_mut().zip(run) {
                *slot = W::binary(BinaryOp::Add, *slot, W::of(update));
            }
        });
        from_vec(out_shape, sums.into_iter().map(W::to::<T>).collect())
    })
}

/// Stable sort order of `values` (NaN above every number): ascending, or descending with
/// equal values still in index order.
fn sort_order<W: Wide>(values: &[W], descending: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| {
        let o = compare_nan(values[i], values[j], true);
        if descending { o.reverse() } else { o }
    });
    order
}

/// Indices (i64) of the `k` largest entries along the last axis, largest first; ties go to
/// the lower index; NaN is larger than everything.
pub(in crate::interpreter) fn top_k(x: &Value, k: usize) -> Result<Value, String> {
    map_value!(x, a => top_k_typed(a, k).map(Value::from))
}

fn top_k_typed<T: Element>(a: &ArrayD<T>, k: usize) -> Result<ArrayD<i64>, String> {
    let Some(last) = a.ndim().checked_sub(1) else {
        return Err("top_k needs a tensor of rank >= 1".into());
    };
    let n = a.shape()[last];
    if n < k {
        return Err(format!("top_k with k = {k} on a last axis of length {n}"));
    }
    let mut shape = a.shape().to_vec();
    shape[last] = k;
    let mut out = Vec::with_capacity(shape.iter().product());
    if k > 0 {
        let src = row_major(a);
        with_wide!(T, W => {
            let mut values: Vec<W> = Vec::with_capacity(n);
            let mut order: Vec<usize> = Vec::with_capacity(n);
            for row in src.chunks_exact(n) {
                values.clear();
                values.extend(row.iter().map(|&v| W::of(v)));
                order.clear();
                order.extend(0..n);
                // Largest first (NaN above every number), then the lower index: a strict
                // total order, so selecting then sorting gives the full stable sort's
                // first k exactly.
                let before = |&i: &usize, &j: &usize| -> Ordering {
                    compare_nan(values[i], values[j], true)
                        .reverse()
                        .then(i.cmp(&j))
                };
                if k < n {
                    order.select_nth_unstable_by(k - 1, before);
                    order.truncate(k);
                }
                order.sort_unstable_by(before);
                out.extend(order.iter().map(|&i| i as i64));
            }
        });
    }
    from_vec(&shape, out)
}

/// Indices (i64) that stably sort along `axis`: ascending puts NaN last, descending puts
/// NaN first; equal elements keep index order in both directions.
pub(in crate::interpreter) fn argsort(
    x: &Value,
    axis: usize,
    descending: bool,
) -> Result<Value, String> {
    map_value!(x, a => argsort_typed(a, axis, descending).map(Value::from))
}

fn argsort_typed<T: Element>(
    a: &ArrayD<T>,
    axis: usize,
    descending: bool,
) -> Result<ArrayD<i64>, String> {
    if axis >= a.ndim() {
        return Err(format!("axis {axis} is out of range for rank {}", a.ndim()));
    }
    let mut out = ArrayD::zeros(a.raw_dim());
    with_wide!(T, W => Zip::from(out.lanes_mut(Axis(axis)))
    .and(a.lanes(Axis(axis)))
    .for_each(|mut dst, src| {
        let values: Vec<W> = src.iter().map(|&v| W::of(v)).collect();
        for (d, i) in dst.iter_mut().zip(sort_order(&values, descending)) {
            *d = i as i64;
        }
    }));
    Ok(out)
}

/// The new full value of variable `var` after `var[spec] := value`: a copy of `var` with
/// the sliced elements replaced by `value`'s (which must have the slice's shape and
/// `var`'s dtype). Used by the executor for `assign_slice`.
pub fn assign_slice(var: &Value, spec: &SliceSpec, value: &Value) -> Result<Value, String> {
    spec.check(var.shape()).map_err(|e| e.to_string())?;
    if value.shape() != spec.out_shape().as_slice() {
        return Err(format!(
            "assign_slice: the value has shape {:?}, the slice has shape {:?}",
            value.shape(),
            spec.out_shape()
        ));
    }
    map_value!(var, v => {
        let source = same_dtype(value, "the assigned value")?;
        let mut out = v.as_standard_layout().into_owned();
        let out_shape = source.shape();
        if out_shape.contains(&0) {
            return Ok(Value::from(out));
        }
        let offsets = slice_offsets(spec, v.shape())?;
        let target = out
            .as_slice_mut()
            .ok_or("internal error: assign_slice target is not contiguous")?;
        let src = row_major(source);
        let Some((last, outer)) = offsets.split_last() else {
            target.copy_from_slice(&src);
            return Ok(Value::from(out));
        };
        let mut rows = src.chunks_exact(last.len());
        for_each_row(&out_shape[..outer.len()], |row| {
            let base: usize = row.iter().zip(outer).map(|(&j, o)| o[j]).sum();
            let run = rows.next().ok_or("internal error: assign_slice ran out of rows")?;
            for (&o, &x) in last.iter().zip(run) {
                target[base + o] = x;
            }
            Ok(())
        })?;
        Ok(Value::from(out))
    })
}
