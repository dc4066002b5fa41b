//! Shape and layout ops: reshape, transpose, expand/squeeze, broadcast, slices (with
//! ndarray's `s![]` syntax), concat/split/stack, pad, tile and roll.

use super::{build_error, resolve_axis};
use crate::Tensor;
use crate::dtype::Scalar;
use crate::error::{BuildError, GraphError, Result};
use crate::op::{Op, SliceDim, SliceSpec};
use ndarray::SliceInfoElem;

/// Slice arguments: anything that derefs to ndarray's [`SliceInfoElem`]s, normally written
/// with `s![..]` (ndarray semantics: negative indices count from the end, a negative step
/// walks the range from its end, indices out of range are an error).
pub type SliceArgs = [SliceInfoElem];

/// A slice normalised against a shape, remembering which axes were indexed (to drop) and
/// where new axes go.
pub(crate) struct ResolvedSlice {
    pub spec: SliceSpec,
    /// Output shape after dropping indexed axes and inserting new ones.
    pub out_shape: Vec<usize>,
}

#[track_caller]
pub(crate) fn resolve_slice(op: &str, t: &Tensor, args: &SliceArgs) -> Result<ResolvedSlice> {
    let shape = t.shape();
    let bad = |msg: String| {
        build_error(
            op,
            t,
            BuildError::BadSlice {
                shape: shape.to_vec(),
                msg,
            },
        )
    };
    let consumed = args
        .iter()
        .filter(|a| !matches!(a, SliceInfoElem::NewAxis))
        .count();
    if consumed > shape.len() {
        return Err(bad(format!(
            "{consumed} axes indexed but the tensor has rank {}",
            shape.len()
        )));
    }
    let mut dims = Vec::new();
    let mut out_shape = Vec::new();
    let mut axis = 0;
    let resolve = |i: isize, n: usize, axis: usize, inclusive_end: bool| -> Result<usize> {
        let r = if i < 0 { i + n as isize } else { i };
        let limit = if inclusive_end {
            n as isize
        } else {
            n as isize - 1
        };
        if r < 0 || r > limit {
            Err(bad(format!(
                "axis {axis}: index {i} is out of range for length {n}"
            )))
        } else {
            Ok(r as usize)
        }
    };
    for a in args {
        match *a {
            SliceInfoElem::NewAxis => out_shape.push(1),
            SliceInfoElem::Index(i) => {
                let n = shape[axis];
                let r = resolve(i, n, axis, false)?;
                dims.push(SliceDim {
                    start: r,
                    step: 1,
                    len: 1,
                });
                axis += 1;
            }
            SliceInfoElem::Slice { start, end, step } => {
                let n = shape[axis];
                if step == 0 {
                    return Err(bad(format!("axis {axis}: step must be nonzero")));
                }
                let b = resolve(start, n, axis, true)?;
                let e = match end {
                    Some(e) => resolve(e, n, axis, true)?,
                    None => n,
                };
                let m = e.saturating_sub(b);
                let s = step.unsigned_abs();
                let len = m.div_ceil(s);
                let d = if len == 0 {
                    SliceDim {
                        start: 0,
                        step: step as i64,
                        len: 0,
                    }
                } else if step > 0 {
                    SliceDim {
                        start: b,
                        step: step as i64,
                        len,
                    }
                } else {
                    SliceDim {
                        start: e - 1,
                        step: step as i64,
                        len,
                    }
                };
                out_shape.push(len);
                dims.push(d);
                axis += 1;
            }
        }
    }
    for &n in &shape[axis..] {
        dims.push(SliceDim {
            start: 0,
            step: 1,
            len: n,
        });
        out_shape.push(n);
    }
    Ok(ResolvedSlice {
        spec: SliceSpec { dims },
        out_shape,
    })
}

