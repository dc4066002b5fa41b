//! The graph IR: [`GraphDef`], a plain list of typed nodes in topological order, and
//! [`Graph`], the shared, explicitly passed builder handle that user code extends.
//!
//! Invariants (checked by `flumen_compiler::verify`): every input and control input of node
//! `i` has an id `< i` (so id order is a topological order), names are unique and
//! well-formed, and each node's type is what its op's shape rule gives for its inputs.

use crate::error::{BuildError, GraphError, Result, SourceLoc};
use crate::op::{Op, TensorType};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Index of a node within its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One node: an op applied to ordered inputs, producing one typed output.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Unique, scoped name (`layer1/W`).
    pub name: String,
    /// The op and its attributes.
    pub op: Op,
    /// Ordered data inputs.
    pub inputs: Vec<NodeId>,
    /// Nodes that must run before this one (no data flows).
    pub control_inputs: Vec<NodeId>,
    /// Output dtype and shape.
    pub ty: TensorType,
}

/// Whether `name` is a well-formed node name: `/`-separated segments of
/// `[A-Za-z0-9_.-]`, none empty.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        })
}

/// A graph as plain data: nodes in topological (id) order.
#[derive(Clone, Default)]
pub struct GraphDef {
    nodes: Vec<Node>,
    by_name: HashMap<String, NodeId>,
}

impl PartialEq for GraphDef {
    fn eq(&self, other: &Self) -> bool {
        self.nodes == other.nodes
    }
}

impl fmt::Debug for GraphDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl GraphDef {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// The nodes, in id order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node with id `id`. Panics on an id from elsewhere; use [`GraphDef::get`] for
    /// untrusted ids.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// The node with id `id`, if it exists.
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.0)
    }

    /// Look a node up by name.
    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.by_name.get(name).copied()
    }

    /// Iterate over `(id, node)`.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes.iter().enumerate().map(|(i, n)| (NodeId(i), n))
    }

    /// A name not yet used: `base`, else `base_1`, `base_2`, ...
    pub fn unique_name(&self, base: &str) -> String {
        if !self.by_name.contains_key(base) {
            return base.to_string();
        }
        (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|n| !self.by_name.contains_key(n))
            .expect("infinite")
    }

    /// Add a node after checking arity, inputs, name and the op's shape/dtype rule.
    /// `name` must be unused and well-formed.
    pub fn add(
        &mut self,
        op: Op,
        inputs: &[NodeId],
        control_inputs: &[NodeId],
        name: String,
        location: Option<SourceLoc>,
    ) -> Result<NodeId> {
        let err = |kind: BuildError| GraphError::Build {
            op: op.name().to_string(),
            node: name.clone(),
            kind,
            location,
        };
        if !is_valid_name(&name) {
            return Err(err(BuildError::Name(format!(
                "invalid node name `{name}`: use `/`-separated segments of letters, digits, `_`, `.` and `-`"
            ))));
        }
        if self.by_name.contains_key(&name) {
            return Err(err(BuildError::Name(format!(
                "the name `{name}` is already taken in this graph"
            ))));
        }
        for id in inputs.iter().chain(control_inputs) {
            if id.0 >= self.nodes.len() {
                return Err(err(BuildError::UnknownNode(id.0)));
            }
        }
        let types: Vec<TensorType> = inputs.iter().map(|i| self.nodes[i.0].ty.clone()).collect();
        let ty = op.infer(&types).map_err(err)?;
        if matches!(op, Op::Assign | Op::AssignSlice(_) | Op::Read)
            && !matches!(self.nodes[inputs[0].0].op, Op::Variable { .. })
        {
            return Err(err(BuildError::Attribute(format!(
                "input 0 must be a variable, got {} `{}`",
                self.nodes[inputs[0].0].op.name(),
                self.nodes[inputs[0].0].name
            ))));
        }
        let id = NodeId(self.nodes.len());
        self.by_name.insert(name.clone(), id);
        self.nodes.push(Node {
            name,
            op,
            inputs: inputs.to_vec(),
            control_inputs: control_inputs.to_vec(),
            ty,
        });
        Ok(id)
    }

    /// Rename node `id` (the new name must be well-formed and unused).
    pub fn rename(&mut self, id: NodeId, name: String) -> Result<()> {
        let node = self
            .get(id)
            .ok_or_else(|| GraphError::invalid(format!("no node with id {}", id.0)))?;
        if node.name == name {
            return Ok(());
        }
        let err = |msg: String| GraphError::Build {
            op: node.op.name().to_string(),
            node: node.name.clone(),
            kind: BuildError::Name(msg),
            location: None,
        };
        if !is_valid_name(&name) {
            return Err(err(format!("invalid node name `{name}`")));
        }
        if self.by_name.contains_key(&name) {
            return Err(err(format!(
                "the name `{name}` is already taken in this graph"
            )));
        }
        let old = std::mem::replace(&mut self.nodes[id.0].name, name.clone());
        self.by_name.remove(&old);
        self.by_name.insert(name, id);
        Ok(())
    }

    /// Nodes that `roots` depend on (data and control), including the roots, as a mask
    /// indexed by id. A variable's initial-value input is not followed unless
    /// `with_initializers` is set.
    pub fn reachable(&self, roots: &[NodeId], with_initializers: bool) -> Vec<bool> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = roots.to_vec();
        while let Some(id) = stack.pop() {
            if std::mem::replace(&mut seen[id.0], true) {
                continue;
            }
            let n = &self.nodes[id.0];
            if matches!(n.op, Op::Variable { .. }) && !with_initializers {
                stack.extend(&n.control_inputs);
                continue;
            }
            stack.extend(n.inputs.iter().chain(&n.control_inputs));
        }
        seen
    }

    /// Ids of the nodes that use `id` as a data input.
    pub fn consumers(&self) -> Vec<Vec<NodeId>> {
        let mut out = vec![Vec::new(); self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            for inp in &n.inputs {
                out[inp.0].push(NodeId(i));
            }
        }
        out
    }
}

