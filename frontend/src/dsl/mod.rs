//! The Rust DSL: methods on [`Graph`](crate::Graph) that create sources and methods on
//! [`Tensor`](crate::Tensor) that apply ops. Every method checks shapes and dtypes when the
//! node is built and returns a [`Result`](crate::Result) whose error names the op, the node,
//! the operands and the caller's source line (`#[track_caller]`).

mod index;
mod layout;
mod linalg;
mod math;
mod nn;
mod operators;
mod sources;
mod state;
/// Variable initial values.
pub mod state_init {
    pub use super::state::Init;
}

pub use layout::SliceArgs;

use crate::Tensor;
use crate::dtype::Scalar;
use crate::error::{BuildError, GraphError, Result, SourceLoc};

/// An operand that is either a tensor or a scalar literal (which takes the other
/// operand's dtype).
#[derive(Clone, Debug)]
pub enum Operand {
    /// A tensor.
    Tensor(Tensor),
    /// A literal.
    Scalar(Scalar),
}

/// Conversion into an [`Operand`]: tensors (owned or borrowed) and Rust numbers/bools.
pub trait IntoOperand {
    /// Convert.
    fn into_operand(self) -> Operand;
}

impl IntoOperand for Tensor {
    fn into_operand(self) -> Operand {
        Operand::Tensor(self)
    }
}
impl IntoOperand for &Tensor {
    fn into_operand(self) -> Operand {
        Operand::Tensor(self.clone())
    }
}
macro_rules! scalar_operand {
    ($($t:ty),*) => {$(
        impl IntoOperand for $t {
            fn into_operand(self) -> Operand {
                Operand::Scalar(Scalar::from(self))
            }
        }
    )*};
}
scalar_operand!(f64, f32, i64, i32, bool);

/// Resolve a possibly negative axis against `rank`, or an error naming `op` and the tensor.
#[track_caller]
pub(crate) fn resolve_axis(op: &str, t: &Tensor, axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    if axis >= -r && axis < r {
        Ok(if axis < 0 {
            (axis + r) as usize
        } else {
            axis as usize
        })
    } else {
        Err(build_error(
            op,
            t,
            BuildError::AxisOutOfRange {
                axis,
                rank,
                shape: t.shape().to_vec(),
            },
        ))
    }
}

/// A build error for `op` applied to `t` at the caller's location.
#[track_caller]
pub(crate) fn build_error(op: &str, t: &Tensor, kind: BuildError) -> GraphError {
    GraphError::Build {
        op: op.to_string(),
        node: format!("{} applied to `{}`", op, t.name()),
        kind,
        location: Some(SourceLoc(std::panic::Location::caller())),
    }
}