impl Tensor {
    /// Reshape; one entry may be `-1` to infer it.
    #[track_caller]
    pub fn reshape(&self, shape: &[i64]) -> Result<Tensor> {
        let known: i64 = shape.iter().filter(|&&d| d != -1).product();
        let unknown = shape.iter().filter(|&&d| d == -1).count();
        let bad = |why: &str| {
            build_error(
                "reshape",
                self,
                BuildError::ShapeMismatch {
                    shapes: vec![self.shape().to_vec()],
                    expected: format!("a shape with the same number of elements; {shape:?} {why}"),
                },
            )
        };
        if unknown > 1 || shape.iter().any(|&d| d < -1) {
            return Err(bad("may have at most one -1 and no other negative entries"));
        }
        let numel = self.numel() as i64;
        let resolved: Vec<usize> = if unknown == 1 {
            if known == 0 || numel % known != 0 {
                return Err(bad(&format!("cannot infer -1 for {numel} elements")));
            }
            shape
                .iter()
                .map(|&d| {
                    if d == -1 {
                        (numel / known) as usize
                    } else {
                        d as usize
                    }
                })
                .collect()
        } else {
            shape.iter().map(|&d| d as usize).collect()
        };
        self.graph()
            .add_op(Op::Reshape(resolved), &[self], &[], None)
    }

    /// Permute axes: output axis `i` is input axis `perm[i]`.
    #[track_caller]
    pub fn transpose(&self, perm: &[usize]) -> Result<Tensor> {
        self.graph()
            .add_op(Op::Transpose(perm.to_vec()), &[self], &[], None)
    }

    /// Swap the last two axes.
    #[track_caller]
    pub fn t(&self) -> Result<Tensor> {
        let r = self.rank();
        if r < 2 {
            return Err(build_error(
                "transpose",
                self,
                BuildError::ShapeMismatch {
                    shapes: vec![self.shape().to_vec()],
                    expected: "rank >= 2".into(),
                },
            ));
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 1, r - 2);
        self.transpose(&perm)
    }

    /// Insert an axis of length 1 at `axis` (in `-(rank+1)..=rank`).
    #[track_caller]
    pub fn expand_dims(&self, axis: i64) -> Result<Tensor> {
        let axis = resolve_axis("expand_dims", self, axis, self.rank() + 1)?;
        let mut shape: Vec<i64> = self.shape().iter().map(|&d| d as i64).collect();
        shape.insert(axis, 1);
        self.reshape(&shape)
    }

    /// Remove the given axes, which must have length 1 (all length-1 axes when empty).
    #[track_caller]
    pub fn squeeze(&self, axes: &[i64]) -> Result<Tensor> {
        let axes: Vec<usize> = if axes.is_empty() {
            (0..self.rank()).filter(|&i| self.shape()[i] == 1).collect()
        } else {
            axes.iter()
                .map(|&a| resolve_axis("squeeze", self, a, self.rank()))
                .collect::<Result<_>>()?
        };
        if let Some(&a) = axes.iter().find(|&&a| self.shape()[a] != 1) {
            return Err(build_error(
                "squeeze",
                self,
                BuildError::ShapeMismatch {
                    shapes: vec![self.shape().to_vec()],
                    expected: format!("axis {a} to have length 1"),
                },
            ));
        }
        let shape: Vec<i64> = (0..self.rank())
            .filter(|i| !axes.contains(i))
            .map(|i| self.shape()[i] as i64)
            .collect();
        self.reshape(&shape)
    }

