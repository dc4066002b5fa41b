//! The verifier: checks the invariants every pass must preserve.
//!
//! - every input and control input of node `i` has an id `< i` (id order is topological);
//! - names are well-formed and unique;
//! - each node's arity is right and its type is what its op's shape rule gives;
//! - `assign`, `assign_slice` and `read` take a variable as input 0.

use flumen_frontend::graph::is_valid_name;
use flumen_frontend::op::{Op, TensorType};
use flumen_frontend::{GraphDef, GraphError, Result};
use std::collections::HashSet;

/// Check `def`, returning the first violated invariant.
pub fn verify(def: &GraphDef) -> Result<()> {
    let mut names = HashSet::new();
    for (id, node) in def.iter() {
        let err = |msg: String| GraphError::Verify {
            node: node.name.clone(),
            msg,
        };
        if !is_valid_name(&node.name) {
            return Err(err("malformed name".into()));
        }
        if !names.insert(node.name.as_str()) {
            return Err(err("duplicate name".into()));
        }
        if def.find(&node.name) != Some(id) {
            return Err(err("name index out of date".into()));
        }
        for i in node.inputs.iter().chain(&node.control_inputs) {
            if i.0 >= id.0 {
                return Err(err(format!(
                    "input {i} does not precede the node (id {id})"
                )));
            }
        }
        let types: Vec<TensorType> = node
            .inputs
            .iter()
            .map(|i| def.node(*i).ty.clone())
            .collect();
        let ty = node
            .op
            .infer(&types)
            .map_err(|e| err(format!("{}: {e}", node.op.name())))?;
        if ty != node.ty {
            return Err(err(format!(
                "declared type {} but the shape rule gives {ty}",
                node.ty
            )));
        }
        if matches!(node.op, Op::Assign | Op::AssignSlice(_) | Op::Read)
            && !matches!(def.node(node.inputs[0]).op, Op::Variable { .. })
        {
            return Err(err(format!(
                "{} needs a variable as input 0",
                node.op.name()
            )));
        }
    }
    Ok(())
}
