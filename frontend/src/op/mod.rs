//! The op table: every op Flumen knows, declared once.
//!
//! [`Op`] is the single enum of primitive ops. Everything an op needs is reached from here
//! through exhaustive `match`es, so adding a variant makes the compiler list every place
//! that still needs a case:
//! - name and attributes (text IR, DOT): [`Op::name`], [`attrs`](crate::op::attrs);
//! - arity and the shape/dtype rule: [`Op::arity`], [`Op::infer`] (in [`infer`]);
//! - scalar semantics of elementwise ops: [`elementwise`];
//! - random numbers: [`random`];
//! - gradient rules: `flumen_frontend::autodiff`;
//! - evaluation: `flumen_runtime::interpreter` (the oracle); lowering: `flumen_compiler`.

pub mod attrs;
pub mod composite;
pub mod elementwise;
mod infer;
pub mod random;
pub mod slice;

pub use composite::Composite;
pub use elementwise::{BinaryKind, BinaryOp, DTypeClass, UnaryOp};
pub use random::Distribution;
pub use slice::{SliceDim, SliceSpec};

use crate::dtype::{DType, Scalar};
use crate::error::BuildError;
use crate::value::Value;

/// The static type of a node's output: dtype and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// Element type.
    pub dtype: DType,
    /// Static shape.
    pub shape: Vec<usize>,
}

impl TensorType {
    /// A new type.
    pub fn new(dtype: DType, shape: impl Into<Vec<usize>>) -> Self {
        TensorType {
            dtype,
            shape: shape.into(),
        }
    }

    /// Rank (number of axes).
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

impl std::fmt::Display for TensorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// Reductions over a set of axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Σ (empty: 0)
    Sum,
    /// arithmetic mean (floats only; empty: NaN)
    Mean,
    /// maximum, NaN-propagating (empty: −∞ or the dtype's minimum)
    Max,
    /// minimum, NaN-propagating (empty: +∞ or the dtype's maximum)
    Min,
    /// Π (empty: 1)
    Prod,
}

impl ReduceOp {
    /// Every reduction.
    pub const ALL: [ReduceOp; 5] = [
        ReduceOp::Sum,
        ReduceOp::Mean,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::Prod,
    ];

    /// The op name in the text IR.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "reduce_sum",
            ReduceOp::Mean => "reduce_mean",
            ReduceOp::Max => "reduce_max",
            ReduceOp::Min => "reduce_min",
            ReduceOp::Prod => "reduce_prod",
        }
    }
}

/// Index-of-extremum reductions over one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgReduceOp {
    /// index of the first maximum (NaN counts as the maximum)
    ArgMax,
    /// index of the first minimum (NaN counts as the minimum)
    ArgMin,
}

impl ArgReduceOp {
    /// The op name in the text IR.
    pub fn name(self) -> &'static str {
        match self {
            ArgReduceOp::ArgMax => "argmax",
            ArgReduceOp::ArgMin => "argmin",
        }
    }
}

/// How many data inputs an op takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Fixed(usize),
    /// At least this many.
    AtLeast(usize),
}

impl Arity {
    /// Whether `n` inputs are acceptable.
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Fixed(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        }
    }

    /// Description used in error messages.
    pub fn describe(self) -> String {
        match self {
            Arity::Fixed(k) => k.to_string(),
            Arity::AtLeast(k) => format!("at least {k}"),
        }
    }
}

