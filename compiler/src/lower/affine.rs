//! Affine index maps from a kernel's iteration space to a node's index space, and how
//! layout ops (broadcast, transpose, slice, unit-axis reshapes) transform them. A load from
//! a materialised buffer turns the map into an element offset and one stride per
//! iteration axis.

use flumen_frontend::op::SliceSpec;

/// `node_index[k] = base[k] + Σ_j coef[k][j] · iteration_index[j]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AffineMap {
    /// Constant term per node axis.
    pub base: Vec<i64>,
    /// Coefficients per node axis, one per iteration axis.
    pub coef: Vec<Vec<i64>>,
    /// Number of iteration axes.
    pub iter_rank: usize,
}

impl AffineMap {
    /// Node axis `k` = iteration axis `perm[k]` (a permutation or selection of iteration
    /// axes) over `iter_rank` iteration axes.
    pub fn select(perm: &[usize], iter_rank: usize) -> AffineMap {
        let coef = perm
            .iter()
            .map(|&j| {
                let mut row = vec![0; iter_rank];
                row[j] = 1;
                row
            })
            .collect();
        AffineMap {
            base: vec![0; perm.len()],
            coef,
            iter_rank,
        }
    }

    /// The identity over `rank` axes.
    pub fn identity(rank: usize) -> AffineMap {
        Self::select(&(0..rank).collect::<Vec<_>>(), rank)
    }

    fn zero_row(&self) -> Vec<i64> {
        vec![0; self.iter_rank]
    }

    /// Map for an operand of shape `input` broadcast (numpy rules) to this map's node shape
    /// `output`.
    pub fn broadcast_from(&self, input: &[usize], output: &[usize]) -> AffineMap {
        let lead = output.len() - input.len();
        let mut base = Vec::with_capacity(input.len());
        let mut coef = Vec::with_capacity(input.len());
        for (k, &d) in input.iter().enumerate() {
            if d == 1 && output[k + lead] != 1 {
                base.push(0);
                coef.push(self.zero_row());
            } else {
                base.push(self.base[k + lead]);
                coef.push(self.coef[k + lead].clone());
            }
        }
        AffineMap {
            base,
            coef,
            iter_rank: self.iter_rank,
        }
    }

    /// Map for the input of a transpose whose output axis `i` is input axis `perm[i]`.
    pub fn through_transpose(&self, perm: &[usize]) -> AffineMap {
        let mut base = vec![0; perm.len()];
        let mut coef = vec![self.zero_row(); perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            base[p] = self.base[i];
            coef[p] = self.coef[i].clone();
        }
        AffineMap {
            base,
            coef,
            iter_rank: self.iter_rank,
        }
    }

    /// Map for the input of a strided slice.
    pub fn through_slice(&self, spec: &SliceSpec) -> AffineMap {
        let mut out = self.clone();
        for (k, d) in spec.dims.iter().enumerate() {
            out.base[k] = d.start as i64 + d.step * self.base[k];
            out.coef[k] = self.coef[k].iter().map(|c| c * d.step).collect();
        }
        out
    }

    /// Map for the input of a reshape that only inserts or removes axes of length 1, or
    /// `None` for any other reshape.
    pub fn through_unit_reshape(&self, input: &[usize], output: &[usize]) -> Option<AffineMap> {
        let non_unit = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
        if non_unit(input) != non_unit(output) {
            return None;
        }
        let mut out_axes = output
            .iter()
            .enumerate()
            .filter(|(_, d)| **d != 1)
            .map(|(k, _)| k);
        let mut base = Vec::with_capacity(input.len());
        let mut coef = Vec::with_capacity(input.len());
        for &d in input {
            if d == 1 {
                base.push(0);
                coef.push(self.zero_row());
            } else {
                let k = out_axes.next()?;
                base.push(self.base[k]);
                coef.push(self.coef[k].clone());
            }
        }
        Some(AffineMap {
            base,
            coef,
            iter_rank: self.iter_rank,
        })
    }

    /// Element offset and per-iteration-axis strides of a row-major buffer of `shape`.
    pub fn to_strides(&self, shape: &[usize]) -> (i64, Vec<i64>) {
        let cs = contiguous_strides(shape);
        let offset = self.base.iter().zip(&cs).map(|(b, s)| b * s).sum();
        let strides = (0..self.iter_rank)
            .map(|j| self.coef.iter().zip(&cs).map(|(row, s)| row[j] * s).sum())
            .collect();
        (offset, strides)
    }
}

/// Row-major strides (in elements) of `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Vec<i64> {
    let mut s = vec![1i64; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1] as i64;
    }
    s
}
