//! `canonicalize`: replace every composite op by the primitives its `build` function makes.
//!
//! The expansion's nodes are named under the composite's name (`loss/...`), and an identity
//! node keeps the composite's own name (and control inputs), so fetches and dumps still find
//! it. Random ops inside an expansion get the same names as when the interpreter evaluates
//! the composite, so both draw the same numbers.

use crate::pass::{Pass, Unit};
use flumen_frontend::op::{Op, UnaryOp};
use flumen_frontend::{Graph, NodeId, Result, Tensor};

/// The canonicalize pass.
pub struct Canonicalize;

impl Pass for Canonicalize {
    fn name(&self) -> &'static str {
        "canonicalize"
    }

    fn run(&self, unit: Unit) -> Result<Unit> {
        if !unit
            .def
            .nodes()
            .iter()
            .any(|n| matches!(n.op, Op::Composite(_)))
        {
            return Ok(unit);
        }
        let g = Graph::new();
        let mut map: Vec<Tensor> = Vec::with_capacity(unit.def.len());
        for (_, node) in unit.def.iter() {
            let inputs: Vec<Tensor> = node.inputs.iter().map(|i| map[i.0].clone()).collect();
            let controls: Vec<Tensor> = node
                .control_inputs
                .iter()
                .map(|i| map[i.0].clone())
                .collect();
            let input_refs: Vec<&Tensor> = inputs.iter().collect();
            let control_refs: Vec<&Tensor> = controls.iter().collect();
            let t = match &node.op {
                Op::Composite(c) => {
                    let out = {
                        let _scope = g.scope(&node.name);
                        c.build(&inputs)?
                    };
                    g.add_op(
                        Op::Unary(UnaryOp::Identity),
                        &[&out],
                        &control_refs,
                        Some(&node.name),
                    )?
                }
                op => g.add_op(op.clone(), &input_refs, &control_refs, Some(&node.name))?,
            };
            map.push(t);
        }
        let outputs = unit
            .outputs
            .iter()
            .map(|o| map[o.0].id())
            .collect::<Vec<NodeId>>();
        Ok(Unit {
            def: g.def(),
            outputs,
        })
    }
}
