//! Linear-algebra functions of (batched) matrices: `solve` and the matrix exponential `expm`.

use crate::Tensor;
use crate::error::Result;
use crate::op::{Op, SliceDim, SliceSpec};

impl Tensor {
    /// `x` with `self · x = b` for each matrix: `self` is `[.., n, n]`, `b` is `[.., n, k]`
    /// (batch axes broadcast; use `expand_dims(-1)` for a vector right-hand side), f32 or
    /// f64. LU with partial pivoting; a singular matrix (a pivot that is exactly zero) is an
    /// error when the graph runs.
    #[track_caller]
    pub fn solve(&self, b: &Tensor) -> Result<Tensor> {
        self.graph().add_op(Op::Solve, &[self, b], &[], None)
    }

    /// The matrix exponential `e^self = Σ selfᵏ/k!` of each `[n, n]` matrix of `[.., n, n]`
    /// (f32 or f64), by scaling and squaring with Padé approximants (Higham 2005).
    #[track_caller]
    pub fn expm(&self) -> Result<Tensor> {
        self.graph().add_op(Op::Expm, &[self], &[], None)
    }

    /// The transpose of the last two axes (`[.., m, n]` → `[.., n, m]`).
    #[track_caller]
    pub fn matrix_transpose(&self) -> Result<Tensor> {
        let r = self.rank();
        if r < 2 {
            return Err(crate::GraphError::invalid(format!(
                "matrix_transpose needs a tensor of rank >= 2, got shape {:?}",
                self.shape()
            )));
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        self.transpose(&perm)
    }

    /// The block `[.., rows, cols]` of the last two axes (leading axes kept whole).
    #[track_caller]
    pub(crate) fn matrix_block(
        &self,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
    ) -> Result<Tensor> {
        let mut spec = SliceSpec::full(self.shape());
        let r = self.rank();
        spec.dims[r - 2] = SliceDim {
            start: rows.start,
            step: 1,
            len: rows.len(),
        };
        spec.dims[r - 1] = SliceDim {
            start: cols.start,
            step: 1,
            len: cols.len(),
        };
        self.slice_spec(spec)
    }
}
