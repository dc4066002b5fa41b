//! Graphviz export: [`to_dot`] renders a [`GraphDef`] as a DOT digraph; [`to_dot_with`]
//! adds a title, a legend and *outlines* (groups of nodes drawn as one box, such as the
//! fused kernels of a compiled graph).
//!
//! Name scopes (`layer1/dense/W`) become nested `subgraph cluster_...` boxes labelled with
//! the scope's last segment. Each node shows its short name, its op (when the name is not
//! just the op's) and its attributes
//! (printed as in the text IR, long values shortened; constants larger than a few elements
//! show only their type). Data edges are labelled with the producer's output type, control
//! edges are dashed. Variables, placeholders, constants, assignments, random ops and
//! `no_op` groups each get their own shape and colour; nodes of the backward pass (under a
//! `gradients` scope, as [`crate::gradients`] builds them) are orange, as are their scopes'
//! boxes and the edges leaving them.

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
/// The outline colour of backward-pass nodes, scopes and edges.
const GRADIENT_COLOR: &str = "#c2410c";

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

/// Whether `name` belongs to a backward pass: one of its scopes is `gradients` or
/// `gradients_<n>` (where [`crate::gradients`] puts the nodes it builds).
pub fn is_gradient_name(name: &str) -> bool {
    let mut segs: Vec<&str> = name.split('/').collect();
    segs.pop();
    segs.iter().any(|s| {
        *s == "gradients"
            || s.strip_prefix("gradients_")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The node attributes that set its look, by op (and by whether it is a gradient node).
fn style(n: &Node) -> &'static str {
    match &n.op {
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
        _ if is_gradient_name(&n.name) => {
            r##"shape=box, style="rounded,filled", fillcolor="#fed7aa", color="#c2410c""##
        }
        _ => r##"shape=box, style="rounded,filled", fillcolor="#ffffff""##,
    }
}

/// An attribute value as a node label or tool shows it: the text-IR spelling, tensors of
/// more than a few elements as their type, anything longer than 40 characters cut with `...`.
pub fn short_attr_text(v: &AttrValue) -> String {
    let text = match v {
        AttrValue::Tensor(t) if t.len() > MAX_SHOWN_ELEMENTS => {
            TensorType::new(t.dtype(), t.shape()).to_string()
        }
        v => format_attr_value(v),
    };
    if text.chars().count() > MAX_ATTR_CHARS {
        text.chars().take(MAX_ATTR_CHARS - 3).collect::<String>() + "..."
    } else {
        text
    }
}

/// A node's label: its name (short when drawn inside its own scope's box), op (unless the
/// name is just the op's), then one `key=value` line per attribute.
fn label(n: &Node, short_name: bool) -> String {
    let short = n.name.rsplit('/').next().unwrap_or(&n.name);
    let mut lines = vec![if short_name { short } else { &n.name }.to_string()];
    if short != n.op.name() {
        lines.push(n.op.name().to_string());
    }
    for (key, v) in attrs(&n.op) {
        lines.push(format!("{key}={}", short_attr_text(&v)));
    }
    lines.join("\n")
}

/// How an [`Outline`] is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutlineKind {
    /// A fused kernel (blue box).
    Kernel,
    /// A matrix product through the GEMM library, with its fused epilogue (violet box).
    Gemm,
    /// An op run by the reference interpreter (dashed red box).
    Interpreter,
}

impl OutlineKind {
    fn attrs(self) -> &'static str {
        match self {
            OutlineKind::Kernel => {
                r##"style="filled,bold"; color="#2563eb"; fillcolor="#eff6ff"; fontcolor="#1d4ed8"; fontname="Helvetica";"##
            }
            OutlineKind::Gemm => {
                r##"style="filled,bold"; color="#7c3aed"; fillcolor="#f5f3ff"; fontcolor="#6d28d9"; fontname="Helvetica";"##
            }
            OutlineKind::Interpreter => {
                r##"style="dashed,bold"; color="#dc2626"; fontcolor="#b91c1c"; fontname="Helvetica";"##
            }
        }
    }
}

/// A group of nodes drawn inside one box labelled `label`, such as the nodes fused into one
/// kernel. The box sits in the scope box of its first node; members from other scopes are
/// labelled with their full names.
#[derive(Clone, Debug)]
pub struct Outline {
    /// The box's caption.
    pub label: String,
    /// How it is drawn.
    pub kind: OutlineKind,
    /// The nodes inside (a node listed in several outlines goes into the first).
    pub nodes: Vec<NodeId>,
}

/// What [`to_dot_with`] adds to the plain picture.
#[derive(Clone, Debug, Default)]
pub struct DotOptions {
    /// A caption at the bottom of the picture.
    pub title: Option<String>,
    /// Boxes around groups of nodes (fused kernels …).
    pub outlines: Vec<Outline>,
    /// Draw a legend box with one sample of each kind of node.
    pub legend: bool,
}

/// Nodes of one name scope and its sub-scopes.
#[derive(Default)]
struct Scope {
    nodes: Vec<NodeId>,
    outlines: Vec<usize>,
    children: BTreeMap<String, Scope>,
}

