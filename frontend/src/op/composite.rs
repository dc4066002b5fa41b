//! Composite ops: ops defined by a function that builds them from primitives.
//!
//! A composite is a node in the graph (so the compiler, the dumps and the gradient code can
//! see it), declared here once: its name, arity, attributes and its `build` function. Its
//! shape/dtype rule is derived by building it on a scratch graph; the interpreter evaluates
//! it by building it; the `canonicalize` pass replaces it by what `build` makes; its gradient
//! is the gradient of that expansion unless `autodiff` declares a dedicated rule.

use super::Arity;
use super::attrs::AttrValue;
use crate::Tensor;
use crate::error::Result;

/// Every composite op.
#[derive(Clone, Debug, PartialEq)]
pub enum Composite {
    /// `exp(x - max(x)) / Σ exp(x - max(x))` along `axis`.
    Softmax {
        /// The normalised axis.
        axis: usize,
    },
}

impl Composite {
    /// The op name in the text IR.
    pub fn name(&self) -> &'static str {
        match self {
            Composite::Softmax { .. } => "softmax",
        }
    }

    /// How many data inputs it takes.
    pub fn arity(&self) -> Arity {
        match self {
            Composite::Softmax { .. } => Arity::Fixed(1),
        }
    }

    /// Whether its expansion contains stateful (random) ops.
    pub fn is_stateful(&self) -> bool {
        match self {
            Composite::Softmax { .. } => false,
        }
    }

    /// Its attributes by name (see [`attrs`](super::attrs)).
    pub fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        match self {
            Composite::Softmax { axis } => vec![("axis", AttrValue::Int(*axis as i64))],
        }
    }

    /// Rebuild from a text-IR name and attributes; `None` when `name` is not a composite.
    pub(crate) fn from_attrs(
        name: &str,
        take: &mut dyn FnMut(&str) -> Result<AttrValue, String>,
    ) -> Option<Result<Composite, String>> {
        let int = |v: AttrValue, key: &str| match v {
            AttrValue::Int(i) if i >= 0 => Ok(i as usize),
            other => Err(format!(
                "{name}: attribute `{key}` must be a non-negative integer, got {other:?}"
            )),
        };
        Some(match name {
            "softmax" => take("axis")
                .and_then(|v| int(v, "axis"))
                .map(|axis| Composite::Softmax { axis }),
            _ => return None,
        })
    }

    /// Build the composite from primitives applied to `inputs` (in their graph).
    pub fn build(&self, inputs: &[Tensor]) -> Result<Tensor> {
        match self {
            Composite::Softmax { axis } => {
                let x = &inputs[0];
                let a = *axis as i64;
                let shifted = (x - &x.max(&[a], true)?.stop_gradient()?)?;
                let e = shifted.exp()?;
                &e / &e.sum(&[a], true)?
            }
        }
    }
}
