//! Optimizers as graph ops (TF1 style): [`Optimizer::minimize`] differentiates a loss with
//! [`gradients`](crate::gradients) and returns one train op — a `no_op` whose control
//! inputs are every assign of the step — so `session.run(&[], &[&train_op])` applies a whole
//! step. Slot variables (Adam's moments and step counter) are non-trainable variables under
//! the optimizer's scope (`Adam/...`, made unique: `Adam_1/...` for a second optimizer).
//!
//! Within one run every update is computed from the variables' values at the start of the
//! run (the `variable` nodes), so the order in which the assigns apply does not matter.
//!
//! ```
//! use flumen_frontend::{Graph, DType};
//! use flumen_frontend::train::{Adam, Optimizer};
//! let g = Graph::new();
//! let w = g.variable("w", ndarray::arr1(&[1.0f64, -2.0]))?;
//! let loss = w.square()?.sum_all()?;
//! let train = Adam::default().minimize(&loss, None)?;
//! assert_eq!(train.name(), "Adam/train");
//! assert!(g.get("Adam/w/m").is_some() && g.get("Adam/t").is_some());
//! # Ok::<(), flumen_frontend::GraphError>(())
//! ```

mod adam;
mod ema;
mod sgd;

pub use adam::Adam;
pub use ema::ema_update;
pub use sgd::Sgd;

use crate::error::{GraphError, Result};
use crate::op::Op;
use crate::{Graph, Tensor};

/// An optimizer: turns gradients into assigns of the variables.
pub trait Optimizer {
    /// The base name of the optimizer's scope (`"Adam"`, `"SGD"`).
    fn name(&self) -> &str;

    /// The assigns of one step for `(gradient, variable)` pairs, built inside the
    /// optimizer's (unique) scope. Every variable is a float `variable` node and its
    /// gradient has its type.
    fn update_ops(&self, grads_and_vars: &[(Tensor, Tensor)]) -> Result<Vec<Tensor>>;

    /// One train op applying the updates for `(gradient, variable)` pairs.
    fn apply_gradients(&self, grads_and_vars: &[(Tensor, Tensor)]) -> Result<Tensor> {
        let Some((_, first)) = grads_and_vars.first() else {
            return Err(GraphError::invalid(format!(
                "{}: no (gradient, variable) pairs to apply",
                self.name()
            )));
        };
        let g = first.graph().clone();
        for (grad, var) in grads_and_vars {
            check_variable(self.name(), &g, var)?;
            if grad.ty() != var.ty() || !g.same_graph(grad.graph()) {
                return Err(GraphError::invalid(format!(
                    "{}: the gradient `{}` ({}) does not match variable `{}` ({})",
                    self.name(),
                    grad.name(),
                    grad.ty(),
                    var.name(),
                    var.ty()
                )));
            }
        }
        let _scope = g.scope(&unique_scope(&g, self.name()));
        let updates = self.update_ops(grads_and_vars)?;
        let refs: Vec<&Tensor> = updates.iter().collect();
        g.group("train", &refs)
    }

    /// Differentiate `loss` with respect to `var_list` (default: every trainable variable of
    /// the loss's graph) and return one train op. Variables the loss does not depend on are
    /// left alone; it is an error when it depends on none of them.
    fn minimize(&self, loss: &Tensor, var_list: Option<&[&Tensor]>) -> Result<Tensor> {
        let g = loss.graph();
        let vars: Vec<Tensor> = match var_list {
            Some(v) => v.iter().map(|t| (*t).clone()).collect(),
            None => g.trainable_variables(),
        };
        for v in &vars {
            check_variable(self.name(), g, v)?;
        }
        let refs: Vec<&Tensor> = vars.iter().collect();
        let grads = crate::gradients(&[loss], &refs, None)?;
        let pairs: Vec<(Tensor, Tensor)> = grads
            .into_iter()
            .zip(vars)
            .filter_map(|(d, v)| d.map(|d| (d, v)))
            .collect();
        if pairs.is_empty() {
            return Err(GraphError::invalid(format!(
                "{}: the loss `{}` depends on none of the variables to train",
                self.name(),
                loss.name()
            )));
        }
        self.apply_gradients(&pairs)
    }
}

fn check_variable(optimizer: &str, g: &Graph, var: &Tensor) -> Result<()> {
    if !g.same_graph(var.graph()) {
        return Err(GraphError::invalid(format!(
            "{optimizer}: `{}` belongs to another graph than the loss",
            var.name()
        )));
    }
    if !matches!(var.op(), Op::Variable { .. }) || !var.dtype().is_float() {
        return Err(GraphError::invalid(format!(
            "{optimizer}: `{}` ({} {}) is not a float variable",
            var.name(),
            var.op().name(),
            var.ty()
        )));
    }
    Ok(())
}

/// `base` in the current scope, or `base_1`, `base_2`, ... when a node already uses it as
/// a name or scope.
pub(crate) fn unique_scope(g: &Graph, base: &str) -> String {
    let prefix = g.current_scope();
    let full = |b: &str| {
        if prefix.is_empty() {
            b.to_string()
        } else {
            format!("{prefix}/{b}")
        }
    };
    let taken = |b: &str| {
        let f = full(b);
        let under = format!("{f}/");
        g.with_def(|d| {
            d.nodes()
                .iter()
                .any(|n| n.name == f || n.name.starts_with(&under))
        })
    };
    if !taken(base) {
        return base.to_string();
    }
    (1..)
        .map(|i| format!("{base}_{i}"))
        .find(|b| !taken(b))
        .expect("some suffix is free")
}
