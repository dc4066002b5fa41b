//! The e-graph language and analysis, derived from the op table, and the conversion of a
//! [`Unit`] into an e-graph.
//!
//! Every [`Op`] maps to an e-node by one exhaustive `match` ([`kind_of`]):
//! - **pure ops** become `Sym::Op(i)` nodes, `i` indexing an interned table of `Op`
//!   values (attributes included), so every op of the table — present and future — is a
//!   symbol of the language without a second list of ops to keep in sync;
//! - **constants** become `Sym::Const(i)` leaves over an interned table of values;
//! - **pinned** nodes (state, randomness, placeholders, no-ops, anything with or targeted by
//!   control inputs) become opaque `Sym::Leaf(i)` leaves: rewrites never touch them and
//!   they are rebuilt exactly as they were, in their original order. Their data inputs are
//!   roots of the e-graph, so the pure expressions feeding them are optimised too.
//!
//! The analysis ([`Info`]) carries each class's dtype and shape (from the op's shape rule)
//! and, for classes equal to a splat constant, its value. Merging two classes of different
//! type is a bug in a rule: it is recorded in [`Tables::errors`] and the saturation fails.

use crate::pass::Unit;
use egg::{DidMerge, EGraph, Id, Language};
use flumen_frontend::op::{Op, TensorType, UnaryOp};
use flumen_frontend::{DType, GraphDef, NodeId, Value};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// The symbol of an e-node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sym {
    /// A pinned source node (index into [`Tables::leaves`]).
    Leaf(u32),
    /// A constant (index into the constant table).
    Const(u32),
    /// A pure op (index into the op table).
    Op(u32),
}

/// An e-node: a symbol applied to e-class children.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ENode {
    /// What the node computes.
    pub sym: Sym,
    /// Its inputs, in order.
    pub children: Vec<Id>,
}

impl Language for ENode {
    type Discriminant = Sym;

    fn discriminant(&self) -> Sym {
        self.sym
    }

    fn matches(&self, other: &Self) -> bool {
        self.sym == other.sym && self.children.len() == other.children.len()
    }

    fn children(&self) -> &[Id] {
        &self.children
    }

    fn children_mut(&mut self) -> &mut [Id] {
        &mut self.children
    }
}

/// The e-graph over Flumen ops.
pub type EG = EGraph<ENode, Tables>;

/// Per-class analysis data.
#[derive(Clone, Debug)]
pub struct Info {
    /// dtype and shape of every value in the class.
    pub ty: TensorType,
    /// The value of every element, when the class is a splat constant (or a view of one).
    pub scalar: Option<f64>,
}

/// The interned tables behind the symbols, and the analysis' error log.
#[derive(Debug, Default)]
pub struct Tables {
    ops: Vec<Op>,
    op_index: HashMap<String, u32>,
    consts: Vec<Value>,
    const_index: HashMap<u64, Vec<u32>>,
    /// Pinned source nodes: id and type.
    pub leaves: Vec<(NodeId, TensorType)>,
    /// Analysis errors (classes of different types merged): bugs in a rule.
    pub errors: Vec<String>,
    /// Classes whose values leave the e-graph (outputs, inputs of pinned nodes): they are
    /// used even without a parent e-node.
    pub roots: Vec<Id>,
}

fn value_hash(v: &Value) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.dtype().hash(&mut h);
    v.shape().hash(&mut h);
    match v {
        Value::F32(a) => a.iter().for_each(|x| x.to_bits().hash(&mut h)),
        Value::F64(a) => a.iter().for_each(|x| x.to_bits().hash(&mut h)),
        Value::I32(a) => a.iter().for_each(|x| x.hash(&mut h)),
        Value::I64(a) => a.iter().for_each(|x| x.hash(&mut h)),
        Value::U8(a) => a.iter().for_each(|x| x.hash(&mut h)),
        Value::Bool(a) => a.iter().for_each(|x| x.hash(&mut h)),
    }
    h.finish()
}

