//! `dce`: drop every node the outputs do not need (data or control), keeping variables'
//! initial-value inputs so the graph stays well formed.

use crate::pass::{Pass, Unit};
use flumen_frontend::{GraphDef, NodeId, Result};

/// The dead-code elimination pass.
pub struct DeadCodeElimination;

impl Pass for DeadCodeElimination {
    fn name(&self) -> &'static str {
        "dce"
    }

    fn run(&self, unit: Unit) -> Result<Unit> {
        let live = unit.def.reachable(&unit.outputs, true);
        if live.iter().all(|&l| l) {
            return Ok(unit);
        }
        let mut def = GraphDef::new();
        let mut map: Vec<Option<NodeId>> = vec![None; unit.def.len()];
        for (id, node) in unit.def.iter() {
            if !live[id.0] {
                continue;
            }
            let remap = |ids: &[NodeId]| {
                ids.iter()
                    .map(|i| map[i.0].expect("inputs precede"))
                    .collect::<Vec<_>>()
            };
            let new = def.add(
                node.op.clone(),
                &remap(&node.inputs),
                &remap(&node.control_inputs),
                node.name.clone(),
                None,
            )?;
            map[id.0] = Some(new);
        }
        let outputs = unit
            .outputs
            .iter()
            .map(|o| map[o.0].expect("outputs are live"))
            .collect();
        Ok(Unit { def, outputs })
    }
}
