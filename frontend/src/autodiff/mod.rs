//! Symbolic reverse-mode differentiation (TF1's `tf.gradients`): [`gradients`] adds the
//! backward subgraph to the forward graph, under the name scope `gradients/`, and returns
//! tensors that evaluate the derivatives in the same session run as the forward pass.
//!
//! ```
//! use flumen_frontend::{Graph, DType, gradients};
//! let g = Graph::new();
//! let x = g.placeholder("x", DType::F64, &[3])?;
//! let y = ((&x * &x)? + &x)?.sum_all()?; // dy/dx = 2x + 1: both paths are summed
//! let dx = gradients(&[&y], &[&x], None)?;
//! assert_eq!(dx[0].as_ref().unwrap().shape(), &[3]);
//! # Ok::<(), flumen_frontend::GraphError>(())
//! ```
//!
//! Semantics:
//! - `ys` may be non-scalar: the result is the gradient of `Σ_i Σ grad_ys[i] · ys[i]`, with
//!   `grad_ys` defaulting to ones (so a non-scalar `y` is differentiated as `sum(y)`).
//! - Contributions along several paths are summed; broadcasting in the forward pass is
//!   undone by summing over the broadcast axes and reshaping.
//! - Only float tensors carry gradients: integer and bool tensors (indices, masks, casts to
//!   integers) stop the flow, as does [`Tensor::stop_gradient`](crate::Tensor::stop_gradient).
//! - A variable is a leaf: its gradient is what flows into the `variable` node (through
//!   its uses and `read`s); its initializer is never differentiated. `assign`s, random ops,
//!   comparisons, `argmax`, `top_k`/`argsort` indices and piecewise-constant functions
//!   (`sign`, `floor`, `ceil`, `round`) have no gradient.
//! - **Unconnected `xs`.** An `x` that no `y` depends on through a differentiable path —
//!   including an integer or bool `x`, or one cut off by `stop_gradient` — gets `None` from
//!   [`gradients`] (TF1's default). [`gradients_with`]`(.., UnconnectedGradients::Zero)` and
//!   [`gradients_or_zeros`] give it a zero constant of its dtype and shape instead.
//!
//!
//! Conventions at non-differentiable points (chosen to match TF where it has one):
//! - `reduce_max`/`reduce_min` send the gradient to every position equal to the extremum,
//!   split evenly among ties (what central differences give);
//! - binary `maximum`/`minimum` send it to the selected operand, to `a` on ties (the forward
//!   op returns `a` then); `select` sends it to the chosen branch, never to the condition;
//! - `relu` and `abs` have gradient 0 at 0; `pow`'s gradient with respect to the exponent
//!   is taken as 0 where the base is `<= 0`;
//! - `reduce_prod` is exact with zeros (each element gets the product of the others).
//!
//! Each op's rule is one arm of the exhaustive `match` in `rules.rs`; composites use a
//! dedicated rule where one is numerically better (softmax, log-softmax, the softmax
//! cross-entropies) and otherwise the gradient of their expansion (`Composite::build`).

mod composite;
mod elementwise;
mod layout;
mod linalg;
mod rules;

use crate::error::{GraphError, Result};
use crate::graph::NodeId;
use crate::{Graph, Tensor};

/// What an `x` that the `ys` do not depend on (differentiably) gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UnconnectedGradients {
    /// `None` (TF1's default).
    #[default]
    None,
    /// A zero constant of the `x`'s dtype and shape.
    Zero,
}

/// The gradients of `Σ_i Σ grad_ys[i] · ys[i]` with respect to each of `xs`, built in the
/// graph of the tensors under the name scope `gradients/`. `grad_ys` defaults to ones; each
/// must have its `y`'s dtype and shape. `ys` must be float tensors. An `x` the `ys` do not
/// depend on gets `None` (see the [module docs](self) and [`gradients_with`]).
#[track_caller]
pub fn gradients(
    ys: &[&Tensor],
    xs: &[&Tensor],
    grad_ys: Option<&[&Tensor]>,
) -> Result<Vec<Option<Tensor>>> {
    gradients_with(ys, xs, grad_ys, UnconnectedGradients::None)
}

/// Like [`gradients`], but unconnected `xs` get zeros instead of `None`, so every entry is
/// a tensor.
#[track_caller]
pub fn gradients_or_zeros(
    ys: &[&Tensor],
    xs: &[&Tensor],
    grad_ys: Option<&[&Tensor]>,
) -> Result<Vec<Tensor>> {
    let grads = gradients_with(ys, xs, grad_ys, UnconnectedGradients::Zero)?;
    grads
        .into_iter()
        .map(|g| g.ok_or_else(|| GraphError::invalid("gradients: a zero gradient is missing")))
        .collect()
}