#[derive(Default)]
struct Builder {
    def: GraphDef,
    scopes: Vec<String>,
    control: Vec<Vec<NodeId>>,
    seed: u64,
    next_seed: u64,
}

/// An explicit graph under construction, shared by every [`Tensor`](crate::Tensor) handle
/// built on it. Cloning a `Graph` clones the handle, not the graph.
#[derive(Clone, Default)]
pub struct Graph {
    inner: Arc<RwLock<Builder>>,
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Graph({} nodes)", self.read().def.len())
    }
}

/// Restores the enclosing name scope when dropped (see [`Graph::scope`]).
pub struct ScopeGuard {
    graph: Graph,
    depth: usize,
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        self.graph.write().scopes.truncate(self.depth);
    }
}

/// Removes control dependencies pushed by [`Graph::control_dependencies`] when dropped.
pub struct ControlGuard {
    graph: Graph,
    depth: usize,
}

impl Drop for ControlGuard {
    fn drop(&mut self) {
        self.graph.write().control.truncate(self.depth);
    }
}

impl Graph {
    /// A new, empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// A graph holding a copy of `def` (e.g. one parsed from text).
    pub fn from_def(def: GraphDef) -> Self {
        let g = Graph::new();
        let n = def.len() as u64;
        {
            let mut b = g.write();
            b.def = def;
            b.next_seed = n;
        }
        g
    }

    fn read(&self) -> RwLockReadGuard<'_, Builder> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Builder> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether two handles refer to the same graph.
    pub fn same_graph(&self, other: &Graph) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// A snapshot of the graph as plain data.
    pub fn def(&self) -> GraphDef {
        self.read().def.clone()
    }

