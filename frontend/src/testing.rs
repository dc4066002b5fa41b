//! Proptest strategies for property tests in every crate (enable the `testing` feature):
//! random dtypes, shapes, values and, above all, random well-typed graphs ([`arb_graph`]).
//!
//! A random graph is built from a list of *steps*, each an op family and a 64-bit seed that
//! drives a small deterministic generator. A step picks its inputs among the nodes built so
//! far (or builds a fitting constant or placeholder for them) and adds its node through
//! [`GraphDef::add`]; a candidate the shape rule rejects is skipped. The result depends only
//! on the steps, so it is reproducible from proptest's seed, and proptest shrinks a failing
//! graph by dropping steps.
//!
//! Coverage: placeholders of every dtype and of shapes with zero-size axes; constants with
//! NaNs (with payloads and sign), infinities, `-0.0`, subnormals and extreme integers;
//! variables initialised from constants, random ops or other nodes; `assign`,
//! `assign_slice` and ordered `read`s; every unary and binary op with broadcasting;
//! `select`, `cast`, reductions with and without `keepdims`, `argmax`/`argmin`, `cumsum`,
//! `matmul` with transposes and batch axes, `reshape`, `transpose`, `broadcast_to`,
//! strided `slice` (negative steps included), `concat`, `pad`, `tile`, `roll`, `gather`,
//! `scatter_add`, `top_k`, `argsort`, every random op and `categorical`, the `softmax`
//! composite, and `no_op` groups; any node may get control inputs. Names use nested scopes.
//!
//! [`arb_graph_ext`] draws from [`EXT_STEP_KINDS`] families: those of [`arb_graph`] plus
//! families aimed at the compiler: every composite op, chains of elementwise ops on one
//! value (fusion), dense layers (`matmul` + bias + activation), reductions of layout views,
//! normalisation patterns (`x - reduce(x)` with `keepdims`) and chains of layout ops ending
//! in an elementwise op or a reduction (index maps composed through several views). [`feed_value`] makes
//! random placeholder feeds.
//!
//! Float *attributes* (random-op parameters, pad values) are never NaN, because `Op`
//! compares them with `==` and a graph holding one would not equal itself; NaNs appear in
//! tensor values, which compare bitwise.

use crate::dtype::DType;
use crate::graph::{GraphDef, Node, NodeId};
use crate::op::{
    ArgReduceOp, BinaryOp, Composite, Distribution, Op, ReduceOp, UnaryOp, broadcast_shapes,
};
use crate::value::Value;
use proptest::prelude::*;
use rng::Rng;

mod rng;

/// Any dtype.
pub fn arb_dtype() -> impl Strategy<Value = DType> {
    prop::sample::select(DType::ALL.to_vec())
}

/// A shape of rank `0..=max_rank` with dimensions in `0..=max_dim`.
pub fn arb_shape(max_rank: usize, max_dim: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..=max_dim, 0..=max_rank)
}

/// A tensor value of any dtype and a shape of rank at most 3 with dimensions at most 4,
/// with special floats (NaNs with payloads, infinities, `-0.0`, subnormals) and extreme
/// integers mixed in.
pub fn arb_value() -> impl Strategy<Value = Value> {
    (arb_dtype(), arb_shape(3, 4), any::<u64>())
        .prop_map(|(dtype, shape, seed)| Rng(seed).value(dtype, &shape))
}

/// A random well-typed graph of at most `max_nodes` nodes (see the [module docs](self)).
pub fn arb_graph(max_nodes: usize) -> impl Strategy<Value = GraphDef> {
    prop::collection::vec((0..STEP_KINDS, any::<u64>()), 1..=max_nodes.max(1) * 2)
        .prop_map(move |steps| graph_from_steps(&steps, max_nodes))
}

/// The graph [`arb_graph`] builds from `steps` (each an op family `0..STEP_KINDS`, taken
/// modulo, and a seed): useful to turn a failing case into a fixed regression test.
pub fn graph_from_steps(steps: &[(u8, u64)], max_nodes: usize) -> GraphDef {
    let mut g = Gen {
        def: GraphDef::new(),
        rng: Rng(0),
    };
    for &(kind, seed) in steps {
        if g.def.len() >= max_nodes {
            break;
        }
        g.rng = Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B);
        g.step(kind % STEP_KINDS);
    }
    truncate(&g.def, max_nodes)
}

/// Number of op families a step can choose from.
pub const STEP_KINDS: u8 = 27;

/// Number of op families a step of [`arb_graph_ext`] can choose from: the
/// [`STEP_KINDS`] of [`arb_graph`] and six more (composites, elementwise chains, dense
/// layers, reductions of views, normalisation patterns, chains of layout ops).
pub const EXT_STEP_KINDS: u8 = STEP_KINDS + 6;

