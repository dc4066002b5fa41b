//! Variables and their updates: creation with an initial value (an array or an
//! initializer subgraph), assign, slice-assign and ordered reads.

use super::{IntoOperand, build_error, layout::resolve_slice};
use crate::error::{BuildError, Result};
use crate::op::Op;
use crate::value::Value;
use crate::{Graph, SliceArgs, Tensor};

/// A variable's initial value: a concrete array or a tensor (typically a seeded random op)
/// evaluated once when the session initialises the variable.
pub enum Init {
    /// A concrete value.
    Value(Value),
    /// An initializer subgraph.
    Tensor(Tensor),
}

impl From<Value> for Init {
    fn from(v: Value) -> Init {
        Init::Value(v)
    }
}
impl From<Tensor> for Init {
    fn from(t: Tensor) -> Init {
        Init::Tensor(t)
    }
}
impl From<&Tensor> for Init {
    fn from(t: &Tensor) -> Init {
        Init::Tensor(t.clone())
    }
}
impl<T: crate::value::Element, D: ndarray::Dimension> From<ndarray::Array<T, D>> for Init {
    fn from(a: ndarray::Array<T, D>) -> Init {
        Init::Value(T::wrap(a.into_dyn()))
    }
}

impl Graph {
    /// A trainable variable named `name` (in the current scope).
    #[track_caller]
    pub fn variable(&self, name: &str, init: impl Into<Init>) -> Result<Tensor> {
        self.variable_with(name, init, true)
    }

    /// A variable, trainable or not (optimizer slots, step counters, EMA copies are not).
    #[track_caller]
    pub fn variable_with(
        &self,
        name: &str,
        init: impl Into<Init>,
        trainable: bool,
    ) -> Result<Tensor> {
        let scope = self.current_scope();
        let full = if scope.is_empty() {
            name.to_string()
        } else {
            format!("{scope}/{name}")
        };
        if self.get(&full).is_some() {
            return Err(crate::GraphError::Build {
                op: "variable".into(),
                node: full.clone(),
                kind: crate::BuildError::Name(format!(
                    "the name `{full}` is already taken in this graph"
                )),
                location: Some(crate::error::SourceLoc(std::panic::Location::caller())),
            });
        }
        let init = match init.into() {
            Init::Tensor(t) => t,
            Init::Value(v) => self.constant_named(&format!("{name}/initial_value"), v)?,
        };
        self.add_op(Op::Variable { trainable }, &[&init], &[], Some(name))
    }
}

impl Tensor {
    #[track_caller]
    fn require_variable(&self, op: &str) -> Result<()> {
        if matches!(self.op(), Op::Variable { .. }) {
            Ok(())
        } else {
            Err(build_error(
                op,
                self,
                BuildError::Attribute(format!(
                    "`{}` is a {} node, not a variable",
                    self.name(),
                    self.op().name()
                )),
            ))
        }
    }

    /// `self := value` (self must be a variable). Returns the new value; fetch it or group it
    /// into a train op to run the update.
    #[track_caller]
    pub fn assign(&self, value: impl IntoOperand) -> Result<Tensor> {
        self.require_variable("assign")?;
        let v = self.operand("assign", value)?;
        let v = if v.shape().is_empty() && !self.shape().is_empty() {
            v.broadcast_to(self.shape())?
        } else {
            v
        };
        self.graph().add_op(Op::Assign, &[self, &v], &[], None)
    }

    /// `self += delta`.
    #[track_caller]
    pub fn assign_add(&self, delta: impl IntoOperand) -> Result<Tensor> {
        let sum = self.add(delta)?;
        self.assign(&sum)
    }

    /// `self[args] := value` with ndarray's `s![]` syntax (TF's `b[6:9].assign(...)`); a
    /// scalar or lower-rank value broadcasts to the slice. Returns the variable's new value.
    #[track_caller]
    pub fn slice_assign(
        &self,
        args: impl AsRef<SliceArgs>,
        value: impl IntoOperand,
    ) -> Result<Tensor> {
        self.require_variable("assign_slice")?;
        let r = resolve_slice("assign_slice", self, args.as_ref())?;
        let v = self.operand("assign_slice", value)?;
        let v = if v.shape() == r.out_shape.as_slice() {
            v
        } else {
            v.broadcast_to(&r.out_shape)?
        };
        let spec_shape: Vec<i64> = r.spec.out_shape().iter().map(|&d| d as i64).collect();
        let v = if v.shape() == r.spec.out_shape().as_slice() {
            v
        } else {
            v.reshape(&spec_shape)?
        };
        self.graph()
            .add_op(Op::AssignSlice(r.spec), &[self, &v], &[], None)
    }

    /// The variable's current value, read after every node in `after` has run.
    #[track_caller]
    pub fn read_after(&self, after: &[&Tensor]) -> Result<Tensor> {
        self.require_variable("read")?;
        self.graph().add_op(Op::Read, &[self], after, None)
    }
}