/// [`gradients`] with a choice of what unconnected `xs` get.
#[track_caller]
pub fn gradients_with(
    ys: &[&Tensor],
    xs: &[&Tensor],
    grad_ys: Option<&[&Tensor]>,
    unconnected: UnconnectedGradients,
) -> Result<Vec<Option<Tensor>>> {
    let Some(g) = ys.iter().chain(xs).next().map(|t| t.graph().clone()) else {
        return Ok(Vec::new());
    };
    for t in ys.iter().chain(xs).chain(grad_ys.unwrap_or_default()) {
        if !g.same_graph(t.graph()) {
            return Err(invalid(format!(
                "`{}` belongs to another graph than the first tensor",
                t.name()
            )));
        }
    }
    for y in ys {
        if !y.dtype().is_float() {
            return Err(invalid(format!(
                "y `{}` is {}; only float tensors can be differentiated",
                y.name(),
                y.ty()
            )));
        }
    }
    let _scope = g.scope("gradients");
    let seeds = match grad_ys {
        Some(gys) => {
            if gys.len() != ys.len() {
                return Err(invalid(format!(
                    "{} grad_ys given for {} ys",
                    gys.len(),
                    ys.len()
                )));
            }
            for (y, gy) in ys.iter().zip(gys) {
                if y.ty() != gy.ty() {
                    return Err(invalid(format!(
                        "grad_y `{}` is {} but y `{}` is {}",
                        gy.name(),
                        gy.ty(),
                        y.name(),
                        y.ty()
                    )));
                }
            }
            gys.iter().map(|t| (*t).clone()).collect()
        }
        None => ys
            .iter()
            .map(|y| g.ones(y.shape(), y.dtype()))
            .collect::<Result<Vec<_>>>()?,
    };
    let ys: Vec<Tensor> = ys.iter().map(|t| (*t).clone()).collect();
    let xs: Vec<Tensor> = xs.iter().map(|t| (*t).clone()).collect();
    let grads = backprop(&ys, &xs, seeds)?;
    match unconnected {
        UnconnectedGradients::None => Ok(grads),
        UnconnectedGradients::Zero => grads
            .into_iter()
            .zip(&xs)
            .map(|(d, x)| match d {
                Some(d) => Ok(Some(d)),
                None => g.zeros(x.shape(), x.dtype()).map(Some),
            })
            .collect(),
    }
}

fn invalid(msg: String) -> GraphError {
    GraphError::invalid(format!("gradients: {msg}"))
}

/// The core of [`gradients`] (no scope, no validation): back-propagate `seeds` from `ys`
/// to `xs` through the nodes on a differentiable path between them, in reverse id order.
/// Also used to differentiate a composite's expansion.
pub(crate) fn backprop(
    ys: &[Tensor],
    xs: &[Tensor],
    seeds: Vec<Tensor>,
) -> Result<Vec<Option<Tensor>>> {
    let Some(g) = ys.first().map(|t| t.graph().clone()) else {
        return Ok(vec![None; xs.len()]);
    };
    let def = g.def();
    let n = def.len();
    let is_float = |id: NodeId| def.node(id).ty.dtype.is_float();

    // Nodes that depend on some x, and nodes some y depends on (data edges only).
    let mut from_x = vec![false; n];
    for x in xs {
        from_x[x.id().0] = true;
    }
    for (id, node) in def.iter() {
        if node.inputs.iter().any(|i| from_x[i.0]) {
            from_x[id.0] = true;
        }
    }
    let mut to_y = vec![false; n];
    for y in ys {
        to_y[y.id().0] = true;
    }
    for (id, node) in def.nodes().iter().enumerate().rev() {
        if to_y[id] {
            for i in &node.inputs {
                to_y[i.0] = true;
            }
        }
    }
    let on_path = |id: NodeId| from_x[id.0] && to_y[id.0] && is_float(id);

    let mut pending: Vec<Vec<Tensor>> = vec![Vec::new(); n];
    for (y, seed) in ys.iter().zip(seeds) {
        if on_path(y.id()) {
            pending[y.id().0].push(seed);
        }
    }
    let lowest = xs.iter().map(|x| x.id().0).min().unwrap_or(n);
    let mut total: Vec<Option<Tensor>> = vec![None; n];
    for id in (lowest..n).rev() {
        let contributions = std::mem::take(&mut pending[id]);
        let Some(dy) = sum_all(contributions)? else {
            continue;
        };
        total[id] = Some(dy.clone());
        let node = def.node(NodeId(id));
        let need: Vec<bool> = node.inputs.iter().map(|&i| on_path(i)).collect();
        if !need.contains(&true) {
            continue;
        }
        let inputs: Vec<Tensor> = node.inputs.iter().map(|&i| tensor(&g, i)).collect();
        let out = tensor(&g, NodeId(id));
        let cx = rules::Ctx {
            inputs: &inputs,
            out: &out,
            dy: &dy,
            need: &need,
        };
        let grads = rules::input_gradients(&node.op, &cx)?;
        if grads.len() != inputs.len() {
            return Err(rule_error(
                &node.name,
                format!("{} gradients for {} inputs", grads.len(), inputs.len()),
            ));
        }
        for ((grad, input), wanted) in grads.into_iter().zip(&inputs).zip(&need) {
            let (Some(grad), true) = (grad, wanted) else {
                continue;
            };
            if grad.ty() != input.ty() {
                return Err(rule_error(
                    &node.name,
                    format!(
                        "the gradient of input `{}` ({}) is {}",
                        input.name(),
                        input.ty(),
                        grad.ty()
                    ),
                ));
            }
            pending[input.id().0].push(grad);
        }
    }
    Ok(xs.iter().map(|x| total[x.id().0].clone()).collect())
}

fn tensor(g: &Graph, id: NodeId) -> Tensor {
    g.tensor(id)
        .expect("ids come from the graph's own snapshot")
}

fn rule_error(node: &str, msg: String) -> GraphError {
    GraphError::invalid(format!(
        "gradients: the rule of node `{node}` is inconsistent: {msg}"
    ))
}

/// The sum of the contributions, `None` when there are none.
fn sum_all(contributions: Vec<Tensor>) -> Result<Option<Tensor>> {
    let mut it = contributions.into_iter();
    let Some(first) = it.next() else {
        return Ok(None);
    };
    it.try_fold(first, |acc, t| &acc + &t).map(Some)
}