/// A random well-typed graph of at most `max_nodes` nodes drawn from every family of
/// [`arb_graph`] and the compiler-oriented ones of [`EXT_STEP_KINDS`] (see the
/// [module docs](self)).
pub fn arb_graph_ext(max_nodes: usize) -> impl Strategy<Value = GraphDef> {
    prop::collection::vec((0..EXT_STEP_KINDS, any::<u64>()), 1..=max_nodes.max(1) * 2)
        .prop_map(move |steps| graph_from_ext_steps(&steps, max_nodes))
}

/// The graph [`arb_graph_ext`] builds from `steps` (each an op family `0..EXT_STEP_KINDS`,
/// taken modulo, and a seed).
pub fn graph_from_ext_steps(steps: &[(u8, u64)], max_nodes: usize) -> GraphDef {
    let mut g = Gen {
        def: GraphDef::new(),
        rng: Rng(0),
    };
    for &(kind, seed) in steps {
        if g.def.len() >= max_nodes {
            break;
        }
        g.rng = Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B);
        let kind = kind % EXT_STEP_KINDS;
        if kind < STEP_KINDS {
            g.step(kind);
        } else {
            g.ext_step(kind - STEP_KINDS);
        }
    }
    truncate(&g.def, max_nodes)
}

/// A random value of `dtype` and `shape` determined by `seed`, with the special values of
/// the generated constants mixed in (as [`arb_value`] makes them).
pub fn special_value(dtype: DType, shape: &[usize], seed: u64) -> Value {
    Rng(seed).value(dtype, shape)
}