/// The common value of every element of `v`, if there is one and it is exact in f64.
pub fn splat(v: &Value) -> Option<f64> {
    fn all_eq<T: PartialEq + Copy>(a: &ndarray::ArrayD<T>) -> Option<T> {
        let first = *a.iter().next()?;
        a.iter().all(|x| *x == first).then_some(first)
    }
    match v {
        Value::F32(a) => all_eq(a).map(f64::from).filter(|x| !x.is_nan()),
        Value::F64(a) => all_eq(a).filter(|x| !x.is_nan()),
        Value::I32(a) => all_eq(a).map(f64::from),
        Value::I64(a) => all_eq(a)
            .filter(|x| x.unsigned_abs() < 1 << 53)
            .map(|x| x as f64),
        Value::U8(a) => all_eq(a).map(f64::from),
        Value::Bool(a) => all_eq(a).map(|b| b as u8 as f64),
    }
}

impl Tables {
    /// The symbol of a pure op (interned by its attributes).
    pub fn intern_op(&mut self, op: Op) -> Sym {
        let key = format!("{op:?}");
        if let Some(&i) = self.op_index.get(&key) {
            return Sym::Op(i);
        }
        let i = self.ops.len() as u32;
        self.ops.push(op);
        self.op_index.insert(key, i);
        Sym::Op(i)
    }

    /// The symbol of a constant (interned by value, bit for bit).
    pub fn intern_const(&mut self, v: Value) -> Sym {
        let h = value_hash(&v);
        let bucket = self.const_index.entry(h).or_default();
        if let Some(&i) = bucket.iter().find(|&&i| self.consts[i as usize].bit_eq(&v)) {
            return Sym::Const(i);
        }
        let i = self.consts.len() as u32;
        self.consts.push(v);
        bucket.push(i);
        Sym::Const(i)
    }

    /// The op of an `Op` symbol.
    pub fn op(&self, sym: Sym) -> Option<&Op> {
        match sym {
            Sym::Op(i) => Some(&self.ops[i as usize]),
            _ => None,
        }
    }

    /// The value of a `Const` symbol.
    pub fn constant(&self, sym: Sym) -> Option<&Value> {
        match sym {
            Sym::Const(i) => Some(&self.consts[i as usize]),
            _ => None,
        }
    }

    /// A short description of a symbol (`matmul`, `constant f32[2,3]`, `leaf x`).
    pub fn describe(&self, sym: Sym) -> String {
        match sym {
            Sym::Op(i) => self.ops[i as usize].name().to_string(),
            Sym::Const(i) => {
                let v = &self.consts[i as usize];
                format!("constant {}", TensorType::new(v.dtype(), v.shape()))
            }
            Sym::Leaf(i) => format!("leaf #{}", self.leaves[i as usize].0.0),
        }
    }
}

impl egg::Analysis<ENode> for Tables {
    type Data = Info;