/// Every primitive op. Attributes are typed fields of the variants.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A constant tensor. No inputs.
    Constant(Value),
    /// A value fed at run time. No inputs.
    Placeholder {
        /// Element type of the feed.
        dtype: DType,
        /// Exact shape of the feed.
        shape: Vec<usize>,
    },
    /// A mutable variable. Input 0 is its initial value, evaluated once when the session
    /// initialises the variable; the node's output is the variable's value at the start of
    /// the run (reads after an assign in the same run go through [`Op::Read`]).
    Variable {
        /// Whether `gradients`/optimizers treat it as a trainable parameter.
        trainable: bool,
    },
    /// The current value of the variable given as input 0, read where the node is scheduled:
    /// after its control inputs (use them to read after an assign).
    Read,
    /// `variable := value`; inputs (variable, value); outputs the new value.
    Assign,
    /// `variable[slice] := value`; inputs (variable, value); outputs the variable's new value.
    AssignSlice(SliceSpec),
    /// Random numbers (see [`random`]); no inputs.
    Random {
        /// The distribution.
        dist: Distribution,
        /// Output dtype.
        dtype: DType,
        /// Output shape.
        shape: Vec<usize>,
        /// Seed of the Philox stream.
        seed: u64,
    },
    /// Categorical samples from logits `[batch, classes]` → `[batch, num_samples]` indices.
    Categorical {
        /// Samples per row.
        num_samples: usize,
        /// Output dtype (i32 or i64).
        dtype: DType,
        /// Seed of the Philox stream.
        seed: u64,
    },
    /// Elementwise unary op.
    Unary(UnaryOp),
    /// Elementwise binary op with numpy broadcasting.
    Binary(BinaryOp),
    /// `cond ? a : b` with broadcasting of all three; inputs (cond: bool, a, b).
    Select,
    /// Convert to another dtype (see [`Value::cast`] for the rules).
    Cast(DType),
    /// Reduce over axes (sorted, distinct, non-negative).
    Reduce {
        /// Which reduction.
        op: ReduceOp,
        /// Reduced axes.
        axes: Vec<usize>,
        /// Keep reduced axes with length 1.
        keepdims: bool,
    },
    /// Index of the maximum/minimum along one axis (which is removed).
    ArgReduce {
        /// Which extremum.
        op: ArgReduceOp,
        /// The axis.
        axis: usize,
        /// Output dtype (i32 or i64).
        dtype: DType,
    },
    /// Cumulative sum along an axis.
    Cumsum {
        /// The axis.
        axis: usize,
        /// Exclude the current element.
        exclusive: bool,
        /// Sum from the end.
        reverse: bool,
    },
    /// Matrix product over the last two axes; leading (batch) axes broadcast.
    MatMul {
        /// Use the transpose of the last two axes of `a`.
        transpose_a: bool,
        /// Use the transpose of the last two axes of `b`.
        transpose_b: bool,
    },
    /// Solve `a · x = b` for `x` over the last two axes: `a` is `[.., n, n]`, `b` is
    /// `[.., n, k]` (batch axes broadcast as in [`Op::MatMul`]); LU factorisation with
    /// partial pivoting, computed in f64. A pivot that is exactly zero (a singular matrix)
    /// is a run-time error.
    Solve,
    /// The matrix exponential `e^a = Σ aᵏ/k!` of each `[n, n]` matrix in `[.., n, n]`:
    /// scaling and squaring with Padé approximants (Higham 2005), computed in f64.
    Expm,
    /// Same elements, new shape.
    Reshape(Vec<usize>),
    /// Permute axes: output axis `i` is input axis `perm[i]`.
    Transpose(Vec<usize>),
    /// Numpy-broadcast to a shape.
    BroadcastTo(Vec<usize>),
    /// Strided slice.
    Slice(SliceSpec),
    /// Concatenate along an axis.
    Concat {
        /// The axis.
        axis: usize,
    },
    /// Pad with a constant value: `(before, after)` per axis.
    Pad {
        /// Padding per axis.
        paddings: Vec<(usize, usize)>,
        /// The fill value.
        value: Scalar,
    },
    /// Repeat the tensor `multiples[i]` times along axis `i`.
    Tile(Vec<usize>),
    /// Rotate along an axis: `out[(i + shift) mod n] = in[i]`.
    Roll {
        /// The shift (any sign).
        shift: i64,
        /// The axis.
        axis: usize,
    },
    /// Gather slices of `params` along `axis` at integer `indices`; the first `batch_dims`
    /// axes of both are batch axes. Output shape:
    /// `params[..axis] ++ indices[batch_dims..] ++ params[axis+1..]`.
    Gather {
        /// Gathered axis of params.
        axis: usize,
        /// Number of leading batch axes.
        batch_dims: usize,
    },
    /// The adjoint of [`Op::Gather`]: inputs (updates, indices) where updates has the shape
    /// gather would output; sums updates into a zero tensor whose `axis` has length `dim`.
    /// With `axis = batch_dims = 0` it is an unsorted segment sum.
    ScatterAdd {
        /// Scattered axis of the output.
        axis: usize,
        /// Number of leading batch axes.
        batch_dims: usize,
        /// Length of the output's `axis`.
        dim: usize,
    },
    /// Indices (i64) of the `k` largest entries along the last axis, largest first,
    /// ties broken toward the lower index.
    TopK {
        /// How many.
        k: usize,
    },
    /// Indices (i64) that sort along an axis (stable; NaN last when ascending).
    ArgSort {
        /// The axis.
        axis: usize,
        /// Largest first.
        descending: bool,
    },
    /// Does nothing; groups its control inputs (a train op). Outputs `true`.
    NoOp,
    /// A composite op, built from primitives (see [`composite`]).
    Composite(Composite),
}

