//! Gradient rules of the layout ops that need more than one line: strided slices, concat,
//! pad, tile, and the product reduction.

use super::rules::{Ctx, Grads, dims};
use crate::Tensor;
use crate::error::Result;
use crate::op::{SliceDim, SliceSpec};
use crate::value::Value;

/// The adjoint of a strided slice of a tensor of shape `shape`: zeros everywhere but at the
/// selected elements, which receive `dy`. Axes with step 1 are padded (one `pad` for all of
/// them); every other axis (step ≠ 1, including negative steps) is scattered with
/// `scatter_add` at the constant indices `start + j·step`, which are distinct.
pub(super) fn slice(dy: &Tensor, spec: &SliceSpec, shape: &[usize]) -> Result<Tensor> {
    let mut g = dy.clone();
    for (axis, d) in spec.dims.iter().enumerate() {
        if d.step != 1 && d.len > 0 {
            let idx: Vec<i64> = (0..d.len as i64)
                .map(|j| d.start as i64 + j * d.step)
                .collect();
            let idx = dy.graph().constant(Value::from_vec(&[d.len], idx)?)?;
            g = g.scatter_add(&idx, axis, 0, shape[axis])?;
        }
    }
    let paddings: Vec<(usize, usize)> = spec
        .dims
        .iter()
        .zip(shape)
        .map(|(d, &n)| match d {
            SliceDim { len: 0, .. } => (0, n),
            SliceDim {
                step: 1,
                start,
                len,
            } => (*start, n - start - len),
            _ => (0, 0),
        })
        .collect();
    if paddings.iter().any(|&p| p != (0, 0)) {
        g = g.pad(&paddings, 0.0)?;
    }
    Ok(g)
}

/// Each input of a concat gets its slice of `dy` along `axis`.
pub(super) fn concat(axis: usize, cx: &Ctx) -> Result<Grads> {
    let mut offset = 0;
    let mut out = Vec::with_capacity(cx.inputs.len());
    for (i, x) in cx.inputs.iter().enumerate() {
        let len = x.shape()[axis];
        out.push(cx.maybe(i, || {
            let mut spec = SliceSpec::full(cx.dy.shape());
            spec.dims[axis] = SliceDim {
                start: if len == 0 { 0 } else { offset },
                step: 1,
                len,
            };
            cx.dy.slice_spec(spec)
        })?);
        offset += len;
    }
    Ok(out)
}

/// The adjoint of `pad`: the interior slice.
pub(super) fn unpad(dy: &Tensor, paddings: &[(usize, usize)]) -> Result<Tensor> {
    let spec = SliceSpec {
        dims: paddings
            .iter()
            .zip(dy.shape())
            .map(|(&(before, after), &n)| {
                let len = n - before - after;
                SliceDim {
                    start: if len == 0 { 0 } else { before },
                    step: 1,
                    len,
                }
            })
            .collect(),
    };
    dy.slice_spec(spec)
}

/// The adjoint of `tile`: view each axis `m·d` as `[m, d]` and sum over the copies `m`.
pub(super) fn untile(dy: &Tensor, multiples: &[usize]) -> Result<Tensor> {
    if multiples.iter().all(|&m| m == 1) {
        return Ok(dy.clone());
    }
    let split: Vec<usize> = dy
        .shape()
        .iter()
        .zip(multiples)
        .flat_map(|(&n, &m)| [m, n.checked_div(m).unwrap_or(0)])
        .collect();
    let copies: Vec<i64> = (0..multiples.len()).map(|i| 2 * i as i64).collect();
    dy.reshape(&dims(&split))?.sum(&copies, false)
}

/// The gradient of a product over `axes`: each element gets the product of the *other*
/// reduced elements times `dy` (broadcast over the reduced axes, which it has with length
/// 1). Computed exactly, also with zeros, as the product over a `[kept, n, n]` tensor whose
/// diagonal is replaced by ones (`n` = number of reduced elements; O(n²) memory).
pub(super) fn prod(x: &Tensor, axes: &[usize], dy: &Tensor) -> Result<Tensor> {
    let rank = x.rank();
    let perm: Vec<usize> = (0..rank)
        .filter(|a| !axes.contains(a))
        .chain(axes.iter().copied())
        .collect();
    let mut inverse = vec![0; rank];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    let n: usize = axes.iter().map(|&a| x.shape()[a]).product();
    let kept = x.numel().checked_div(n).unwrap_or(0);
    let moved = x.transpose(&perm)?;
    let rows = moved.reshape(&[kept as i64, 1, n as i64])?;
    let rows = rows.broadcast_to(&[kept, n, n])?;
    let eye: Vec<bool> = (0..n * n).map(|k| k / n.max(1) == k % n.max(1)).collect();
    let eye = x.graph().constant(Value::from_vec(&[n, n], eye)?)?;
    let others = eye.select(1.0, &rows)?.prod(&[2], false)?;
    let grad = (others * &dy.reshape(&[kept as i64, 1])?)?;
    grad.reshape(&dims(moved.shape()))?.transpose(&inverse)
}
