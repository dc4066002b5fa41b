//! Graphviz export: [`to_dot`] renders a [`GraphDef`] as a DOT digraph.
//!
//! Name scopes (`layer1/dense/W`) become nested `subgraph cluster_...` boxes labelled with
//! the scope's last segment. Each node shows its short name, its op (when the name is not
//! just the op's) and its attributes
//! (printed as in the text IR, long values shortened; constants larger than a few elements
//! show only their type). Data edges are labelled with the producer's output type, control
//! edges are dashed. Variables, placeholders, constants, assignments, random ops and
//! `no_op` groups each get their own shape and colour.

use crate::graph::{GraphDef, Node, NodeId};
use crate::op::Op;
use crate::op::TensorType;
use crate::op::attrs::{AttrValue, attrs};
use crate::text::format_attr_value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Attribute values longer than this are shortened in node labels.
const MAX_ATTR_CHARS: usize = 40;
/// Constants with at most this many elements show their value; larger ones their type.
const MAX_SHOWN_ELEMENTS: usize = 4;

/// A DOT quoted string: `s` with `"` and `\` escaped and newlines as `\n`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The node attributes that set its look, by op.
fn style(op: &Op) -> &'static str {
    match op {
        Op::Variable { .. } => r##"shape=cylinder, style=filled, fillcolor="#fde68a""##,
        Op::Placeholder { .. } => r##"shape=invhouse, style=filled, fillcolor="#bfdbfe""##,
        Op::Constant(_) => r##"shape=note, style=filled, fillcolor="#e5e7eb""##,
        Op::Assign | Op::AssignSlice(_) => {
            r##"shape=box, style="filled,bold", fillcolor="#fca5a5", color="#b91c1c""##
        }
        Op::Read => r##"shape=box, style="rounded,filled", fillcolor="#fef3c7""##,
        Op::Random { .. } | Op::Categorical { .. } => {
            r##"shape=box, style="rounded,filled", fillcolor="#e9d5ff""##
        }
        Op::NoOp => r##"shape=octagon, style=filled, fillcolor="#bbf7d0""##,
        _ => r##"shape=box, style="rounded,filled", fillcolor="#ffffff""##,
    }
}

/// A node's label: short name, op (unless the name is just the op's), then one
/// `key=value` line per attribute.
fn label(n: &Node) -> String {
    let short = n.name.rsplit('/').next().unwrap_or(&n.name);
    let mut lines = vec![short.to_string()];
    if short != n.op.name() {
        lines.push(n.op.name().to_string());
    }
    for (key, v) in attrs(&n.op) {
        let mut text = match &v {
            AttrValue::Tensor(t) if t.len() > MAX_SHOWN_ELEMENTS => {
                TensorType::new(t.dtype(), t.shape()).to_string()
            }
            v => format_attr_value(v),
        };
        if text.chars().count() > MAX_ATTR_CHARS {
            text = text.chars().take(MAX_ATTR_CHARS - 3).collect::<String>() + "...";
        }
        lines.push(format!("{key}={text}"));
    }
    lines.join("\n")
}

/// Nodes of one name scope and its sub-scopes.
#[derive(Default)]
struct Scope {
    nodes: Vec<NodeId>,
    children: BTreeMap<String, Scope>,
}

fn write_scope(out: &mut String, def: &GraphDef, scope: &Scope, path: &str, depth: usize) {
    let pad = "  ".repeat(depth);
    for &id in &scope.nodes {
        let n = def.node(id);
        let _ = writeln!(
            out,
            "{pad}{} [label={}, {}];",
            quote(&n.name),
            quote(&label(n)),
            style(&n.op)
        );
    }
    for (name, child) in &scope.children {
        let full = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}/{name}")
        };
        let _ = writeln!(
            out,
            "{pad}subgraph {} {{",
            quote(&format!("cluster_{full}"))
        );
        let _ = writeln!(
            out,
            "{pad}  label={}; style=\"rounded\"; color=\"#9ca3af\";",
            quote(name)
        );
        write_scope(out, def, child, &full, depth + 1);
        let _ = writeln!(out, "{pad}}}");
    }
}

/// The graph as Graphviz DOT text (render with `dot -Tsvg`).
pub fn to_dot(def: &GraphDef) -> String {
    let mut root = Scope::default();
    for (id, n) in def.iter() {
        let mut scope = &mut root;
        let mut segs: Vec<&str> = n.name.split('/').collect();
        segs.pop();
        for seg in segs {
            scope = scope.children.entry(seg.to_string()).or_default();
        }
        scope.nodes.push(id);
    }
    let mut out = String::from("digraph flumen {\n");
    out.push_str("  compound=true;\n  rankdir=TB;\n");
    out.push_str("  node [fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
    write_scope(&mut out, def, &root, "", 1);
    for n in def.nodes() {
        for &i in &n.inputs {
            if let Some(src) = def.get(i) {
                let _ = writeln!(
                    out,
                    "  {} -> {} [label={}];",
                    quote(&src.name),
                    quote(&n.name),
                    quote(&src.ty.to_string())
                );
            }
        }
        for &c in &n.control_inputs {
            if let Some(src) = def.get(c) {
                let _ = writeln!(
                    out,
                    "  {} -> {} [style=dashed, color=\"#6b7280\", arrowhead=odot];",
                    quote(&src.name),
                    quote(&n.name)
                );
            }
        }
    }
    out.push_str("}\n");
    out
}

impl GraphDef {
    /// The graph as Graphviz DOT text (see [`to_dot`]).
    pub fn to_dot(&self) -> String {
        to_dot(self)
    }

    /// Write the DOT text to `path` (I/O errors name the path).
    pub fn save_dot(&self, path: impl AsRef<std::path::Path>) -> crate::Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_dot()).map_err(|e| crate::GraphError::Io {
            path: path.display().to_string(),
            msg: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("a/b"), "\"a/b\"");
        assert_eq!(quote("x\"y\\z\nw"), "\"x\\\"y\\\\z\\nw\"");
    }
}
