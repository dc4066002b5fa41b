//! From an e-graph and a choice of e-nodes back to a [`Unit`].
//!
//! Pinned nodes are rebuilt in their original order with their original names, ops and
//! control inputs (so assigns still apply in node order); the pure classes they and the
//! outputs need are emitted on demand before them, in dependency order. A class keeps the
//! name of the first source node it holds; nodes that only rules created get fresh names
//! under `egraph/`.

use super::extract::Choice;
use super::lang::{Converted, EG, Sym};
use crate::pass::Unit;
use egg::Id;
use flumen_frontend::op::Op;
use flumen_frontend::{GraphDef, GraphError, NodeId, Result};
use std::collections::{HashMap, HashSet};

/// Build the graph of `choice` for `unit` (converted as `conv`).
pub fn from_egraph(unit: &Unit, conv: &Converted, choice: &Choice) -> Result<Unit> {
    let eg = &conv.egraph;
    let src = &unit.def;
    // The name each class inherits: its first source node's.
    let mut class_name: HashMap<Id, &str> = HashMap::new();
    for (id, node) in src.iter() {
        if !conv.pinned[id.0] {
            class_name
                .entry(eg.find(conv.class_of[id.0]))
                .or_insert(node.name.as_str());
        }
    }
    let reserved: HashSet<&str> = src.nodes().iter().map(|n| n.name.as_str()).collect();
    let mut b = Builder {
        eg,
        choice,
        out: GraphDef::new(),
        emitted: HashMap::new(),
        leaf_map: HashMap::new(),
        class_name,
        reserved,
        used: HashSet::new(),
        src,
    };
    for (id, node) in src.iter() {
        if !conv.pinned[id.0] {
            continue;
        }
        let inputs = node
            .inputs
            .iter()
            .map(|i| {
                if conv.pinned[i.0] {
                    b.leaf_map.get(&i.0).copied().ok_or_else(|| {
                        GraphError::invalid(format!(
                            "saturate: input {i} of `{}` is missing",
                            node.name
                        ))
                    })
                } else {
                    b.emit(conv.class_of[i.0])
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let controls = node
            .control_inputs
            .iter()
            .map(|c| b.leaf_map[&c.0])
            .collect::<Vec<_>>();
        b.used.insert(node.name.clone());
        let new = b
            .out
            .add(node.op.clone(), &inputs, &controls, node.name.clone(), None)?;
        b.leaf_map.insert(id.0, new);
    }
    let outputs = unit
        .outputs
        .iter()
        .map(|o| {
            if conv.pinned[o.0] {
                Ok(b.leaf_map[&o.0])
            } else {
                b.emit(conv.class_of[o.0])
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Unit {
        def: b.out,
        outputs,
    })
}

struct Builder<'a> {
    eg: &'a EG,
    choice: &'a Choice,
    out: GraphDef,
    emitted: HashMap<Id, NodeId>,
    leaf_map: HashMap<usize, NodeId>,
    class_name: HashMap<Id, &'a str>,
    reserved: HashSet<&'a str>,
    used: HashSet<String>,
    src: &'a GraphDef,
}

impl Builder<'_> {
    fn name_for(&mut self, class: Id, base: &str) -> String {
        if let Some(&n) = self.class_name.get(&class)
            && !self.used.contains(n)
        {
            self.used.insert(n.to_string());
            return n.to_string();
        }
        let base = format!("egraph/{base}");
        let mut name = base.clone();
        let mut i = 1;
        while self.used.contains(&name) || self.reserved.contains(name.as_str()) {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.used.insert(name.clone());
        name
    }

    /// Emit the chosen node of `class` and everything it needs (iteratively).
    fn emit(&mut self, class: Id) -> Result<NodeId> {
        let root = self.eg.find(class);
        let mut stack = vec![(root, false)];
        while let Some((id, ready)) = stack.pop() {
            if self.emitted.contains_key(&id) {
                continue;
            }
            let node = self.choice.get(&id).ok_or_else(|| {
                GraphError::invalid(format!("saturate: no e-node chosen for class {id}"))
            })?;
            if !ready {
                stack.push((id, true));
                for c in node.children.iter().rev() {
                    let c = self.eg.find(*c);
                    if !self.emitted.contains_key(&c) {
                        stack.push((c, false));
                    }
                }
                continue;
            }
            let inputs = node
                .children
                .iter()
                .map(|c| {
                    self.emitted.get(&self.eg.find(*c)).copied().ok_or_else(|| {
                        GraphError::invalid(format!(
                            "saturate: the chosen e-nodes form a cycle through class {c}"
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let new = match node.sym {
                Sym::Leaf(i) => {
                    let src_id = self.eg.analysis.leaves[i as usize].0;
                    *self.leaf_map.get(&src_id.0).ok_or_else(|| {
                        GraphError::invalid(format!(
                            "saturate: `{}` is used before it is computed (a rule moved a use of a pinned node ahead of it)",
                            self.src.node(src_id).name
                        ))
                    })?
                }
                Sym::Const(_) => {
                    let v = self.eg.analysis.constant(node.sym).expect("const").clone();
                    let name = self.name_for(id, "constant");
                    self.out.add(Op::Constant(v), &[], &[], name, None)?
                }
                Sym::Op(_) => {
                    let op = self.eg.analysis.op(node.sym).expect("op").clone();
                    let name = self.name_for(id, op.name());
                    self.out.add(op, &inputs, &[], name, None)?
                }
            };
            self.emitted.insert(id, new);
        }
        Ok(self.emitted[&root])
    }
}
