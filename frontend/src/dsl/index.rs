//! Indexing ops: gather, scatter-add / segment sums, top-k, sorting, one-hot and
//! categorical sampling.

use super::{build_error, resolve_axis};
use crate::Tensor;
use crate::dtype::DType;
use crate::error::{BuildError, Result};
use crate::op::{BinaryOp, Op};

impl Tensor {
    /// Gather slices along `axis` at integer `indices`; the first `batch_dims` axes of both
    /// are batch axes (TF's `gather(params, indices, axis, batch_dims)`).
    #[track_caller]
    pub fn gather(&self, indices: &Tensor, axis: i64, batch_dims: usize) -> Result<Tensor> {
        let axis = resolve_axis("gather", self, axis, self.rank())?;
        self.graph()
            .add_op(Op::Gather { axis, batch_dims }, &[self, indices], &[], None)
    }

    /// The adjoint of [`Tensor::gather`]: sum `self` (shaped like gather's output) into a
    /// zero tensor whose `axis` has length `dim`.
    #[track_caller]
    pub fn scatter_add(
        &self,
        indices: &Tensor,
        axis: usize,
        batch_dims: usize,
        dim: usize,
    ) -> Result<Tensor> {
        self.graph().add_op(
            Op::ScatterAdd {
                axis,
                batch_dims,
                dim,
            },
            &[self, indices],
            &[],
            None,
        )
    }

    /// `out[s] = Σ_{i: ids[i] = s} self[i]` for `s < num_segments` (ids out of range are an
    /// error at run time).
    #[track_caller]
    pub fn unsorted_segment_sum(
        &self,
        segment_ids: &Tensor,
        num_segments: usize,
    ) -> Result<Tensor> {
        self.scatter_add(segment_ids, 0, 0, num_segments)
    }

    /// The `k` largest values along the last axis and their indices (i64), largest first.
    #[track_caller]
    pub fn top_k(&self, k: usize) -> Result<(Tensor, Tensor)> {
        let idx = self.graph().add_op(Op::TopK { k }, &[self], &[], None)?;
        let values = self.take_along_last_axis(&idx)?;
        Ok((values, idx))
    }

    /// `self[..., idx[..., j]]`: gather along the last axis with all leading axes as batch.
    #[track_caller]
    pub fn take_along_last_axis(&self, idx: &Tensor) -> Result<Tensor> {
        let r = self.rank();
        if r == 0 {
            return Err(build_error(
                "gather",
                self,
                BuildError::ShapeMismatch {
                    shapes: vec![self.shape().to_vec()],
                    expected: "rank >= 1".into(),
                },
            ));
        }
        self.gather(idx, (r - 1) as i64, r - 1)
    }

    /// Indices (i64) that sort along `axis` (stable).
    #[track_caller]
    pub fn argsort(&self, axis: i64, descending: bool) -> Result<Tensor> {
        let axis = resolve_axis("argsort", self, axis, self.rank())?;
        self.graph()
            .add_op(Op::ArgSort { axis, descending }, &[self], &[], None)
    }

    /// Sorted values along the last axis.
    #[track_caller]
    pub fn sort(&self, descending: bool) -> Result<Tensor> {
        let idx = self.argsort(-1, descending)?;
        self.take_along_last_axis(&idx)
    }

    /// One-hot encoding of integer class ids: a new last axis of length `depth`, 1 at the
    /// id and 0 elsewhere, of `dtype` (ids out of range give an all-zero row).
    #[track_caller]
    pub fn one_hot(&self, depth: usize, dtype: DType) -> Result<Tensor> {
        if !self.dtype().is_int() {
            return Err(build_error(
                "one_hot",
                self,
                BuildError::DTypeMismatch {
                    dtypes: vec![self.dtype()],
                    expected: "integer class ids".into(),
                    hint: Some("cast the ids to i32 or i64".into()),
                },
            ));
        }
        let g = self.graph();
        let classes = g.arange(depth, self.dtype())?;
        self.expand_dims(-1)?
            .binary(BinaryOp::Equal, &classes)?
            .cast(dtype)
    }

    /// Draw `num_samples` class ids per row from logits `[batch, classes]`.
    #[track_caller]
    pub fn categorical(&self, num_samples: usize, seed: Option<u64>) -> Result<Tensor> {
        let seed = seed.unwrap_or_else(|| self.graph().next_seed());
        self.graph().add_op(
            Op::Categorical {
                num_samples,
                dtype: DType::I64,
                seed,
            },
            &[self],
            &[],
            None,
        )
    }
}
