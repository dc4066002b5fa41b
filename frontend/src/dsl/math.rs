//! Elementwise math, comparisons, casts, reductions and matrix products.

use super::{IntoOperand, Operand, build_error, resolve_axis};
use crate::Tensor;
use crate::dtype::{DType, Scalar};
use crate::error::{BuildError, Result};
use crate::op::{ArgReduceOp, BinaryOp, Op, ReduceOp, UnaryOp};

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {$(
        $(#[$doc])*
        #[track_caller]
        pub fn $name(&self) -> Result<Tensor> {
            self.unary(UnaryOp::$op)
        }
    )*};
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident;)*) => {$(
        $(#[$doc])*
        #[track_caller]
        pub fn $name(&self, other: impl IntoOperand) -> Result<Tensor> {
            self.binary(BinaryOp::$op, other)
        }
    )*};
}

impl Tensor {
    /// Apply a unary op.
    #[track_caller]
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        self.graph().add_op(Op::Unary(op), &[self], &[], None)
    }

    /// Turn an operand into a tensor; a scalar literal becomes a constant of `self`'s dtype.
    #[track_caller]
    pub fn operand(&self, op: &str, other: impl IntoOperand) -> Result<Tensor> {
        match other.into_operand() {
            Operand::Tensor(t) => Ok(t),
            Operand::Scalar(s) => self.literal(op, s),
        }
    }

    #[track_caller]
    fn literal(&self, op: &str, s: Scalar) -> Result<Tensor> {
        if !s.fits(self.dtype()) {
            return Err(build_error(
                op,
                self,
                BuildError::DTypeMismatch {
                    dtypes: vec![self.dtype()],
                    expected: format!("a literal representable in {}, got {s:?}", self.dtype()),
                    hint: Some(format!("cast `{}` to a float dtype first", self.name())),
                },
            ));
        }
        self.graph().scalar(s, self.dtype())
    }

    /// Apply a binary op; a scalar operand takes this tensor's dtype.
    #[track_caller]
    pub fn binary(&self, op: BinaryOp, other: impl IntoOperand) -> Result<Tensor> {
        let other = self.operand(op.name(), other)?;
        self.graph()
            .add_op(Op::Binary(op), &[self, &other], &[], None)
    }

    /// Apply a binary op with the literal on the left (`2 - x`).
    #[track_caller]
    pub fn binary_rev(&self, op: BinaryOp, lhs: impl Into<Scalar>) -> Result<Tensor> {
        let lhs = self.literal(op.name(), lhs.into())?;
        self.graph()
            .add_op(Op::Binary(op), &[&lhs, self], &[], None)
    }

    unary_methods! {
        /// `-x`
        neg => Neg;
        /// `|x|`
        abs => Abs;
        /// sign of x
        sign => Sign;
        /// `e^x`
        exp => Exp;
        /// natural log
        log => Log;
        /// `ln(1+x)`
        log1p => Log1p;
        /// `√x`
        sqrt => Sqrt;
        /// `1/√x`
        rsqrt => Rsqrt;
        /// `x²`
        square => Square;
        /// `1/x`
        reciprocal => Reciprocal;
        /// sine
        sin => Sin;
        /// cosine
        cos => Cos;
        /// tanh
        tanh => Tanh;
        /// logistic sigmoid
        sigmoid => Sigmoid;
        /// `max(x, 0)`
        relu => Relu;
        /// `ln(1+e^x)`
        softplus => Softplus;
        /// GELU (exact, erf-based)
        gelu => Gelu;
        /// error function
        erf => Erf;
        /// floor
        floor => Floor;
        /// ceil
        ceil => Ceil;
        /// round half to even
        round => Round;
        /// boolean not
        logical_not => LogicalNot;
        /// identity (a new node with the same value)
        identity => Identity;
        /// identity whose gradient is zero
        stop_gradient => StopGradient;
    }

    binary_methods! {
        /// `a + b`
        add => Add;
        /// `a - b`
        sub => Sub;
        /// `a * b`
        mul => Mul;
        /// `a / b`
        div => Div;
        /// `a ^ b`
        pow => Pow;
        /// elementwise maximum
        maximum => Maximum;
        /// elementwise minimum
        minimum => Minimum;
        /// floor modulo
        modulo => Mod;
        /// `a == b`
        equal => Equal;
        /// `a != b`
        not_equal => NotEqual;
        /// `a < b`
        less => Less;
        /// `a <= b`
        less_equal => LessEqual;
        /// `a > b`
        greater => Greater;
        /// `a >= b`
        greater_equal => GreaterEqual;
        /// boolean and
        logical_and => LogicalAnd;
        /// boolean or
        logical_or => LogicalOr;
    }

    /// Clamp into `[lo, hi]`.
    #[track_caller]
    pub fn clip(&self, lo: impl IntoOperand, hi: impl IntoOperand) -> Result<Tensor> {
        self.maximum(lo)?.minimum(hi)
    }

    /// `self ? a : b` elementwise, with broadcasting; `self` must be bool.
    #[track_caller]
    pub fn select(&self, a: impl IntoOperand, b: impl IntoOperand) -> Result<Tensor> {
        let (a, b) = match (a.into_operand(), b.into_operand()) {
            (Operand::Tensor(a), Operand::Tensor(b)) => (a, b),
            (Operand::Tensor(a), Operand::Scalar(s)) => {
                let b = a.literal("select", s)?;
                (a, b)
            }
            (Operand::Scalar(s), Operand::Tensor(b)) => (b.literal("select", s)?, b),
            (Operand::Scalar(_), Operand::Scalar(_)) => {
                return Err(build_error(
                    "select",
                    self,
                    BuildError::Attribute(
                        "at least one branch must be a tensor (its dtype is used)".into(),
                    ),
                ));
            }
        };
        self.graph().add_op(Op::Select, &[self, &a, &b], &[], None)
    }

    /// Convert to another dtype (a no-op node is still created when equal).
    #[track_caller]
    pub fn cast(&self, dtype: DType) -> Result<Tensor> {
        self.graph().add_op(Op::Cast(dtype), &[self], &[], None)
    }

    #[track_caller]
    fn reduce(&self, op: ReduceOp, axes: &[i64], keepdims: bool) -> Result<Tensor> {
        let mut ax = axes
            .iter()
            .map(|&a| resolve_axis(op.name(), self, a, self.rank()))
            .collect::<Result<Vec<_>>>()?;
        ax.sort_unstable();
        if ax.windows(2).any(|w| w[0] == w[1]) {
            return Err(build_error(
                op.name(),
                self,
                BuildError::Attribute(format!("axis listed twice in {axes:?}")),
            ));
        }
        self.graph().add_op(
            Op::Reduce {
                op,
                axes: ax,
                keepdims,
            },
            &[self],
            &[],
            None,
        )
    }

    fn all_axes(&self) -> Vec<i64> {
        (0..self.rank() as i64).collect()
    }

    /// Sum over `axes` (negative axes count from the end).
    #[track_caller]
    pub fn sum(&self, axes: &[i64], keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, axes, keepdims)
    }
    /// Mean over `axes`.
    #[track_caller]
    pub fn mean(&self, axes: &[i64], keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Mean, axes, keepdims)
    }
    /// Maximum over `axes`.
    #[track_caller]
    pub fn max(&self, axes: &[i64], keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Max, axes, keepdims)
    }
    /// Minimum over `axes`.
    #[track_caller]
    pub fn min(&self, axes: &[i64], keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Min, axes, keepdims)
    }
    /// Product over `axes`.
    #[track_caller]
    pub fn prod(&self, axes: &[i64], keepdims: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Prod, axes, keepdims)
    }
    /// Sum of all elements (a scalar).
    #[track_caller]
    pub fn sum_all(&self) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, &self.all_axes(), false)
    }
    /// Mean of all elements (a scalar).
    #[track_caller]
    pub fn mean_all(&self) -> Result<Tensor> {
        self.reduce(ReduceOp::Mean, &self.all_axes(), false)
    }

    #[track_caller]
    fn arg_reduce(&self, op: ArgReduceOp, axis: i64) -> Result<Tensor> {
        let axis = resolve_axis(op.name(), self, axis, self.rank())?;
        self.graph().add_op(
            Op::ArgReduce {
                op,
                axis,
                dtype: DType::I64,
            },
            &[self],
            &[],
            None,
        )
    }

    /// Index (i64) of the first maximum along `axis`.
    #[track_caller]
    pub fn argmax(&self, axis: i64) -> Result<Tensor> {
        self.arg_reduce(ArgReduceOp::ArgMax, axis)
    }

    /// Index (i64) of the first minimum along `axis`.
    #[track_caller]
    pub fn argmin(&self, axis: i64) -> Result<Tensor> {
        self.arg_reduce(ArgReduceOp::ArgMin, axis)
    }

    /// Cumulative sum along `axis`.
    #[track_caller]
    pub fn cumsum(&self, axis: i64, exclusive: bool, reverse: bool) -> Result<Tensor> {
        let axis = resolve_axis("cumsum", self, axis, self.rank())?;
        self.graph().add_op(
            Op::Cumsum {
                axis,
                exclusive,
                reverse,
            },
            &[self],
            &[],
            None,
        )
    }

    /// Matrix product `self · b` over the last two axes (batch axes broadcast).
    #[track_caller]
    pub fn matmul(&self, b: &Tensor) -> Result<Tensor> {
        self.matmul_t(b, false, false)
    }

    /// Matrix product with either operand transposed.
    #[track_caller]
    pub fn matmul_t(&self, b: &Tensor, transpose_a: bool, transpose_b: bool) -> Result<Tensor> {
        self.graph().add_op(
            Op::MatMul {
                transpose_a,
                transpose_b,
            },
            &[self, b],
            &[],
            None,
        )
    }
}