    /// Broadcast to `shape` (numpy rules).
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        self.graph()
            .add_op(Op::BroadcastTo(shape.to_vec()), &[self], &[], None)
    }

    /// Strided slice with ndarray's `s![]` syntax: `x.slice(s![1..3, ..;2])`; indexed axes
    /// (`s![1]`) are removed, `NewAxis` inserts one.
    #[track_caller]
    pub fn slice(&self, args: impl AsRef<SliceArgs>) -> Result<Tensor> {
        let r = resolve_slice("slice", self, args.as_ref())?;
        let sliced = self
            .graph()
            .add_op(Op::Slice(r.spec.clone()), &[self], &[], None)?;
        if sliced.shape() == r.out_shape.as_slice() {
            Ok(sliced)
        } else {
            sliced.reshape(&r.out_shape.iter().map(|&d| d as i64).collect::<Vec<_>>())
        }
    }

    /// A normalised strided slice (every axis given).
    #[track_caller]
    pub fn slice_spec(&self, spec: SliceSpec) -> Result<Tensor> {
        self.graph().add_op(Op::Slice(spec), &[self], &[], None)
    }

    /// Concatenate tensors along `axis`.
    #[track_caller]
    pub fn concat(tensors: &[&Tensor], axis: i64) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| GraphError::invalid("concat needs at least one tensor"))?;
        let axis = resolve_axis("concat", first, axis, first.rank())?;
        first
            .graph()
            .add_op(Op::Concat { axis }, tensors, &[], None)
    }

    /// Stack tensors of equal shape along a new axis.
    #[track_caller]
    pub fn stack(tensors: &[&Tensor], axis: i64) -> Result<Tensor> {
        let expanded = tensors
            .iter()
            .map(|t| t.expand_dims(axis))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = expanded.iter().collect();
        Tensor::concat(&refs, axis)
    }

    /// Split along `axis` into pieces of the given sizes (which must sum to the axis length).
    #[track_caller]
    pub fn split_sizes(&self, sizes: &[usize], axis: i64) -> Result<Vec<Tensor>> {
        let axis = resolve_axis("split", self, axis, self.rank())?;
        let total: usize = sizes.iter().sum();
        if total != self.shape()[axis] {
            return Err(build_error(
                "split",
                self,
                BuildError::ShapeMismatch {
                    shapes: vec![self.shape().to_vec()],
                    expected: format!("sizes {sizes:?} to sum to the length of axis {axis}"),
                },
            ));
        }
        let mut start = 0;
        let mut out = Vec::with_capacity(sizes.len());
        for &n in sizes {
            let mut spec = SliceSpec::full(self.shape());
            spec.dims[axis] = SliceDim {
                start: if n == 0 { 0 } else { start },
                step: 1,
                len: n,
            };
            out.push(self.slice_spec(spec)?);
            start += n;
        }
        Ok(out)
    }

    /// Split along `axis` into `n` equal pieces.
    #[track_caller]
    pub fn split(&self, n: usize, axis: i64) -> Result<Vec<Tensor>> {
        let a = resolve_axis("split", self, axis, self.rank())?;
        if n == 0 || !self.shape()[a].is_multiple_of(n) {
            return Err(build_error(
                "split",
                self,
                BuildError::ShapeMismatch {
                    shapes: vec![self.shape().to_vec()],
                    expected: format!("axis {a} to divide into {n} equal pieces"),
                },
            ));
        }
        self.split_sizes(&vec![self.shape()[a] / n; n], axis)
    }

    /// Pad with a constant: `(before, after)` per axis.
    #[track_caller]
    pub fn pad(&self, paddings: &[(usize, usize)], value: impl Into<Scalar>) -> Result<Tensor> {
        self.graph().add_op(
            Op::Pad {
                paddings: paddings.to_vec(),
                value: value.into(),
            },
            &[self],
            &[],
            None,
        )
    }

    /// Repeat `multiples[i]` times along axis `i`.
    #[track_caller]
    pub fn tile(&self, multiples: &[usize]) -> Result<Tensor> {
        self.graph()
            .add_op(Op::Tile(multiples.to_vec()), &[self], &[], None)
    }

    /// Rotate along `axis` by `shift` (`out[(i + shift) mod n] = x[i]`).
    #[track_caller]
    pub fn roll(&self, shift: i64, axis: i64) -> Result<Tensor> {
        let axis = resolve_axis("roll", self, axis, self.rank())?;
        self.graph()
            .add_op(Op::Roll { shift, axis }, &[self], &[], None)
    }
}
