//! Runs a graph on the interpreter: initialises variables on first use, feeds
//! placeholders, evaluates the nodes the fetches need in id (topological) order, applies
//! assigns to the session state and frees values after their last use.
//!
//! Semantics of state within one run: a `variable` node yields the variable's value at the
//! start of the run; `assign`/`assign_slice` update the state in node order; a `read` node
//! yields the state at its position (order it after an assign with a control input).

use super::{EvalContext, eval_op};
use crate::state::SessionState;
use flumen_frontend::op::Op;
use flumen_frontend::{Graph, GraphDef, GraphError, NodeId, Result, Value};
use std::collections::HashMap;

fn runtime_err(def: &GraphDef, id: NodeId, msg: impl Into<String>) -> GraphError {
    let n = def.node(id);
    GraphError::runtime(n.op.name(), &n.name, msg)
}

/// Initialise every variable among `needed` that the state does not hold yet, by running
/// its initial-value subgraph once.
pub fn initialize_variables(
    def: &GraphDef,
    needed: &[bool],
    state: &mut SessionState,
) -> Result<()> {
    for (id, node) in def.iter() {
        if needed[id.0]
            && matches!(node.op, Op::Variable { .. })
            && !state.variables.contains_key(&node.name)
        {
            let init = node.inputs[0];
            let value = run(def, &HashMap::new(), &[init], state)
                .map_err(|e| {
                    GraphError::runtime("variable", &node.name, format!("initialising: {e}"))
                })?
                .pop()
                .expect("one fetch gives one value");
            state.variables.insert(node.name.clone(), value);
        }
    }
    Ok(())
}

/// Evaluate `fetches` with the given placeholder feeds (already validated by the session:
/// every placeholder the fetches need is fed with the right dtype and shape).
pub fn run(
    def: &GraphDef,
    feeds: &HashMap<NodeId, Value>,
    fetches: &[NodeId],
    state: &mut SessionState,
) -> Result<Vec<Value>> {
    let needed = def.reachable(fetches, false);
    initialize_variables(def, &needed, state)?;

    // Remaining uses of each value, so it can be dropped after its last consumer.
    let mut uses = vec![0usize; def.len()];
    for (id, node) in def.iter() {
        if needed[id.0] && !matches!(node.op, Op::Variable { .. }) {
            for i in &node.inputs {
                uses[i.0] += 1;
            }
        }
    }
    for f in fetches {
        uses[f.0] += 1;
    }

    let mut values: Vec<Option<Value>> = vec![None; def.len()];
    // Variable nodes read the state as it was at the start of the run.
    for (id, node) in def.iter() {
        if needed[id.0] && matches!(node.op, Op::Variable { .. }) {
            values[id.0] = Some(state.variables[&node.name].clone());
        }
    }

    for (id, node) in def.iter() {
        if !needed[id.0] || matches!(node.op, Op::Variable { .. }) {
            continue;
        }
        let inputs: Vec<&Value> = node
            .inputs
            .iter()
            .map(|i| {
                values[i.0]
                    .as_ref()
                    .expect("inputs are evaluated before their consumers")
            })
            .collect();
        let value = match &node.op {
            Op::Placeholder { .. } => feeds.get(&id).cloned().ok_or_else(|| GraphError::Feed {
                placeholder: node.name.clone(),
                msg: "no value fed".into(),
            })?,
            Op::Read => {
                let var = &def.node(node.inputs[0]).name;
                state.variables[var].clone()
            }
            Op::Assign => {
                let var = def.node(node.inputs[0]).name.clone();
                let v = inputs[1].clone();
                state.variables.insert(var, v.clone());
                v
            }
            Op::AssignSlice(spec) => {
                let var = def.node(node.inputs[0]).name.clone();
                let new = super::assign_slice(&state.variables[&var], spec, inputs[1])
                    .map_err(|m| runtime_err(def, id, m))?;
                state.variables.insert(var, new.clone());
                new
            }
            Op::Composite(c) => run_composite(c, &node.name, &inputs, state)?,
            op => {
                let counter = if matches!(op, Op::Random { .. } | Op::Categorical { .. }) {
                    state.next_counter(&node.name)
                } else {
                    0
                };
                eval_op(op, &inputs, &node.ty, EvalContext { counter })
                    .map_err(|m| runtime_err(def, id, m))?
            }
        };
        debug_assert_eq!(value.dtype(), node.ty.dtype, "{}: dtype", node.name);
        debug_assert_eq!(
            value.shape(),
            node.ty.shape.as_slice(),
            "{}: shape",
            node.name
        );
        values[id.0] = Some(value);
        for i in &node.inputs {
            uses[i.0] -= 1;
            if uses[i.0] == 0 {
                values[i.0] = None;
            }
        }
    }
    Ok(fetches
        .iter()
        .map(|f| {
            uses[f.0] -= 1;
            if uses[f.0] == 0 {
                values[f.0].take().expect("fetched value present")
            } else {
                values[f.0].clone().expect("fetched value present")
            }
        })
        .collect())
}

/// Evaluate a composite by building its expansion on constants of the input values and
/// running that; random ops inside keep their counters under the composite node's name.
fn run_composite(
    c: &flumen_frontend::op::Composite,
    name: &str,
    inputs: &[&Value],
    state: &mut SessionState,
) -> Result<Value> {
    let g = Graph::new();
    let _scope = g.scope(name);
    let args = inputs
        .iter()
        .map(|v| g.constant((*v).clone()))
        .collect::<Result<Vec<_>>>()?;
    let out = c.build(&args)?;
    let def = g.def();
    let mut sub = SessionState {
        variables: Default::default(),
        counters: std::mem::take(&mut state.counters),
    };
    let result = run(&def, &HashMap::new(), &[out.id()], &mut sub);
    state.counters = sub.counters;
    Ok(result?.pop().expect("one fetch"))
}