/// A random value of `dtype` and `shape` to feed a placeholder, determined by `seed`.
/// One feed in four mixes in the special values of the generated constants (NaNs with
/// payloads, infinities, `-0.0`, subnormals, arbitrary bit patterns, extreme integers); the
/// others are ordinary: floats uniform in `[-4, 4)`, integers in `-10..=10` (u8: any),
/// bools fair.
pub fn feed_value(dtype: DType, shape: &[usize], seed: u64) -> Value {
    let mut r = Rng(seed ^ 0x0F0E_EDFE_EDF0_0D5E);
    if r.one_in(4) {
        return r.value(dtype, shape);
    }
    let n: usize = shape.iter().product();
    let unit = |r: &mut Rng| (r.next() >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 4.0;
    let v = match dtype {
        DType::F32 => Value::from_vec(shape, r.vec(n, |r| unit(r) as f32)),
        DType::F64 => Value::from_vec(shape, r.vec(n, unit)),
        DType::I32 => Value::from_vec(shape, r.vec(n, |r| r.below(21) as i32 - 10)),
        DType::I64 => Value::from_vec(shape, r.vec(n, |r| r.below(21) as i64 - 10)),
        DType::U8 => Value::from_vec(shape, r.vec(n, |r| r.next() as u8)),
        DType::Bool => Value::from_vec(shape, r.vec(n, |r| r.one_in(2))),
    };
    v.expect("the element count matches the shape")
}

/// The first `n` nodes of `def` (their inputs are earlier nodes, so they form a graph).
fn truncate(def: &GraphDef, n: usize) -> GraphDef {
    if def.len() <= n {
        return def.clone();
    }
    let mut out = GraphDef::new();
    for node in &def.nodes()[..n] {
        out.add(
            node.op.clone(),
            &node.inputs,
            &node.control_inputs,
            node.name.clone(),
            None,
        )
        .expect("a prefix of a valid graph is valid");
    }
    out
}

/// Scopes random nodes are placed in (`W` is also a node name now and then).
const SCOPES: [&str; 6] = ["", "", "layer1", "layer1/dense", "net.v2/block-3", "W"];

/// The graph under construction.
struct Gen {
    def: GraphDef,
    rng: Rng,
}

impl Gen {
    fn node(&self, id: NodeId) -> &Node {
        self.def.node(id)
    }

    /// A fresh name `scope/base` in a random scope.
    fn name(&mut self, base: &str) -> String {
        let scope = self.rng.pick(&SCOPES);
        let full = if scope.is_empty() {
            base.to_string()
        } else {
            format!("{scope}/{base}")
        };
        self.def.unique_name(&full)
    }

    /// Add a node named `name`, or `None` when the shape rule rejects it.
    fn add_named(&mut self, op: Op, inputs: &[NodeId], name: String) -> Option<NodeId> {
        let mut control = Vec::new();
        if !self.def.is_empty() && self.rng.one_in(8) {
            for _ in 0..1 + self.rng.below(2) {
                let c = NodeId(self.rng.below(self.def.len()));
                if !control.contains(&c) {
                    control.push(c);
                }
            }
        }
        self.def.add(op, inputs, &control, name, None).ok()
    }

    /// Add a node in a random scope, named after its op.
    fn add(&mut self, op: Op, inputs: &[NodeId]) -> Option<NodeId> {
        let name = self.name(op.name());
        self.add_named(op, inputs, name)
    }

    /// A random existing node satisfying `pred`.
    fn pick(&mut self, pred: impl Fn(&Node) -> bool) -> Option<NodeId> {
        let ids: Vec<NodeId> = self
            .def
            .iter()
            .filter(|(_, n)| pred(n))
            .map(|(i, _)| i)
            .collect();
        (!ids.is_empty()).then(|| self.rng.pick(&ids))
    }

    /// An existing node satisfying `pred`, else a new placeholder of `dtype` with a shape
    /// made by `shape` (which should satisfy `pred`).
    fn pick_or_make(
        &mut self,
        pred: impl Fn(&Node) -> bool,
        dtype: DType,
        shape: impl FnOnce(&mut Rng) -> Vec<usize>,
    ) -> Option<NodeId> {
        if !self.rng.one_in(4)
            && let Some(id) = self.pick(&pred)
        {
            return Some(id);
        }
        let shape = shape(&mut self.rng);
        self.placeholder(dtype, shape)
    }

    fn placeholder(&mut self, dtype: DType, shape: Vec<usize>) -> Option<NodeId> {
        self.add(Op::Placeholder { dtype, shape }, &[])
    }

    fn constant(&mut self, dtype: DType, shape: &[usize]) -> Option<NodeId> {
        let v = self.rng.value(dtype, shape);
        self.add(Op::Constant(v), &[])
    }

    /// A node of exactly this type: an existing one or a new constant.
    fn of_type(&mut self, dtype: DType, shape: &[usize]) -> Option<NodeId> {
        if self.rng.one_in(2)
            && let Some(id) = self.pick(|n| n.ty.dtype == dtype && n.ty.shape == shape)
        {
            return Some(id);
        }
        self.constant(dtype, shape)
    }

    fn random_axis(&mut self, id: NodeId) -> usize {
        let r = self.node(id).ty.rank();
        self.rng.below(r)
    }

    /// Run one step of op family `kind`; `None` when it added nothing.
    fn step(&mut self, kind: u8) -> Option<NodeId> {
        match kind {
            0 | 1 => {
                let (d, s) = (self.rng.dtype(), self.rng.shape());
                self.placeholder(d, s)
            }
            2 => {
                let (d, s) = (self.rng.dtype(), self.rng.shape());
                self.constant(d, &s)
            }
            3 => self.variable(),
            4 => self.assign(),
            5 => self.read(),
            6 | 7 => {
                let u = self.rng.pick(&UnaryOp::ALL);
                let d = self.rng.dtype();
                let x = self.pick_or_make(|n| u.dtypes().accepts(n.ty.dtype), d, Rng::shape);
                x.and_then(|x| self.add(Op::Unary(u), &[x]))
            }
            8 | 9 => self.binary(),
            10 => self.select(),
            11 => {
                let x = self.pick(|_| true);
                let d = self.rng.dtype();
                x.and_then(|x| self.add(Op::Cast(d), &[x]))
            }
            12 => self.reduce(),
            13 => {
                let x = self.pick_or_make(numeric_ranked, DType::F32, rank1)?;
                let dims = &self.node(x).ty.shape;
                let nonempty: Vec<usize> = (0..dims.len()).filter(|&a| dims[a] > 0).collect();
                let op = Op::ArgReduce {
                    op: self.rng.pick(&[ArgReduceOp::ArgMax, ArgReduceOp::ArgMin]),
                    axis: if nonempty.is_empty() {
                        0
                    } else {
                        self.rng.pick(&nonempty)
                    },
                    dtype: self.rng.index_dtype(),
                };
                self.add(op, &[x])
            }
            14 => {
                let x = self.pick_or_make(numeric_ranked, DType::I32, rank1)?;
                let op = Op::Cumsum {
                    axis: self.random_axis(x),
                    exclusive: self.rng.one_in(2),
                    reverse: self.rng.one_in(2),
                };
                self.add(op, &[x])
            }
            15 => self.matmul(),
            16 => {
                let x = self.pick(|_| true)?;
                let (r, shape) = (&mut self.rng, &self.def.node(x).ty.shape);
                let op = match r.below(3) {
                    0 => Op::Reshape(r.reshape(shape)),
                    1 => Op::Transpose(r.permutation(shape.len())),
                    _ => {
                        let mut target: Vec<usize> = shape
                            .iter()
                            .map(|&d| if d == 1 { r.below(4) } else { d })
                            .collect();
                        for _ in 0..r.below(3) {
                            target.insert(0, r.dim());
                        }
                        Op::BroadcastTo(target)
                    }
                };
                self.add(op, &[x])
            }
            17 => {
                let x = self.pick(|_| true)?;
                let spec = self.rng.slice(&self.def.node(x).ty.shape);
                self.add(Op::Slice(spec), &[x])
            }
            18 => self.concat(),
            19 => {
                let x = self.pick(|_| true)?;
                let ty = self.node(x).ty.clone();
                let r = &mut self.rng;
                let op = match r.below(3) {
                    0 => Op::Pad {
                        paddings: ty.shape.iter().map(|_| (r.below(3), r.below(3))).collect(),
                        value: r.pad_value(ty.dtype),
                    },
                    1 => Op::Tile(ty.shape.iter().map(|_| r.below(4)).collect()),
                    _ if ty.rank() == 0 => return None,
                    _ => Op::Roll {
                        shift: if r.one_in(4) {
                            r.int_elem()
                        } else {
                            r.below(9) as i64 - 4
                        },
                        axis: r.below(ty.rank()),
                    },
                };
                self.add(op, &[x])
            }
            20 => self.gather(),
            21 => self.scatter_add(),
            22 => {
                let x = self.pick_or_make(numeric_ranked, DType::F64, rank1)?;
                let op = if self.rng.one_in(2) {
                    let last = *self.node(x).ty.shape.last()?;
                    Op::TopK {
                        k: self.rng.below(last + 1),
                    }
                } else {
                    Op::ArgSort {
                        axis: self.random_axis(x),
                        descending: self.rng.one_in(2),
                    }
                };
                self.add(op, &[x])
            }
            23 => self.random_op(),
            24 => {
                let logits = self.pick_or_make(
                    |n| n.ty.dtype.is_float() && n.ty.rank() == 2 && n.ty.shape[1] > 0,
                    DType::F32,
                    |r| vec![r.below(4), 1 + r.below(4)],
                )?;
                let op = Op::Categorical {
                    num_samples: self.rng.below(4),
                    dtype: self.rng.index_dtype(),
                    seed: self.rng.next(),
                };
                self.add(op, &[logits])
            }
            25 => {
                let d = self.rng.float_dtype();
                let x =
                    self.pick_or_make(|n| n.ty.dtype.is_float() && n.ty.rank() > 0, d, rank1)?;
                let axis = self.random_axis(x);
                self.add(Op::Composite(Composite::Softmax { axis }), &[x])
            }
            _ => {
                // A group: a no_op with control inputs on assignments and other nodes.
                let mut deps: Vec<NodeId> = Vec::new();
                for _ in 0..1 + self.rng.below(3) {
                    let d = if self.rng.one_in(2) {
                        self.pick(|n| n.op.is_assign())
                    } else {
                        self.pick(|_| true)
                    };
                    if let Some(d) = d.filter(|d| !deps.contains(d)) {
                        deps.push(d);
                    }
                }
                let name = self.name("train");
                self.def.add(Op::NoOp, &[], &deps, name, None).ok()
            }
        }
    }

    fn is_variable(n: &Node) -> bool {
        matches!(n.op, Op::Variable { .. })
    }

    /// A variable initialised from a new constant, a new random op or an existing node.
    fn variable(&mut self) -> Option<NodeId> {
        let base = self.rng.pick(&["v", "W", "b"]);
        let name = self.name(base);
        let init = match self.rng.below(3) {
            0 => {
                let (d, s) = (self.rng.dtype(), self.rng.shape());
                let v = self.rng.value(d, &s);
                let init_name = self.def.unique_name(&format!("{name}/initial_value"));
                self.add_named(Op::Constant(v), &[], init_name)?
            }
            1 => {
                let op = self.random_spec();
                let init_name = self.def.unique_name(&format!("{name}/initializer"));
                self.add_named(op, &[], init_name)?
            }
            _ => self.pick(|_| true)?,
        };
        let trainable = !self.rng.one_in(3);
        self.add_named(Op::Variable { trainable }, &[init], name)
    }

    /// `assign` or `assign_slice` of a variable.
    fn assign(&mut self) -> Option<NodeId> {
        let var = match self.pick(Self::is_variable) {
            Some(v) => v,
            None => self.variable()?,
        };
        let ty = self.node(var).ty.clone();
        if self.rng.one_in(2) {
            let spec = self.rng.slice(&ty.shape);
            let value = self.of_type(ty.dtype, &spec.out_shape())?;
            self.add(Op::AssignSlice(spec), &[var, value])
        } else {
            let value = self.of_type(ty.dtype, &ty.shape)?;
            self.add(Op::Assign, &[var, value])
        }
    }

    /// A `read` of a variable, usually ordered after one of its assignments.
    fn read(&mut self) -> Option<NodeId> {
        let var = match self.pick(Self::is_variable) {
            Some(v) => v,
            None => self.variable()?,
        };
        let writes: Vec<NodeId> = self
            .def
            .iter()
            .filter(|(_, n)| n.op.is_assign() && n.inputs[0] == var)
            .map(|(i, _)| i)
            .collect();
        let after = if writes.is_empty() || self.rng.one_in(3) {
            vec![]
        } else {
            vec![self.rng.pick(&writes)]
        };
        let name = self.name("read");
        self.def.add(Op::Read, &[var], &after, name, None).ok()
    }

    /// A binary op on two broadcast-compatible operands.
    fn binary(&mut self) -> Option<NodeId> {
        let op = self.rng.pick(&BinaryOp::ALL);
        let d = self.rng.dtype();
        let a = self.pick_or_make(|n| op.dtypes().accepts(n.ty.dtype), d, Rng::shape)?;
        let ty = self.node(a).ty.clone();
        let b = if self.rng.one_in(3) {
            self.pick(|n| {
                n.ty.dtype == ty.dtype && broadcast_shapes(&n.ty.shape, &ty.shape).is_some()
            })?
        } else {
            let s = self.rng.broadcastable(&ty.shape);
            self.constant(ty.dtype, &s)?
        };
        let inputs = if self.rng.one_in(2) { [a, b] } else { [b, a] };
        self.add(Op::Binary(op), &inputs)
    }

    /// `select(cond, a, b)` with broadcasting.
    fn select(&mut self) -> Option<NodeId> {
        let a = self.pick(|_| true)?;
        let ty = self.node(a).ty.clone();
        let b = if self.rng.one_in(2) {
            a
        } else {
            let s = self.rng.broadcastable(&ty.shape);
            self.constant(ty.dtype, &s)?
        };
        let cond = match self.pick(|n| {
            n.ty.dtype == DType::Bool && broadcast_shapes(&n.ty.shape, &ty.shape).is_some()
        }) {
            Some(c) if self.rng.one_in(2) => c,
            _ => {
                let s = self.rng.broadcastable(&ty.shape);
                self.constant(DType::Bool, &s)?
            }
        };
        self.add(Op::Select, &[cond, a, b])
    }

    /// A reduction over a random subset of axes.
    fn reduce(&mut self) -> Option<NodeId> {
        let op = self.rng.pick(&ReduceOp::ALL);
        let mean = op == ReduceOp::Mean;
        let d = if mean {
            self.rng.float_dtype()
        } else {
            self.rng.numeric_dtype()
        };
        let x = self.pick_or_make(
            |n| {
                if mean {
                    n.ty.dtype.is_float()
                } else {
                    n.ty.dtype.is_numeric()
                }
            },
            d,
            Rng::shape,
        )?;
        let rank = self.node(x).ty.rank();
        let axes: Vec<usize> = (0..rank).filter(|_| self.rng.one_in(2)).collect();
        let keepdims = self.rng.one_in(2);
        self.add(Op::Reduce { op, axes, keepdims }, &[x])
    }

    /// `matmul` with random transposes, batch axes and broadcasting.
    fn matmul(&mut self) -> Option<NodeId> {
        let (ta, tb) = (self.rng.one_in(2), self.rng.one_in(2));
        let d = self.rng.numeric_dtype();
        let a = self.pick_or_make(
            |n| n.ty.dtype.is_numeric() && n.ty.rank() >= 2,
            d,
            |r| {
                let mut s = vec![r.dim(), r.dim()];
                if r.one_in(3) {
                    s.insert(0, 1 + r.below(3));
                }
                s
            },
        )?;
        let ty = self.node(a).ty.clone();
        let rank = ty.rank();
        if self.rng.one_in(4) {
            // a·aᵀ or aᵀ·a
            let op = Op::MatMul {
                transpose_a: ta,
                transpose_b: !ta,
            };
            return self.add(op, &[a, a]);
        }
        let k = ty.shape[if ta { rank - 2 } else { rank - 1 }];
        let n = self.rng.dim();
        let mut s = self.rng.broadcastable(&ty.shape[..rank - 2]);
        s.extend(if tb { [n, k] } else { [k, n] });
        let b = self.of_type(ty.dtype, &s)?;
        let op = Op::MatMul {
            transpose_a: ta,
            transpose_b: tb,
        };
        self.add(op, &[a, b])
    }

    /// `concat` of a tensor with itself and constants differing along the axis.
    fn concat(&mut self) -> Option<NodeId> {
        let d = self.rng.dtype();
        let a = self.pick_or_make(|n| n.ty.rank() > 0, d, rank1)?;
        let ty = self.node(a).ty.clone();
        let axis = self.rng.below(ty.rank());
        let mut inputs = vec![a];
        for _ in 0..self.rng.below(3) {
            if self.rng.one_in(2) {
                inputs.push(a);
            } else {
                let mut s = ty.shape.clone();
                s[axis] = self.rng.below(4);
                inputs.push(self.constant(ty.dtype, &s)?);
            }
        }
        if self.rng.one_in(2) {
            let last = inputs.len() - 1;
            inputs.swap(0, last);
        }
        self.add(Op::Concat { axis }, &inputs)
    }

    /// `gather` with in-range constant indices, sometimes with a batch axis.
    fn gather(&mut self) -> Option<NodeId> {
        let d = self.rng.dtype();
        let p = self.pick_or_make(|n| n.ty.rank() > 0, d, rank1)?;
        let ty = self.node(p).ty.clone();
        let axis = self.rng.below(ty.rank());
        let batch_dims = usize::from(axis > 0 && self.rng.one_in(3));
        let mut shape = ty.shape[..batch_dims].to_vec();
        for _ in 0..self.rng.below(3) {
            shape.push(self.rng.dim());
        }
        let dim = ty.shape[axis];
        if dim == 0 && shape.iter().product::<usize>() > 0 {
            shape.push(0);
        }
        let it = self.rng.index_dtype();
        let idx = self.rng.indices(it, &shape, dim);
        let i = self.add(Op::Constant(idx), &[])?;
        self.add(Op::Gather { axis, batch_dims }, &[p, i])
    }

    /// `scatter_add` of updates along one axis with in-range constant indices.
    fn scatter_add(&mut self) -> Option<NodeId> {
        let d = self.rng.numeric_dtype();
        let u = self.pick_or_make(|n| n.ty.dtype.is_numeric() && n.ty.rank() > 0, d, rank1)?;
        let ty = self.node(u).ty.clone();
        let axis = self.rng.below(ty.rank());
        let len = ty.shape[axis];
        let dim = if len == 0 {
            self.rng.below(3)
        } else {
            1 + self.rng.below(4)
        };
        let it = self.rng.index_dtype();
        let idx = self.rng.indices(it, &[len], dim);
        let i = self.add(Op::Constant(idx), &[])?;
        let op = Op::ScatterAdd {
            axis,
            batch_dims: 0,
            dim,
        };
        self.add(op, &[u, i])
    }

    /// A random op of any distribution (now and then with parameters or a dtype the shape
    /// rule rejects).
    fn random_spec(&mut self) -> Op {
        let r = &mut self.rng;
        let shape = r.shape();
        let seed = r.next();
        let (dist, dtype) = match r.below(4) {
            0 | 1 => {
                let (mean, stddev) = (r.float_attr(), r.pick(&[0.0, 0.5, 1.0, f64::INFINITY]));
                let dist = if r.one_in(2) {
                    Distribution::Normal { mean, stddev }
                } else {
                    Distribution::TruncatedNormal { mean, stddev }
                };
                (dist, r.float_dtype())
            }
            2 => {
                let (low, high) = r.pick(&[
                    (0.0, 1.0),
                    (-1.5, 2.5),
                    (f64::NEG_INFINITY, f64::INFINITY),
                    (-0.0, 0.1),
                    (1.0, 1.0),
                ]);
                (Distribution::Uniform { low, high }, r.float_dtype())
            }
            _ => {
                let (low, high) = r.pick(&[(0, 1), (-3, 4), (i64::MIN, i64::MAX), (5, 5)]);
                (Distribution::UniformInt { low, high }, r.index_dtype())
            }
        };
        let dtype = if r.one_in(10) { r.dtype() } else { dtype };
        Op::Random {
            dist,
            dtype,
            shape,
            seed,
        }
    }

    /// Run one step of the compiler-oriented family `kind` (`0..EXT_STEP_KINDS -
    /// STEP_KINDS`); `None` when it added nothing.
    fn ext_step(&mut self, kind: u8) -> Option<NodeId> {
        match kind {
            0 => self.composite(),
            1 => self.elementwise_chain(),
            2 => self.dense(),
            3 => self.reduce_view(),
            4 => self.normalise(),
            _ => self.view_chain(),
        }
    }

    /// Two to four layout ops in a row (strided slices, transposes, broadcasts, reshapes
    /// adding or dropping unit axes), then an elementwise op or a reduction: index maps
    /// composed through several views.
    fn view_chain(&mut self) -> Option<NodeId> {
        let d = self.rng.dtype();
        // Half the time a fresh placeholder with longer axes, so that nested strided slices
        // still have room.
        let mut x = if self.rng.one_in(2) {
            let r = &mut self.rng;
            let shape: Vec<usize> = (0..1 + r.below(3)).map(|_| 2 + r.below(6)).collect();
            self.placeholder(d, shape)?
        } else {
            self.pick_or_make(|n| n.ty.rank() > 0, d, rank1)?
        };
        for _ in 0..2 + self.rng.below(3) {
            let shape = self.node(x).ty.shape.clone();
            let op = match self.rng.below(5) {
                0 | 1 => Op::Slice(self.rng.slice_nonempty(&shape)),
                2 => Op::Transpose(self.rng.permutation(shape.len())),
                3 => {
                    let mut target: Vec<usize> = shape
                        .iter()
                        .map(|&d| if d == 1 { 1 + self.rng.below(3) } else { d })
                        .collect();
                    if self.rng.one_in(2) {
                        target.insert(0, 1 + self.rng.below(3));
                    }
                    Op::BroadcastTo(target)
                }
                _ => {
                    let mut target = shape.clone();
                    if !target.is_empty() && target.contains(&1) && self.rng.one_in(2) {
                        let k = target.iter().position(|&d| d == 1)?;
                        target.remove(k);
                    } else {
                        target.insert(self.rng.below(target.len() + 1), 1);
                    }
                    Op::Reshape(target)
                }
            };
            if let Some(n) = self.add(op, &[x]) {
                x = n;
            }
        }
        let ty = self.node(x).ty.clone();
        if ty.dtype.is_numeric() && self.rng.one_in(2) {
            let axes: Vec<usize> = (0..ty.rank()).filter(|_| self.rng.one_in(2)).collect();
            let op = Op::Reduce {
                op: self
                    .rng
                    .pick(&[ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min]),
                axes,
                keepdims: self.rng.one_in(2),
            };
            self.add(op, &[x])
        } else {
            let u = if ty.dtype == DType::Bool {
                UnaryOp::LogicalNot
            } else {
                self.rng
                    .pick(&[UnaryOp::Neg, UnaryOp::Abs, UnaryOp::Square])
            };
            self.add(Op::Unary(u), &[x])
        }
    }

    /// A float node of rank at least 1 (existing or a new placeholder).
    fn float_ranked(&mut self) -> Option<NodeId> {
        let d = self.rng.float_dtype();
        self.pick_or_make(|n| n.ty.dtype.is_float() && n.ty.rank() > 0, d, rank1)
    }

    /// Any composite op on fitting inputs (labels, targets, noise and affine parameters are
    /// constants or existing nodes of the right type).
    fn composite(&mut self) -> Option<NodeId> {
        let x = self.float_ranked()?;
        let ty = self.node(x).ty.clone();
        let axis = self.random_axis(x);
        let last = *ty.shape.last()?;
        let (c, more) = match self.rng.below(9) {
            0 => (Composite::Softmax { axis }, vec![]),
            1 => (Composite::LogSoftmax { axis }, vec![]),
            2 => (
                Composite::SoftmaxCrossEntropy,
                vec![self.of_type(ty.dtype, &ty.shape)?],
            ),
            3 => {
                let it = self.rng.index_dtype();
                let labels = self.rng.indices(it, &ty.shape[..ty.rank() - 1], last);
                let l = self.add(Op::Constant(labels), &[])?;
                (Composite::SparseSoftmaxCrossEntropy, vec![l])
            }
            4 => (
                Composite::BinaryCrossEntropy {
                    eps: self.rng.pick(&[1e-7, 1e-3, 0.0]),
                },
                vec![self.of_type(ty.dtype, &ty.shape)?],
            ),
            5 => (
                Composite::MeanSquaredError,
                vec![self.of_type(ty.dtype, &ty.shape)?],
            ),
            6 => {
                let affine = self.rng.one_in(2);
                let eps = self.rng.pick(&[1e-5, 1e-3, 0.0]);
                let params = if affine {
                    vec![
                        self.of_type(ty.dtype, &[last])?,
                        self.of_type(ty.dtype, &[last])?,
                    ]
                } else {
                    vec![]
                };
                (Composite::LayerNorm { eps, affine }, params)
            }
            7 => (
                Composite::L2Normalize {
                    axis,
                    eps: self.rng.pick(&[1e-12, 1e-3, 0.0]),
                },
                vec![],
            ),
            _ => {
                let noise = if self.rng.one_in(2) {
                    let op = Op::Random {
                        dist: Distribution::Uniform {
                            low: 0.0,
                            high: 1.0,
                        },
                        dtype: ty.dtype,
                        shape: ty.shape.clone(),
                        seed: self.rng.next(),
                    };
                    self.add(op, &[])?
                } else {
                    self.of_type(ty.dtype, &ty.shape)?
                };
                let rate = self.rng.pick(&[0.0, 0.25, 0.5, 0.9]);
                (Composite::Dropout { rate }, vec![noise])
            }
        };
        let mut inputs = vec![x];
        inputs.extend(more);
        self.add(Op::Composite(c), &inputs)
    }

    /// Two to five elementwise ops applied in a row to one value (each binary op takes a
    /// broadcastable constant or an earlier node), which fusion turns into one kernel.
    fn elementwise_chain(&mut self) -> Option<NodeId> {
        let d = self.rng.numeric_dtype();
        let mut x = self.pick_or_make(|n| n.ty.dtype.is_numeric(), d, Rng::shape)?;
        for _ in 0..2 + self.rng.below(4) {
            let ty = self.node(x).ty.clone();
            let next = if self.rng.one_in(2) {
                let u = self.rng.pick(&UnaryOp::ALL);
                if !u.dtypes().accepts(ty.dtype) {
                    continue;
                }
                self.add(Op::Unary(u), &[x])
            } else {
                let b = self.rng.pick(&BinaryOp::ALL[..8]);
                let s = self.rng.broadcastable(&ty.shape);
                let other = match self.pick(|n| n.ty.dtype == ty.dtype && n.ty.shape == s) {
                    Some(o) if self.rng.one_in(2) => o,
                    _ => self.constant(ty.dtype, &s)?,
                };
                let inputs = if self.rng.one_in(3) {
                    [other, x]
                } else {
                    [x, other]
                };
                self.add(Op::Binary(b), &inputs)
            };
            if let Some(n) = next {
                x = n;
            }
        }
        Some(x)
    }

    /// `act(x · W + b)`: a dense layer with a constant or variable weight and bias.
    fn dense(&mut self) -> Option<NodeId> {
        let d = self.rng.float_dtype();
        let x = self.pick_or_make(
            |n| n.ty.dtype.is_float() && n.ty.rank() == 2,
            d,
            |r| vec![r.dim(), r.dim()],
        )?;
        let ty = self.node(x).ty.clone();
        let (k, n) = (ty.shape[1], self.rng.dim());
        let w = if self.rng.one_in(2) {
            let init = self.constant(ty.dtype, &[k, n])?;
            let name = self.name("W");
            self.add_named(Op::Variable { trainable: true }, &[init], name)?
        } else {
            self.constant(ty.dtype, &[k, n])?
        };
        let y = self.add(
            Op::MatMul {
                transpose_a: false,
                transpose_b: false,
            },
            &[x, w],
        )?;
        let b = self.constant(ty.dtype, &[n])?;
        let y = self.add(Op::Binary(BinaryOp::Add), &[y, b])?;
        let act = self.rng.pick(&[
            UnaryOp::Relu,
            UnaryOp::Tanh,
            UnaryOp::Sigmoid,
            UnaryOp::Gelu,
            UnaryOp::Identity,
        ]);
        self.add(Op::Unary(act), &[y])
    }

    /// A reduction of a transposed, sliced or broadcast view (fused into the reduction).
    fn reduce_view(&mut self) -> Option<NodeId> {
        let d = self.rng.numeric_dtype();
        let x = self.pick_or_make(|n| n.ty.dtype.is_numeric() && n.ty.rank() > 0, d, rank1)?;
        let shape = self.node(x).ty.shape.clone();
        let view = match self.rng.below(3) {
            0 => Op::Transpose(self.rng.permutation(shape.len())),
            1 => Op::Slice(self.rng.slice(&shape)),
            _ => {
                let mut target = shape.clone();
                target.insert(0, 1 + self.rng.below(3));
                Op::BroadcastTo(target)
            }
        };
        let v = self.add(view, &[x])?;
        let vt = self.node(v).ty.clone();
        let float = vt.dtype.is_float();
        let ops: &[ReduceOp] = if float {
            &ReduceOp::ALL
        } else {
            &[ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Prod]
        };
        let op = self.rng.pick(ops);
        let axes: Vec<usize> = (0..vt.rank()).filter(|_| !self.rng.one_in(3)).collect();
        let keepdims = self.rng.one_in(2);
        self.add(Op::Reduce { op, axes, keepdims }, &[v])
    }

    /// `f(x, reduce(x, axis, keepdims))`: a reduction consumed by an elementwise op that
    /// broadcasts it back (centering, max-shifting, normalising).
    fn normalise(&mut self) -> Option<NodeId> {
        let x = self.float_ranked()?;
        let axis = self.random_axis(x);
        let op = self
            .rng
            .pick(&[ReduceOp::Mean, ReduceOp::Max, ReduceOp::Sum]);
        let r = self.add(
            Op::Reduce {
                op,
                axes: vec![axis],
                keepdims: true,
            },
            &[x],
        )?;
        let b = self
            .rng
            .pick(&[BinaryOp::Sub, BinaryOp::Div, BinaryOp::Mul]);
        let y = self.add(Op::Binary(b), &[x, r])?;
        if self.rng.one_in(2) {
            self.add(Op::Unary(UnaryOp::Exp), &[y])
        } else {
            Some(y)
        }
    }

    fn random_op(&mut self) -> Option<NodeId> {
        let op = self.random_spec();
        self.add(op, &[])
    }
}

/// A shape of rank at least 1.
fn rank1(r: &mut Rng) -> Vec<usize> {
    let mut s = r.shape();
    s.insert(0, r.dim());
    s
}

fn numeric_ranked(n: &Node) -> bool {
    n.ty.dtype.is_numeric() && n.ty.rank() > 0
}