impl Op {
    /// The op's name in the text IR and in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Constant(_) => "constant",
            Op::Placeholder { .. } => "placeholder",
            Op::Variable { .. } => "variable",
            Op::Read => "read",
            Op::Assign => "assign",
            Op::AssignSlice(_) => "assign_slice",
            Op::Random { dist, .. } => dist.name(),
            Op::Categorical { .. } => "categorical",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Select => "select",
            Op::Cast(_) => "cast",
            Op::Reduce { op, .. } => op.name(),
            Op::ArgReduce { op, .. } => op.name(),
            Op::Cumsum { .. } => "cumsum",
            Op::MatMul { .. } => "matmul",
            Op::Solve => "solve",
            Op::Expm => "expm",
            Op::Reshape(_) => "reshape",
            Op::Transpose(_) => "transpose",
            Op::BroadcastTo(_) => "broadcast_to",
            Op::Slice(_) => "slice",
            Op::Concat { .. } => "concat",
            Op::Pad { .. } => "pad",
            Op::Tile(_) => "tile",
            Op::Roll { .. } => "roll",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::TopK { .. } => "top_k",
            Op::ArgSort { .. } => "argsort",
            Op::NoOp => "no_op",
            Op::Composite(c) => c.name(),
        }
    }

    /// How many data inputs the op takes.
    pub fn arity(&self) -> Arity {
        use Arity::*;
        match self {
            Op::Constant(_) | Op::Placeholder { .. } | Op::Random { .. } | Op::NoOp => Fixed(0),
            Op::Variable { .. } | Op::Read | Op::Categorical { .. } => Fixed(1),
            Op::Unary(_) | Op::Cast(_) | Op::Reduce { .. } | Op::ArgReduce { .. } => Fixed(1),
            Op::Cumsum { .. } | Op::Reshape(_) | Op::Transpose(_) | Op::BroadcastTo(_) => Fixed(1),
            Op::Slice(_) | Op::Pad { .. } | Op::Tile(_) | Op::Roll { .. } => Fixed(1),
            Op::TopK { .. } | Op::ArgSort { .. } | Op::Expm => Fixed(1),
            Op::Assign | Op::AssignSlice(_) | Op::Binary(_) | Op::MatMul { .. } => Fixed(2),
            Op::Gather { .. } | Op::ScatterAdd { .. } | Op::Solve => Fixed(2),
            Op::Select => Fixed(3),
            Op::Concat { .. } => AtLeast(1),
            Op::Composite(c) => c.arity(),
        }
    }

    /// Whether the op reads or writes session state or draws random numbers, so it must
    /// never be folded, deduplicated or removed as dead code while reachable.
    pub fn is_stateful(&self) -> bool {
        matches!(
            self,
            Op::Variable { .. }
                | Op::Read
                | Op::Assign
                | Op::AssignSlice(_)
                | Op::Random { .. }
                | Op::Categorical { .. }
                | Op::Placeholder { .. }
        ) || matches!(self, Op::Composite(c) if c.is_stateful())
    }

    /// Whether the op writes a variable (its input 0).
    pub fn is_assign(&self) -> bool {
        matches!(self, Op::Assign | Op::AssignSlice(_))
    }

    /// The shape/dtype rule: the output type for inputs of the given types, or what is wrong.
    pub fn infer(&self, inputs: &[TensorType]) -> Result<TensorType, BuildError> {
        if !self.arity().accepts(inputs.len()) {
            return Err(BuildError::Arity {
                got: inputs.len(),
                expected: self.arity().describe(),
            });
        }
        let out = infer::infer(self, inputs)?;
        infer::checked_numel(&out.shape)?;
        Ok(out)
    }
}

/// Numpy broadcasting of two shapes, or `None` when incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}
