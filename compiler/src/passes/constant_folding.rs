//! `constant_folding`: evaluate pure nodes whose data inputs are all constants with the
//! reference interpreter ([`flumen_runtime::eval_op`]) and replace them by constants.
//!
//! - Only pure ops fold: never a stateful one ([`Op::is_stateful`]: placeholders,
//!   variables, reads, assigns, random ops), never a `no_op` (its value is `true` but its
//!   point is its control inputs) and never a composite (`canonicalize` runs first).
//! - A folded node keeps its id, name and control inputs, so [`Unit::outputs`] and every
//!   execution-order dependency are unchanged; it also inherits the control inputs of its
//!   (constant) data inputs, which running it used to run. Inputs that become unused are
//!   left for `dce` to remove.
//! - Results with more than [`MAX_FOLDED_ELEMENTS`] elements are not folded (a
//!   `broadcast_to` or `tile` of a scalar would otherwise become a huge constant baked into
//!   the executable); nor is a node whose evaluation fails (say, a `gather` with an index
//!   out of range): it is left to fail at run time, where the error names the node.
//! - Values are exactly what the interpreter computes, so a folded graph agrees bit for bit
//!   with the interpreter on the folded nodes.

use crate::pass::{Pass, Unit};
use flumen_frontend::op::Op;
use flumen_frontend::{GraphDef, NodeId, Result, Value};
use flumen_runtime::{EvalContext, eval_op};

/// The largest constant (in elements) the pass creates: 64 Ki elements (256 KiB of f32).
pub const MAX_FOLDED_ELEMENTS: usize = 64 * 1024;

/// The constant-folding pass.
pub struct ConstantFolding;

/// Whether the pass may evaluate a node with this op (when its inputs are constants).
pub fn is_foldable_op(op: &Op) -> bool {
    !op.is_stateful() && !matches!(op, Op::Constant(_) | Op::NoOp | Op::Composite(_))
}

impl Pass for ConstantFolding {
    fn name(&self) -> &'static str {
        "constant_folding"
    }

    fn run(&self, unit: Unit) -> Result<Unit> {
        let src = &unit.def;
        let mut def = GraphDef::new();
        let mut changed = false;
        for (id, node) in src.iter() {
            let folded = if is_foldable_op(&node.op) && node.ty.numel() <= MAX_FOLDED_ELEMENTS {
                let inputs: Option<Vec<&Value>> = node
                    .inputs
                    .iter()
                    .map(|i| match &def.node(*i).op {
                        Op::Constant(v) => Some(v),
                        _ => None,
                    })
                    .collect();
                inputs.and_then(|vs| eval_op(&node.op, &vs, &node.ty, EvalContext::default()).ok())
            } else {
                None
            };
            let is_folded = folded.is_some();
            let op = match folded {
                Some(v) => {
                    changed = true;
                    Op::Constant(v)
                }
                None => node.op.clone(),
            };
            // Ids are kept one to one, so inputs and outputs need no remapping. A folded
            // node loses its data inputs but inherits their control inputs: running it
            // must still run what they waited for (an assign, say).
            let (inputs, controls): (&[NodeId], Vec<NodeId>) = if is_folded {
                let mut controls = node.control_inputs.clone();
                for i in &node.inputs {
                    for c in &def.node(*i).control_inputs {
                        if !controls.contains(c) {
                            controls.push(*c);
                        }
                    }
                }
                (&[], controls)
            } else {
                (&node.inputs, node.control_inputs.clone())
            };
            let new = def.add(op, inputs, &controls, node.name.clone(), None)?;
            debug_assert_eq!(new, id);
        }
        if !changed {
            return Ok(unit);
        }
        Ok(Unit {
            def,
            outputs: unit.outputs,
        })
    }
}
