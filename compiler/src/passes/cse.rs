//! `cse`: common-subexpression elimination. Two pure nodes with equal ops (attributes
//! included; constants compare bitwise, see [`Value`](flumen_frontend::Value)'s
//! `PartialEq`), the same data inputs in the same order and the same control inputs are
//! merged into the first of them; later uses and [`Unit::outputs`] are redirected to it.
//!
//! Stateful ops ([`Op::is_stateful`](flumen_frontend::op::Op::is_stateful): placeholders, variables, reads, assigns, random ops)
//! are never merged: two reads of a variable may see different values, two random ops
//! draw different numbers, and the session keys state by their names, which therefore all
//! survive. Control inputs are part of a node's identity, so merging never drops an
//! ordering dependency. A merged node's name disappears with it (fetches are by id).

use crate::pass::{Pass, Unit};
use flumen_frontend::{GraphDef, NodeId, Result};
use std::collections::HashMap;

/// The common-subexpression-elimination pass.
pub struct CommonSubexpressionElimination;

/// What two mergeable nodes must share, apart from the op's attributes (`Op` is not
/// `Hash`: candidates with equal keys are compared with `==`).
type Key = (&'static str, Vec<NodeId>, Vec<NodeId>);

impl Pass for CommonSubexpressionElimination {
    fn name(&self) -> &'static str {
        "cse"
    }

    fn run(&self, unit: Unit) -> Result<Unit> {
        let src = &unit.def;
        let mut def = GraphDef::new();
        let mut map: Vec<NodeId> = Vec::with_capacity(src.len());
        let mut seen: HashMap<Key, Vec<NodeId>> = HashMap::new();
        let mut merged = false;
        for (_, node) in src.iter() {
            let inputs: Vec<NodeId> = node.inputs.iter().map(|i| map[i.0]).collect();
            let mut controls: Vec<NodeId> = node.control_inputs.iter().map(|i| map[i.0]).collect();
            if !node.op.is_stateful() {
                // Control inputs are a set: their order does not matter.
                let mut key_controls = controls.clone();
                key_controls.sort_unstable();
                key_controls.dedup();
                let key = (node.op.name(), inputs.clone(), key_controls);
                let candidates = seen.entry(key).or_default();
                if let Some(&same) = candidates.iter().find(|c| def.node(**c).op == node.op) {
                    map.push(same);
                    merged = true;
                    continue;
                }
                let new = add(&mut def, node, &inputs, &mut controls)?;
                candidates.push(new);
                map.push(new);
            } else {
                map.push(add(&mut def, node, &inputs, &mut controls)?);
            }
        }
        if !merged {
            return Ok(unit);
        }
        let outputs = unit.outputs.iter().map(|o| map[o.0]).collect();
        Ok(Unit { def, outputs })
    }
}

/// Copy `node` with remapped inputs (control inputs merged into one node appear once).
fn add(
    def: &mut GraphDef,
    node: &flumen_frontend::Node,
    inputs: &[NodeId],
    controls: &mut Vec<NodeId>,
) -> Result<NodeId> {
    let mut seen = Vec::with_capacity(controls.len());
    controls.retain(|c| {
        let fresh = !seen.contains(c);
        seen.push(*c);
        fresh
    });
    def.add(node.op.clone(), inputs, controls, node.name.clone(), None)
}