/// The scope at `path` below `root`, created if missing.
fn scope_mut<'a>(root: &'a mut Scope, path: &str) -> &'a mut Scope {
    let mut scope = root;
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        scope = scope.children.entry(seg.to_string()).or_default();
    }
    scope
}

/// The scope path of a node name (`a/b/c` → `a/b`).
fn scope_of(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(s, _)| s)
}

struct Writer<'a> {
    def: &'a GraphDef,
    opts: &'a DotOptions,
    /// The outline each node is drawn in, by id.
    placement: Vec<Option<usize>>,
    out: String,
}

impl Writer<'_> {
    fn node(&mut self, id: NodeId, path: &str, pad: &str) {
        let n = self.def.node(id);
        let _ = writeln!(
            self.out,
            "{pad}{} [label={}, {}];",
            quote(&n.name),
            quote(&label(n, scope_of(&n.name) == path)),
            style(n)
        );
    }

    fn scope(&mut self, scope: &Scope, path: &str, depth: usize) {
        let pad = "  ".repeat(depth);
        for &id in &scope.nodes {
            self.node(id, path, &pad);
        }
        for &o in &scope.outlines {
            let outline = &self.opts.outlines[o];
            let _ = writeln!(
                self.out,
                "{pad}subgraph {} {{",
                quote(&format!("cluster_:{o}"))
            );
            let _ = writeln!(
                self.out,
                "{pad}  label={}; {}",
                quote(&outline.label),
                outline.kind.attrs()
            );
            for &id in &outline.nodes {
                if self.placement.get(id.0) == Some(&Some(o)) {
                    self.node(id, path, &format!("{pad}  "));
                }
            }
            let _ = writeln!(self.out, "{pad}}}");
        }
        for (name, child) in &scope.children {
            let full = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}/{name}")
            };
            let _ = writeln!(
                self.out,
                "{pad}subgraph {} {{",
                quote(&format!("cluster_{full}"))
            );
            let look = if is_gradient_name(&format!("{full}/x")) {
                format!(
                    "style=\"rounded,filled\"; color=\"{GRADIENT_COLOR}\"; fillcolor=\"#fff7ed\";"
                )
            } else {
                "style=\"rounded\"; color=\"#9ca3af\";".to_string()
            };
            let _ = writeln!(self.out, "{pad}  label={}; {look}", quote(name));
            self.scope(child, &full, depth + 1);
            let _ = writeln!(self.out, "{pad}}}");
        }
    }

    fn legend(&mut self) {
        self.out.push_str("  subgraph \"cluster_:legend\" {\n");
        self.out
            .push_str("    label=\"legend\"; style=\"rounded\"; color=\"#9ca3af\";\n");
        let samples: [(&str, &str); 7] = [
            (
                "variable",
                r##"shape=cylinder, style=filled, fillcolor="#fde68a""##,
            ),
            (
                "placeholder",
                r##"shape=invhouse, style=filled, fillcolor="#bfdbfe""##,
            ),
            (
                "constant",
                r##"shape=note, style=filled, fillcolor="#e5e7eb""##,
            ),
            (
                "op",
                r##"shape=box, style="rounded,filled", fillcolor="#ffffff""##,
            ),
            (
                "gradient op",
                r##"shape=box, style="rounded,filled", fillcolor="#fed7aa", color="#c2410c""##,
            ),
            (
                "assign",
                r##"shape=box, style="filled,bold", fillcolor="#fca5a5", color="#b91c1c""##,
            ),
            (
                "no_op (group)",
                r##"shape=octagon, style=filled, fillcolor="#bbf7d0""##,
            ),
        ];
        for (text, look) in samples {
            let _ = writeln!(
                self.out,
                "    {} [label={}, {look}];",
                quote(&format!("legend:{text}")),
                quote(text)
            );
        }
        if !self.opts.outlines.is_empty() {
            for (text, look) in [
                ("fused kernel", r##"fillcolor="#eff6ff", color="#2563eb""##),
                (
                    "GEMM + epilogue",
                    r##"fillcolor="#f5f3ff", color="#7c3aed""##,
                ),
                (
                    "interpreter step",
                    r##"fillcolor="#ffffff", color="#dc2626""##,
                ),
            ] {
                let _ = writeln!(
                    self.out,
                    "    {} [label={}, shape=box, style=\"filled,bold\", {look}];",
                    quote(&format!("legend:{text}")),
                    quote(text)
                );
            }
        }
        self.out.push_str("  }\n");
    }
}

/// The graph as Graphviz DOT text (render with `dot -Tsvg`).
pub fn to_dot(def: &GraphDef) -> String {
    to_dot_with(def, &DotOptions::default())
}