    fn make(egraph: &mut EG, enode: &ENode, _id: Id) -> Info {
        let tables = &egraph.analysis;
        match enode.sym {
            Sym::Leaf(i) => Info {
                ty: tables.leaves[i as usize].1.clone(),
                scalar: None,
            },
            Sym::Const(i) => {
                let v = &tables.consts[i as usize];
                Info {
                    ty: TensorType::new(v.dtype(), v.shape()),
                    scalar: splat(v),
                }
            }
            Sym::Op(i) => {
                let op = tables.ops[i as usize].clone();
                let types: Vec<TensorType> = enode
                    .children
                    .iter()
                    .map(|c| egraph[*c].data.ty.clone())
                    .collect();
                let scalar = match &op {
                    Op::Reshape(_)
                    | Op::Transpose(_)
                    | Op::BroadcastTo(_)
                    | Op::Slice(_)
                    | Op::Tile(_)
                    | Op::Roll { .. }
                    | Op::Unary(UnaryOp::Identity | UnaryOp::StopGradient) => {
                        egraph[enode.children[0]].data.scalar
                    }
                    _ => None,
                };
                match op.infer(&types) {
                    Ok(ty) => Info { ty, scalar },
                    Err(e) => {
                        let msg = format!(
                            "an e-node `{}` with inputs {} is ill-typed: {e}",
                            op.name(),
                            types
                                .iter()
                                .map(|t| t.to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                        egraph.analysis.errors.push(msg);
                        Info {
                            ty: TensorType::new(DType::Bool, vec![0]),
                            scalar: None,
                        }
                    }
                }
            }
        }
    }

    fn merge(&mut self, a: &mut Info, b: Info) -> DidMerge {
        if a.ty != b.ty {
            self.errors.push(format!(
                "merged two e-classes of different types, {} and {} (a rule equated values of different shapes)",
                a.ty, b.ty
            ));
            return DidMerge(false, true);
        }
        match (a.scalar, b.scalar) {
            (None, Some(x)) => {
                a.scalar = Some(x);
                DidMerge(true, false)
            }
            (Some(x), Some(y)) if x.to_bits() != y.to_bits() => {
                self.errors.push(format!(
                    "merged two constant classes with different values, {x} and {y}"
                ));
                DidMerge(false, true)
            }
            (Some(_), None) => DidMerge(false, true),
            _ => DidMerge(false, false),
        }
    }
}

/// How a source node enters the e-graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A rewritable op.
    Pure,
    /// A constant leaf.
    Constant,
    /// Kept exactly as it is (state, randomness, feeds, groups).
    Pinned,
}

/// The e-graph kind of every op (one exhaustive match over the op table).
pub fn kind_of(op: &Op) -> Kind {
    match op {
        Op::Constant(_) => Kind::Constant,
        Op::Placeholder { .. }
        | Op::Variable { .. }
        | Op::Read
        | Op::Assign
        | Op::AssignSlice(_)
        | Op::Random { .. }
        | Op::Categorical { .. }
        | Op::NoOp => Kind::Pinned,
        Op::Composite(c) => {
            if c.is_stateful() {
                Kind::Pinned
            } else {
                Kind::Pure
            }
        }
        Op::Unary(_)
        | Op::Binary(_)
        | Op::Select
        | Op::Cast(_)
        | Op::Reduce { .. }
        | Op::ArgReduce { .. }
        | Op::Cumsum { .. }
        | Op::MatMul { .. }
        | Op::Solve
        | Op::Expm
        | Op::Reshape(_)
        | Op::Transpose(_)
        | Op::BroadcastTo(_)
        | Op::Slice(_)
        | Op::Concat { .. }
        | Op::Pad { .. }
        | Op::Tile(_)
        | Op::Roll { .. }
        | Op::Gather { .. }
        | Op::ScatterAdd { .. }
        | Op::TopK { .. }
        | Op::ArgSort { .. } => Kind::Pure,
    }
}

/// A unit in an e-graph.
pub struct Converted {
    /// The e-graph.
    pub egraph: EG,
    /// The class of each source node (pinned nodes: their leaf's class).
    pub class_of: Vec<Id>,
    /// Whether each source node is pinned.
    pub pinned: Vec<bool>,
}

/// Which source nodes are pinned: pinned ops, and nodes with or targeted by control inputs.
pub fn pinned_nodes(def: &GraphDef) -> Vec<bool> {
    let mut pinned: Vec<bool> = def
        .nodes()
        .iter()
        .map(|n| kind_of(&n.op) == Kind::Pinned || !n.control_inputs.is_empty())
        .collect();
    for n in def.nodes() {
        for c in &n.control_inputs {
            pinned[c.0] = true;
        }
    }
    pinned
}

/// Put every node of `unit` into a fresh e-graph.
pub fn to_egraph(unit: &Unit) -> Converted {
    let def = &unit.def;
    let pinned = pinned_nodes(def);
    let mut egraph = EG::new(Tables::default());
    let mut class_of = Vec::with_capacity(def.len());
    for (id, node) in def.iter() {
        let enode = if pinned[id.0] {
            let i = egraph.analysis.leaves.len() as u32;
            egraph.analysis.leaves.push((id, node.ty.clone()));
            ENode {
                sym: Sym::Leaf(i),
                children: vec![],
            }
        } else if let Op::Constant(v) = &node.op {
            ENode {
                sym: egraph.analysis.intern_const(v.clone()),
                children: vec![],
            }
        } else {
            ENode {
                sym: egraph.analysis.intern_op(node.op.clone()),
                children: node.inputs.iter().map(|i| class_of[i.0]).collect(),
            }
        };
        class_of.push(egraph.add(enode));
    }
    egraph.rebuild();
    Converted {
        egraph,
        class_of,
        pinned,
    }
}

/// A term to add to the e-graph: what a rule equates with the class it matched.
#[derive(Clone, Debug)]
pub enum Term {
    /// An existing class.
    Class(Id),
    /// An op applied to terms.
    Op(Op, Vec<Term>),
    /// A constant.
    Const(Value),
    /// The value of `output` in `def`, a graph of pure ops whose placeholders are bound to
    /// classes (used to insert subgraphs built with the frontend DSL).
    Graph {
        /// The subgraph.
        def: GraphDef,
        /// Placeholder → class.
        bind: Vec<(NodeId, Id)>,
        /// The node whose value is the term.
        output: NodeId,
    },
}

/// Add a term; an ill-typed term is an error (a rule bug).
pub fn add_term(eg: &mut EG, term: &Term) -> Result<Id, String> {
    match term {
        Term::Class(id) => Ok(eg.find(*id)),
        Term::Const(v) => {
            let sym = eg.analysis.intern_const(v.clone());
            Ok(eg.add(ENode {
                sym,
                children: vec![],
            }))
        }
        Term::Op(op, args) => {
            let children = args
                .iter()
                .map(|a| add_term(eg, a))
                .collect::<Result<Vec<_>, _>>()?;
            add_op(eg, op.clone(), children)
        }
        Term::Graph { def, bind, output } => {
            let mut ids: Vec<Option<Id>> = vec![None; def.len()];
            for (n, c) in bind {
                ids[n.0] = Some(*c);
            }
            for (id, node) in def.iter().take(output.0 + 1) {
                if ids[id.0].is_some() {
                    continue;
                }
                let new = match (&node.op, kind_of(&node.op)) {
                    (Op::Constant(v), _) => add_term(eg, &Term::Const(v.clone()))?,
                    (_, Kind::Pure) if node.control_inputs.is_empty() => {
                        let children = node
                            .inputs
                            .iter()
                            .map(|i| ids[i.0].ok_or_else(|| format!("unbound input {i}")))
                            .collect::<Result<Vec<_>, _>>()?;
                        add_op(eg, node.op.clone(), children)?
                    }
                    _ => {
                        return Err(format!(
                            "a subgraph term holds `{}` {}, which is not a pure op",
                            node.name,
                            node.op.name()
                        ));
                    }
                };
                ids[id.0] = Some(new);
            }
            ids[output.0].ok_or_else(|| "the subgraph output is unbound".to_string())
        }
    }
}

/// Add `op(children)` after checking its shape rule.
pub fn add_op(eg: &mut EG, op: Op, children: Vec<Id>) -> Result<Id, String> {
    let types: Vec<TensorType> = children.iter().map(|c| eg[*c].data.ty.clone()).collect();
    if let Err(e) = op.infer(&types) {
        let shown: Vec<String> = types.iter().map(|t| t.to_string()).collect();
        return Err(format!(
            "`{}` on {} is ill-typed: {e}",
            op.name(),
            shown.join(", ")
        ));
    }
    let sym = eg.analysis.intern_op(op);
    Ok(eg.add(ENode { sym, children }))
}
