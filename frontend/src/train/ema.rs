//! Exponential moving averages of variables (Polyak averaging, soft target updates).

use super::unique_scope;
use crate::Tensor;
use crate::error::{GraphError, Result};
use crate::op::Op;

/// One op (a `no_op` grouping the assigns, named `ema_update`, made unique) that moves each
/// target variable toward its source: `target ← (1 − τ)·target + τ·source`. Targets must be
/// variables; sources are any tensors of the same types (usually variables); `τ ∈ [0, 1]`.
pub fn ema_update(target_vars: &[&Tensor], source_vars: &[&Tensor], tau: f64) -> Result<Tensor> {
    let err = |msg: String| GraphError::invalid(format!("ema_update: {msg}"));
    if target_vars.len() != source_vars.len() {
        return Err(err(format!(
            "{} targets but {} sources",
            target_vars.len(),
            source_vars.len()
        )));
    }
    if !(0.0..=1.0).contains(&tau) {
        return Err(err(format!("tau must be in [0, 1], got {tau}")));
    }
    let Some(first) = target_vars.first() else {
        return Err(err("no variables to update".into()));
    };
    let g = first.graph().clone();
    for (t, s) in target_vars.iter().zip(source_vars) {
        if !matches!(t.op(), Op::Variable { .. }) || !t.dtype().is_float() {
            return Err(err(format!(
                "target `{}` ({} {}) is not a float variable",
                t.name(),
                t.op().name(),
                t.ty()
            )));
        }
        if t.ty() != s.ty() || !g.same_graph(t.graph()) || !g.same_graph(s.graph()) {
            return Err(err(format!(
                "target `{}` ({}) and source `{}` ({}) differ or live in different graphs",
                t.name(),
                t.ty(),
                s.name(),
                s.ty()
            )));
        }
    }
    let name = unique_scope(&g, "ema_update");
    let _scope = g.scope(&name);
    let updates = target_vars
        .iter()
        .zip(source_vars)
        .map(|(t, s)| t.assign((&(*t * (1.0 - tau))? + &(*s * tau)?)?))
        .collect::<Result<Vec<_>>>()?;
    drop(_scope);
    let refs: Vec<&Tensor> = updates.iter().collect();
    g.group(&name, &refs)
}
