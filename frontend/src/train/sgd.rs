//! Plain stochastic gradient descent.

use super::Optimizer;
use crate::Tensor;
use crate::error::Result;

/// Gradient descent: `θ ← θ − lr·g`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// The learning rate.
    pub lr: f64,
}

impl Sgd {
    /// SGD with learning rate `lr`.
    pub fn new(lr: f64) -> Sgd {
        Sgd { lr }
    }
}

impl Optimizer for Sgd {
    fn name(&self) -> &str {
        "SGD"
    }

    fn update_ops(&self, grads_and_vars: &[(Tensor, Tensor)]) -> Result<Vec<Tensor>> {
        grads_and_vars
            .iter()
            .map(|(grad, var)| var.assign((var - &(grad * self.lr)?)?))
            .collect()
    }
}
