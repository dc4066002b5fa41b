//! Indexing ops: `gather` and its adjoint `scatter_add`, `top_k`, `argsort`, and the
//! slice assignment behind `assign_slice`.
//!
//! Indices may be i32 or i64. Every index is checked before any element moves: an index
//! outside `0..len` is an error naming the index and the valid range, whether or not the
//! output would use it.

use super::layout::slice_position;
use super::{Wide, compare_nan, element_at, from_vec, same_dtype, try_from_index_fn, with_wide};
use flumen_frontend::op::{BinaryOp, SliceSpec};
use flumen_frontend::{Element, Value, map_value};
use ndarray::{ArrayD, Axis, Dimension, IxDyn, Zip};

/// The index tensor as positions in `0..len` (the length of `axis`), or an error naming
/// the first bad index.
fn positions(indices: &Value, axis: usize, len: usize) -> Result<ArrayD<usize>, String> {
    let check = |i: i64| {
        usize::try_from(i).ok().filter(|&p| p < len).ok_or_else(|| {
            format!(
                "index {i} is out of range for axis {axis} of length {len} (valid indices: 0..{len})"
            )
        })
    };
    let data = match indices {
        Value::I32(a) => a.iter().map(|&i| check(i.into())).collect(),
        Value::I64(a) => a.iter().map(|&i| check(i)).collect(),
        other => Err(format!("indices must be i32 or i64, got {}", other.dtype())),
    }?;
    from_vec(indices.shape(), data)
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

/// Maps an index of the gathered layout to the matching index of the outer tensor (params
/// of gather, output of scatter_add), reading the gathered position from the indices.
struct GatherIndexer<'a> {
    positions: &'a ArrayD<usize>,
    axis: usize,
    batch_dims: usize,
    index_rank: usize,
    at: Vec<usize>,
    outer: Vec<usize>,
}

impl<'a> GatherIndexer<'a> {
    fn new(
        positions: &'a ArrayD<usize>,
        axis: usize,
        batch_dims: usize,
        outer_rank: usize,
    ) -> Self {
        GatherIndexer {
            positions,
            axis,
            batch_dims,
            index_rank: positions.ndim().saturating_sub(batch_dims),
            at: vec![0; positions.ndim()],
            outer: vec![0; outer_rank],
        }
    }

    /// The outer index for gathered index `g` (whose shape [`gathered_shape`] checked).
    fn outer_index(&mut self, g: &[usize]) -> Result<&[usize], String> {
        let (axis, bd, ir) = (self.axis, self.batch_dims, self.index_rank);
        self.at[..bd].copy_from_slice(&g[..bd]);
        self.at[bd..].copy_from_slice(&g[axis..axis + ir]);
        self.outer[..axis].copy_from_slice(&g[..axis]);
        self.outer[axis] = element_at(self.positions, &self.at)?;
        self.outer[axis + 1..].copy_from_slice(&g[axis + ir..]);
        Ok(&self.outer)
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
    map_value!(params, p => {
        let mut indexer = GatherIndexer::new(&positions, axis, batch_dims, p.ndim());
        try_from_index_fn(&shape, |g| element_at(p, indexer.outer_index(g)?)).map(Value::from)
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
    map_value!(updates, a => scatter_add_typed(a, &positions, axis, batch_dims, &out_shape).map(Value::from))
}

fn scatter_add_typed<T: Element>(
    updates: &ArrayD<T>,
    positions: &ArrayD<usize>,
    axis: usize,
    batch_dims: usize,
    out_shape: &[usize],
) -> Result<ArrayD<T>, String> {
    let mut indexer = GatherIndexer::new(positions, axis, batch_dims, out_shape.len());
    with_wide!(T, W => {
        let mut sums = ArrayD::from_elem(IxDyn(out_shape), W::zero());
        for (g, &update) in updates.indexed_iter() {
            let target = indexer.outer_index(g.slice())?;
            let slot = sums
                .get_mut(target)
                .ok_or_else(|| format!("internal error: scatter target {target:?} outside {out_shape:?}"))?;
            *slot = W::binary(BinaryOp::Add, *slot, W::of(update));
        }
        Ok(sums.mapv(W::to::<T>))
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
    if a.shape()[last] < k {
        return Err(format!(
            "top_k with k = {k} on a last axis of length {}",
            a.shape()[last]
        ));
    }
    let mut shape = a.shape().to_vec();
    shape[last] = k;
    let mut out = ArrayD::zeros(IxDyn(&shape));
    with_wide!(T, W => Zip::from(out.lanes_mut(Axis(last)))
    .and(a.lanes(Axis(last)))
    .for_each(|mut dst, src| {
        let values: Vec<W> = src.iter().map(|&v| W::of(v)).collect();
        for (d, i) in dst.iter_mut().zip(sort_order(&values, true)) {
            *d = i as i64;
        }
    }));
    Ok(out)
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
        let mut target = vec![0; v.ndim()];
        for (index, &x) in source.indexed_iter() {
            for ((t, &j), dim) in target.iter_mut().zip(index.slice()).zip(&spec.dims) {
                *t = slice_position(dim.start, dim.step, j)?;
            }
            *out.get_mut(target.as_slice())
                .ok_or_else(|| format!("internal error: slice target {target:?} outside {:?}", v.shape()))? = x;
        }
        Ok(Value::from(out))
    })
}
