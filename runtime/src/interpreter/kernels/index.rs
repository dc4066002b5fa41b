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
use super::{SortScratch, Wide, compare_nan, from_vec, same_dtype, with_wide};
use flumen_frontend::op::SliceSpec;
use flumen_frontend::{DType, Element, Value, map_value};
use ndarray::ArrayD;
use std::cmp::Ordering;

/// Checks every index of `idx` (row-major) is in `0..len` (the length of `axis`); the
/// error names the first bad index.
pub(crate) fn check_indices<I: Copy + Into<i64>>(
    idx: &[I],
    axis: usize,
    len: usize,
) -> Result<(), String> {
    let bad = idx
        .iter()
        .map(|&i| i.into())
        .find(|&i| usize::try_from(i).map_or(true, |p| p >= len));
    match bad {
        Some(i) => Err(format!(
            "index {i} is out of range for axis {axis} of length {len} (valid indices: 0..{len})"
        )),
        None => Ok(()),
    }
}

/// Runs `$body` with `$ix` bound to the row-major elements of the index value `$v` (i32
/// or i64), or returns the error for any other dtype.
macro_rules! with_indices {
    ($v:expr, $ix:ident => $body:expr) => {
        match $v {
            Value::I32(a) => {
                let $ix: &[i32] = &row_major(a);
                $body
            }
            Value::I64(a) => {
                let $ix: &[i64] = &row_major(a);
                $body
            }
            other => Err(format!("indices must be i32 or i64, got {}", other.dtype())),
        }
    };
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
pub(crate) struct Blocks {
    axis: usize,
    batch: usize,
    mid: usize,
    len: usize,
    inner: usize,
    per_batch: usize,
}

impl Blocks {
    /// The blocks of an `outer`-shaped tensor indexed by `indices` along `axis` (shapes
    /// already checked, as by [`gathered_shape`]).
    pub(crate) fn new(
        outer: &[usize],
        indices: &[usize],
        axis: usize,
        batch_dims: usize,
    ) -> Blocks {
        Blocks {
            axis,
            batch: outer[..batch_dims].iter().product(),
            mid: outer[batch_dims..axis].iter().product(),
            len: outer[axis],
            inner: outer[axis + 1..].iter().product(),
            per_batch: indices[batch_dims..].iter().product(),
        }
    }

    /// Elements of the outer tensor.
    fn outer_len(&self) -> usize {
        self.batch * self.mid * self.len * self.inner
    }

    /// Elements of the gathered layout (gather's output, scatter_add's updates).
    fn gathered_len(&self) -> usize {
        self.batch * self.mid * self.per_batch * self.inner
    }

    /// Checks the slice lengths against the blocks and every index against the axis.
    fn check<I: Copy + Into<i64>>(
        &self,
        outer: usize,
        idx: &[I],
        gathered: usize,
    ) -> Result<(), String> {
        if outer != self.outer_len()
            || idx.len() != self.batch * self.per_batch
            || gathered != self.gathered_len()
        {
            return Err(format!(
                "internal error: {outer} outer, {} index and {gathered} gathered elements do not fit the blocks",
                idx.len()
            ));
        }
        check_indices(idx, self.axis, self.len)
    }

    /// Calls `f(outer_offset)` for every run of `inner` elements, in the row-major order of
    /// the gathered layout; `outer_offset` is where that run starts in the outer tensor.
    /// The indices must be checked.
    fn for_each_run<I: Copy + Into<i64>>(&self, idx: &[I], mut f: impl FnMut(usize)) {
        for b in 0..self.batch {
            let rows = &idx[b * self.per_batch..(b + 1) * self.per_batch];
            for m in 0..self.mid {
                let base = (b * self.mid + m) * self.len;
                for &p in rows {
                    // Checked: 0 <= p < len.
                    f((base + p.into() as usize) * self.inner);
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
    let blocks = Blocks::new(params.shape(), indices.shape(), axis, batch_dims);
    with_indices!(indices, ix => map_value!(params, p => {
        let mut data = vec![Default::default(); shape.iter().product()];
        gather_into(&row_major(p), ix, &blocks, &mut data)?;
        from_vec(&shape, data).map(Value::from)
    }))
}

/// The copy of a gather: `src` is the row-major params, `idx` the row-major indices, `out`
/// the row-major output; each index moves one contiguous `inner` run. Every index is
/// checked first (the error names the first bad one); nothing is written on error.
pub(crate) fn gather_into<T: Copy, I: Copy + Into<i64>>(
    src: &[T],
    idx: &[I],
    blocks: &Blocks,
    out: &mut [T],
) -> Result<(), String> {
    blocks.check(src.len(), idx, out.len())?;
    let inner = blocks.inner;
    let mut at_out = 0;
    if inner == 1 {
        blocks.for_each_run(idx, |at| {
            out[at_out] = src[at];
            at_out += 1;
        });
    } else {
        blocks.for_each_run(idx, |at| {
            out[at_out..at_out + inner].copy_from_slice(&src[at..at + inner]);
            at_out += inner;
        });
    }
    Ok(())
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
    let blocks = Blocks::new(&out_shape, indices.shape(), axis, batch_dims);
    with_indices!(indices, ix => map_value!(updates, a => {
        let mut out = vec![Default::default(); out_shape.iter().product()];
        scatter_add_into(&row_major(a), ix, &blocks, &mut out, &mut Vec::new())?;
        from_vec(&out_shape, out).map(Value::from)
    }))
}

/// The sums of a scatter_add: `updates` (row-major, gathered layout) summed into `out`
/// (row-major, the outer tensor; overwritten) in the updates' row-major order, each slot
/// accumulated in the wide type and rounded once. Only f32 needs the wide accumulators
/// (`wide`, resized to the output); every other dtype accumulates in place with the same
/// result (f64 and i64 are their own wide type; narrower integers and bools wrap the same
/// way either way). Indices are checked first; nothing is written on error.
pub(crate) fn scatter_add_into<T: Element, I: Copy + Into<i64>>(
    updates: &[T],
    idx: &[I],
    blocks: &Blocks,
    out: &mut [T],
    wide: &mut Vec<f64>,
) -> Result<(), String> {
    blocks.check(out.len(), idx, updates.len())?;
    let inner = blocks.inner;
    let mut next = 0;
    if T::DTYPE == DType::F32 {
        wide.clear();
        wide.resize(out.len(), 0.0);
        blocks.for_each_run(idx, |at| {
            let run = &updates[next..next + inner];
            next += inner;
            for (slot, &update) in wide[at..at + inner].iter_mut().zip(run) {
                *slot = slot.add(f64::of(update));
            }
        });
        for (o, &w) in out.iter_mut().zip(wide.iter()) {
            *o = w.to::<T>();
        }
    } else {
        with_wide!(T, W => {
            out.fill(W::zero().to::<T>());
            blocks.for_each_run(idx, |at| {
                let run = &updates[next..next + inner];
                next += inner;
                for (slot, &update) in out[at..at + inner].iter_mut().zip(run) {
                    *slot = W::of(*slot).add(W::of(update)).to::<T>();
                }
            });
        });
    }
    Ok(())
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
    let mut shape = a.shape().to_vec();
    shape[last] = k;
    let mut out = vec![0; shape.iter().product()];
    top_k_into(&row_major(a), n, k, &mut out, &mut SortScratch::new())?;
    from_vec(&shape, out)
}

/// The selection of a top_k: `src` is row-major with rows of `n`, `out` gets `k` indices
/// per row; `scratch` holds each row's `(wide value, index)` pairs. Per row, the `k`
/// winners are selected with `select_nth_unstable_by`, then only they are sorted, under
/// the strict total order "larger first (NaN above every number, NaNs equal), then lower
/// index" — exactly the first `k` of a stable full sort.
pub(crate) fn top_k_into<T: Element>(
    src: &[T],
    n: usize,
    k: usize,
    out: &mut [i64],
    scratch: &mut SortScratch,
) -> Result<(), String> {
    if n < k {
        return Err(format!("top_k with k = {k} on a last axis of length {n}"));
    }
    if k == 0 {
        return Ok(());
    }
    if src.len() / n * k != out.len() {
        return Err("internal error: top_k output does not fit its input".into());
    }
    with_wide!(T, W => {
        let pairs = W::pairs(scratch);
        let before = |a: &(W, usize), b: &(W, usize)| -> Ordering {
            compare_nan(a.0, b.0, true).reverse().then(a.1.cmp(&b.1))
        };
        for (row, dst) in src.chunks_exact(n).zip(out.chunks_exact_mut(k)) {
            pairs.clear();
            pairs.extend(row.iter().enumerate().map(|(i, &v)| (W::of(v), i)));
            if k < n {
                pairs.select_nth_unstable_by(k - 1, before);
            }
            let winners = &mut pairs[..k];
            winners.sort_unstable_by(before);
            for (d, &(_, i)) in dst.iter_mut().zip(winners.iter()) {
                *d = i as i64;
            }
        }
    });
    Ok(())
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
    let n = a.shape()[axis];
    let inner: usize = a.shape()[axis + 1..].iter().product();
    let mut out = vec![0; a.len()];
    argsort_into(
        &row_major(a),
        n,
        inner,
        descending,
        &mut out,
        &mut SortScratch::new(),
    );
    from_vec(a.shape(), out)
}

/// The sort of an argsort along an axis of length `n` whose trailing axes hold `inner`
/// elements: `src` and `out` are row-major and of equal length; `scratch` holds each
/// lane's `(wide value, index)` pairs. Each lane is sorted (unstably, which is
/// allocation-free) by value (NaN above every number, reversed when descending) then by
/// index — the same order as a stable sort by value.
pub(crate) fn argsort_into<T: Element>(
    src: &[T],
    n: usize,
    inner: usize,
    descending: bool,
    out: &mut [i64],
    scratch: &mut SortScratch,
) {
    let block = n * inner;
    if block == 0 {
        return;
    }
    with_wide!(T, W => {
        let pairs = W::pairs(scratch);
        for (s, d) in src.chunks_exact(block).zip(out.chunks_exact_mut(block)) {
            for j in 0..inner {
                pairs.clear();
                pairs.extend((0..n).map(|i| (W::of(s[i * inner + j]), i)));
                pairs.sort_unstable_by(|a, b| {
                    let o = compare_nan(a.0, b.0, true);
                    let o = if descending { o.reverse() } else { o };
                    o.then(a.1.cmp(&b.1))
                });
                for (t, &(_, i)) in pairs.iter().enumerate() {
                    d[t * inner + j] = i as i64;
                }
            }
        }
    });
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