    /// Run `f` on the graph's data without copying it.
    pub fn with_def<T>(&self, f: impl FnOnce(&GraphDef) -> T) -> T {
        f(&self.read().def)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.read().def.len()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of node `id`.
    pub fn node(&self, id: NodeId) -> Option<Node> {
        self.read().def.get(id).cloned()
    }

    /// Enter a name scope: nodes built while the guard lives are named `scope/...`.
    /// Scopes nest.
    pub fn scope(&self, name: &str) -> ScopeGuard {
        let mut b = self.write();
        let depth = b.scopes.len();
        b.scopes.push(name.trim_matches('/').to_string());
        ScopeGuard {
            graph: self.clone(),
            depth,
        }
    }

    /// The current scope prefix (`a/b`), empty at top level.
    pub fn current_scope(&self) -> String {
        self.read().scopes.join("/")
    }

    /// Nodes built while the guard lives get control inputs on `deps` (TF1's
    /// `control_dependencies`).
    pub fn control_dependencies(&self, deps: &[&crate::Tensor]) -> Result<ControlGuard> {
        for d in deps {
            self.check_same(d)?;
        }
        let mut b = self.write();
        let depth = b.control.len();
        b.control.push(deps.iter().map(|t| t.id()).collect());
        Ok(ControlGuard {
            graph: self.clone(),
            depth,
        })
    }

    /// Set the graph-level seed from which random ops without an explicit seed derive theirs.
    pub fn set_seed(&self, seed: u64) {
        self.write().seed = seed;
    }

    /// A fresh seed for a random op: derived from the graph seed and a counter.
    pub fn next_seed(&self) -> u64 {
        let mut b = self.write();
        b.next_seed += 1;
        let mut z = b
            .seed
            .wrapping_add(b.next_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) >> 1
    }

    pub(crate) fn check_same(&self, t: &crate::Tensor) -> Result<()> {
        if self.same_graph(t.graph()) {
            Ok(())
        } else {
            Err(GraphError::Build {
                op: "input".into(),
                node: t.name(),
                kind: BuildError::ForeignGraph(t.name()),
                location: None,
            })
        }
    }

    /// Add a node: `name` (or the op's name) is placed in the current scope and made unique
    /// when it was not given explicitly; an explicit name that is taken is an error.
    /// Inputs must belong to this graph. The caller's source location is recorded in errors.
    #[track_caller]
    pub fn add_op(
        &self,
        op: Op,
        inputs: &[&crate::Tensor],
        control_inputs: &[&crate::Tensor],
        name: Option<&str>,
    ) -> Result<crate::Tensor> {
        let location = Some(SourceLoc(std::panic::Location::caller()));
        for t in inputs.iter().chain(control_inputs) {
            if !self.same_graph(t.graph()) {
                return Err(GraphError::Build {
                    op: op.name().to_string(),
                    node: name.unwrap_or(op.name()).to_string(),
                    kind: BuildError::ForeignGraph(t.name()),
                    location,
                });
            }
        }
        let mut b = self.write();
        let prefix = b.scopes.join("/");
        let full = |base: &str| {
            if prefix.is_empty() {
                base.to_string()
            } else {
                format!("{prefix}/{base}")
            }
        };
        let node_name = match name {
            Some(n) => full(n),
            None => b.def.unique_name(&full(op.name())),
        };
        let ids: Vec<NodeId> = inputs.iter().map(|t| t.id()).collect();
        let mut ctl: Vec<NodeId> = control_inputs.iter().map(|t| t.id()).collect();
        for c in b.control.iter().flatten() {
            if !ctl.contains(c) {
                ctl.push(*c);
            }
        }
        let id = b.def.add(op, &ids, &ctl, node_name, location)?;
        drop(b);
        Ok(crate::Tensor::new(self.clone(), id))
    }

    /// Rename the node of `t`, keeping its scope: `layer1/add` renamed `sum` becomes
    /// `layer1/sum`.
    #[track_caller]
    pub fn rename(&self, t: &crate::Tensor, name: &str) -> Result<()> {
        self.check_same(t)?;
        let mut b = self.write();
        let old = b.def.node(t.id()).name.clone();
        let full = match old.rfind('/') {
            Some(i) => format!("{}/{name}", &old[..i]),
            None => name.to_string(),
        };
        b.def.rename(t.id(), full)
    }

    /// A handle to an existing node, by name.
    pub fn get(&self, name: &str) -> Option<crate::Tensor> {
        let id = self.read().def.find(name)?;
        Some(crate::Tensor::new(self.clone(), id))
    }

    /// A handle to an existing node, by id.
    pub fn tensor(&self, id: NodeId) -> Option<crate::Tensor> {
        (id.0 < self.len()).then(|| crate::Tensor::new(self.clone(), id))
    }

    /// Handles to every variable node, in id order.
    pub fn variables(&self) -> Vec<crate::Tensor> {
        let ids: Vec<NodeId> = self
            .read()
            .def
            .iter()
            .filter(|(_, n)| matches!(n.op, Op::Variable { .. }))
            .map(|(i, _)| i)
            .collect();
        ids.into_iter()
            .map(|i| crate::Tensor::new(self.clone(), i))
            .collect()
    }

    /// Handles to the trainable variables, in id order.
    pub fn trainable_variables(&self) -> Vec<crate::Tensor> {
        let ids: Vec<NodeId> = self
            .read()
            .def
            .iter()
            .filter(|(_, n)| matches!(n.op, Op::Variable { trainable: true }))
            .map(|(i, _)| i)
            .collect();
        ids.into_iter()
            .map(|i| crate::Tensor::new(self.clone(), i))
            .collect()
    }
}
