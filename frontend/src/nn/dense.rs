//! The fully connected layer.

use super::Initializer;
use crate::Tensor;
use crate::dsl::build_error;
use crate::error::{BuildError, Result};

/// The nonlinearity applied by a layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    /// None (identity).
    #[default]
    Linear,
    /// `max(x, 0)`
    Relu,
    /// `tanh(x)`
    Tanh,
    /// `1/(1+e^−x)`
    Sigmoid,
    /// `ln(1+e^x)`
    Softplus,
    /// exact GELU
    Gelu,
    /// softmax over the last axis
    Softmax,
}

impl Activation {
    /// Apply the activation.
    #[track_caller]
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Linear => Ok(x.clone()),
            Activation::Relu => x.relu(),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Softplus => x.softplus(),
            Activation::Gelu => x.gelu(),
            Activation::Softmax => x.softmax(-1),
        }
    }
}

/// A dense layer `activation(x · W + b)` over the last axis of `x` (`[..., in]` →
/// `[..., units]`), creating the trainable variables `<name>/W` (`[in, units]`, from
/// `kernel_init`) and `<name>/b` (`[units]`, from `bias_init`) in the scope `name`, with the
/// dtype of `x`. The initializers' seeds derive from the graph seed.
#[track_caller]
pub fn dense(
    name: &str,
    x: &Tensor,
    units: usize,
    activation: Activation,
    kernel_init: &Initializer,
    bias_init: &Initializer,
) -> Result<Tensor> {
    if !x.dtype().is_float() {
        return Err(build_error(
            "dense",
            x,
            BuildError::DTypeMismatch {
                dtypes: vec![x.dtype()],
                expected: "a float input (f32 or f64)".into(),
                hint: Some("cast the input to f32 or f64 first".into()),
            },
        ));
    }
    if x.rank() == 0 {
        return Err(build_error(
            "dense",
            x,
            BuildError::ShapeMismatch {
                shapes: vec![vec![]],
                expected: "an input of rank >= 1 (features on the last axis)".into(),
            },
        ));
    }
    let g = x.graph();
    let _scope = g.scope(name);
    let inputs = x.shape()[x.rank() - 1];
    let w_init = kernel_init.build(g, &[inputs, units], x.dtype(), None)?;
    let w = g.variable("W", &w_init)?;
    let b_init = bias_init.build(g, &[units], x.dtype(), None)?;
    let b = g.variable("b", &b_init)?;
    let y = if x.rank() == 1 {
        x.expand_dims(0)?.matmul(&w)?.squeeze(&[0])?
    } else {
        x.matmul(&w)?
    };
    activation.apply(&(y + &b)?)
}