/// The graph as Graphviz DOT text with the additions of `opts`: edges between two nodes
/// of the same outline are drawn bold blue (the value never leaves the kernel).
pub fn to_dot_with(def: &GraphDef, opts: &DotOptions) -> String {
    // Each node goes into the first outline that lists it.
    let mut placement: Vec<Option<usize>> = vec![None; def.len()];
    for (o, outline) in opts.outlines.iter().enumerate() {
        for id in &outline.nodes {
            if let Some(p) = placement.get_mut(id.0) {
                p.get_or_insert(o);
            }
        }
    }
    let mut root = Scope::default();
    // Outlines live in the scope of their first node.
    for (o, outline) in opts.outlines.iter().enumerate() {
        if let Some(&first) = outline
            .nodes
            .iter()
            .find(|id| placement.get(id.0) == Some(&Some(o)))
        {
            scope_mut(&mut root, scope_of(&def.node(first).name))
                .outlines
                .push(o);
        }
    }
    for (id, n) in def.iter() {
        if placement[id.0].is_none() {
            scope_mut(&mut root, scope_of(&n.name)).nodes.push(id);
        }
    }
    let mut w = Writer {
        def,
        opts,
        placement,
        out: String::from("digraph flumen {\n"),
    };
    w.out.push_str("  compound=true;\n  rankdir=TB;\n");
    w.out
        .push_str("  node [fontname=\"Helvetica\", fontsize=10];\n");
    w.out
        .push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
    if opts.legend {
        w.legend();
    }
    w.scope(&root, "", 1);
    for (id, n) in def.iter() {
        for &i in &n.inputs {
            if let Some(src) = def.get(i) {
                let (pi, pn) = (w.placement[i.0], w.placement[id.0]);
                let extra = if pi.is_some() && pi == pn {
                    ", color=\"#2563eb\", penwidth=2".to_string()
                } else if is_gradient_name(&src.name) {
                    format!(", color=\"{GRADIENT_COLOR}\"")
                } else {
                    String::new()
                };
                let _ = writeln!(
                    w.out,
                    "  {} -> {} [label={}{extra}];",
                    quote(&src.name),
                    quote(&n.name),
                    quote(&src.ty.to_string())
                );
            }
        }
        for &c in &n.control_inputs {
            if let Some(src) = def.get(c) {
                let _ = writeln!(
                    w.out,
                    "  {} -> {} [style=dashed, color=\"#6b7280\", arrowhead=odot];",
                    quote(&src.name),
                    quote(&n.name)
                );
            }
        }
    }
    if let Some(title) = &opts.title {
        // After the clusters, so they do not inherit it as their label.
        let _ = writeln!(
            w.out,
            "  label={}; labelloc=b; fontname=\"Helvetica\";",
            quote(title)
        );
    }
    w.out.push_str("}\n");
    w.out
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

    #[test]
    fn gradient_names() {
        assert!(is_gradient_name("gradients/mul"));
        assert!(is_gradient_name("model/gradients_2/add"));
        assert!(!is_gradient_name("gradients"));
        assert!(!is_gradient_name("gradients_x/add"));
        assert!(!is_gradient_name("layer/gradient"));
    }

    /// `a/x`, `a/y = x + x`, `b/z = y * y`, `w = z - z`: an outline of `b/z` and `a/y`
    /// draws both in one box inside `b`'s scope, `a/y` with its full name, and the edge
    /// between them blue; ids past the graph are ignored.
    #[test]
    fn outlines_group_nodes_across_scopes() {
        use crate::{DType, Graph};
        let g = Graph::new();
        let (y, z) = {
            let x = {
                let _a = g.scope("a");
                g.placeholder("x", DType::F32, &[2]).unwrap()
            };
            let y = {
                let _a = g.scope("a");
                (&x + &x).unwrap()
            };
            let _b = g.scope("b");
            (y.clone(), (&y * &y).unwrap())
        };
        let w = (&z - &z).unwrap();
        let def = g.def();
        let opts = DotOptions {
            title: Some("t".into()),
            outlines: vec![Outline {
                label: "step 0: kernel".into(),
                kind: OutlineKind::Kernel,
                nodes: vec![z.id(), y.id(), NodeId(999)],
            }],
            legend: true,
        };
        let dot = to_dot_with(&def, &opts);
        let b = dot.find("subgraph \"cluster_b\"").unwrap();
        let k = dot.find("subgraph \"cluster_:0\"").unwrap();
        assert!(b < k, "{dot}");
        let inner = &dot[k..dot[k..].find("  }").unwrap() + k];
        // `a/add` is drawn outside its own scope: full name.
        assert_eq!(y.name(), "a/add");
        assert!(inner.contains("\"a/add\" [label=\"a/add\","), "{inner}");
        assert!(inner.contains(&format!("\"{}\" [label=\"mul\"", z.name())));
        assert!(dot.contains(&format!(
            "\"{}\" -> \"{}\" [label=\"f32[2]\", color=\"#2563eb\", penwidth=2];",
            y.name(),
            z.name()
        )));
        assert!(!dot.contains(&format!(
            "\"{}\" -> \"{}\" [label=\"f32[2]\", color",
            z.name(),
            w.name()
        )));
        assert!(dot.contains("\"legend:fused kernel\""));
        assert!(
            dot.trim_end()
                .ends_with("label=\"t\"; labelloc=b; fontname=\"Helvetica\";\n}")
        );
    }
}
