//! Building fused kernels: expressions are generated top-down from a materialised node
//! through its virtual producers, carrying an affine index map, down to loads from
//! materialised buffers, inlined scalar constants, and results of earlier reduce phases of
//! the same kernel (reduction groups, see [`super::rowfuse`]).

use super::affine::{AffineMap, contiguous_strides};
use crate::kernel::{Access, BufId, Expr, ExprId, Kernel, Phase, PhaseKind};
use flumen_frontend::op::{BinaryOp, Op, ReduceOp, SliceSpec};
use flumen_frontend::{DType, GraphDef, NodeId, Value};
use std::collections::HashMap;

/// How the lowering sees a node while building kernels.
pub trait NodeSource {
    /// The graph.
    fn def(&self) -> &GraphDef;
    /// The buffer of a materialised node, `None` for a virtual one.
    fn buffer(&self, id: NodeId) -> Option<BufId>;
}

/// Builds one kernel: accesses are shared across phases, expressions per phase.
pub struct KernelBuilder<'a, S: NodeSource> {
    src: &'a S,
    outer: Vec<usize>,
    inner: Vec<usize>,
    accesses: Vec<Access>,
    access_index: HashMap<Access, usize>,
    phases: Vec<Phase>,
    exprs: Vec<Expr>,
    dtypes: Vec<DType>,
    memo: HashMap<(NodeId, AffineMap), ExprId>,
    over_inner: bool,
    root: Option<NodeId>,
    reduced: HashMap<NodeId, PhaseRef>,
    failed: bool,
}

/// A reduction computed by an earlier reduce phase of the kernel being built: its value at
/// the current outer index is that phase's result.
#[derive(Clone, Debug)]
pub struct PhaseRef {
    /// The reduce phase.
    pub phase: usize,
    /// For a mean: the element count to divide the phase's sum by.
    pub mean_count: Option<usize>,
    /// The map from the iteration space to the reduction's output under which the output
    /// element is the one of the current outer index.
    pub map: AffineMap,
}

impl<'a, S: NodeSource> KernelBuilder<'a, S> {
    /// A kernel over `outer` × `inner`.
    pub fn new(src: &'a S, outer: Vec<usize>, inner: Vec<usize>) -> Self {
        KernelBuilder {
            src,
            outer,
            inner,
            accesses: Vec::new(),
            access_index: HashMap::new(),
            phases: Vec::new(),
            exprs: Vec::new(),
            dtypes: Vec::new(),
            memo: HashMap::new(),
            over_inner: false,
            root: None,
            reduced: HashMap::new(),
            failed: false,
        }
    }

    /// Number of phases finished so far.
    pub fn phase_count(&self) -> usize {
        self.phases.len()
    }

    /// From now on, `node` (a reduction) is the result of an earlier phase, not a buffer.
    pub fn set_reduced(&mut self, node: NodeId, r: PhaseRef) {
        self.reduced.insert(node, r);
    }

    /// Whether some expression could not be built (a phase result needed at another outer
    /// index than the current one, or before its phase ran): the kernel must not be used.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Whether two maps from this kernel's iteration space agree on every point of it
    /// (coefficients of axes of length 1 never matter).
    fn same_on_space(&self, a: &AffineMap, b: &AffineMap) -> bool {
        let extents: Vec<usize> = self.outer.iter().chain(&self.inner).copied().collect();
        if extents.contains(&0) {
            return true;
        }
        a.base == b.base
            && a.coef.len() == b.coef.len()
            && a.coef.iter().zip(&b.coef).all(|(ra, rb)| {
                ra.iter()
                    .zip(rb)
                    .zip(&extents)
                    .all(|((x, y), &n)| n == 1 || x == y)
            })
    }

    fn phase_result(&mut self, node: NodeId, map: &AffineMap, dtype: DType) -> ExprId {
        let r = self.reduced[&node].clone();
        if r.phase >= self.phases.len() || !self.same_on_space(map, &r.map) {
            self.failed = true;
        }
        let mut e = self.push(Expr::PhaseResult(r.phase), dtype);
        if let Some(count) = r.mean_count {
            let c = self.push(Expr::FloatConst(count as f64), dtype);
            e = self.push(Expr::Binary(BinaryOp::Div, e, c), dtype);
        }
        e
    }

    /// Start a phase (over the inner space or once per outer index).
    pub fn begin_phase(&mut self, over_inner: bool) {
        self.exprs.clear();
        self.dtypes.clear();
        self.memo.clear();
        self.over_inner = over_inner;
    }

    /// Finish the current phase.
    pub fn end_phase(&mut self, kind: PhaseKind) {
        self.phases.push(Phase {
            over_inner: self.over_inner,
            exprs: std::mem::take(&mut self.exprs),
            dtypes: std::mem::take(&mut self.dtypes),
            kind,
        });
    }

    /// Add an expression of `dtype`.
    pub fn push(&mut self, e: Expr, dtype: DType) -> ExprId {
        self.exprs.push(e);
        self.dtypes.push(dtype);
        ExprId(self.exprs.len() - 1)
    }

    /// The access of a row-major buffer of `shape` through `map` (deduplicated).
    pub fn access(&mut self, buf: BufId, dtype: DType, shape: &[usize], map: &AffineMap) -> usize {
        let (offset, strides) = map.to_strides(shape);
        let n_outer = self.outer.len();
        let mut inner_strides = strides[n_outer..].to_vec();
        inner_strides.resize(self.inner.len(), 0);
        let a = Access {
            buf,
            dtype,
            offset,
            outer_strides: strides[..n_outer].to_vec(),
            inner_strides,
        };
        if let Some(&i) = self.access_index.get(&a) {
            return i;
        }
        self.accesses.push(a.clone());
        self.access_index.insert(a, self.accesses.len() - 1);
        self.accesses.len() - 1
    }

    /// An access with explicit offset and strides (for stores into strided views).
    pub fn raw_access(&mut self, a: Access) -> usize {
        if let Some(&i) = self.access_index.get(&a) {
            return i;
        }
        self.accesses.push(a.clone());
        self.access_index.insert(a, self.accesses.len() - 1);
        self.accesses.len() - 1
    }

    /// The expression computing a materialised `node` itself (rather than loading its
    /// buffer), at the index given by `map`.
    pub fn expr_root(&mut self, node: NodeId, map: &AffineMap) -> ExprId {
        self.root = Some(node);
        let e = self.expr(node, map);
        self.root = None;
        e
    }

    /// The expression for `node`'s element at the index given by `map` (from the iteration
    /// space to the node's shape).
    pub fn expr(&mut self, node: NodeId, map: &AffineMap) -> ExprId {
        let key = (node, map.clone());
        if let Some(&e) = self.memo.get(&key) {
            return e;
        }
        let def = self.src.def();
        let n = def.node(node);
        let dtype = n.ty.dtype;
        let buffer = if self.root == Some(node) {
            None
        } else {
            self.src.buffer(node)
        };
        let e = if self.reduced.contains_key(&node) && self.root != Some(node) {
            self.phase_result(node, map, dtype)
        } else if let Some(buf) = buffer {
            let a = self.access(buf, dtype, &n.ty.shape, map);
            self.push(Expr::Load(a), dtype)
        } else {
            let input = |k: usize| def.node(n.inputs[k]);
            match &n.op {
                Op::Constant(v) => {
                    let e = scalar_expr(v);
                    self.push(e, dtype)
                }
                Op::Unary(u) => {
                    let x = self.expr(n.inputs[0], map);
                    self.push(Expr::Unary(*u, x), dtype)
                }
                Op::Cast(to) => {
                    let x = self.expr(n.inputs[0], map);
                    self.push(Expr::Cast(*to, x), dtype)
                }
                Op::Binary(b) => {
                    let ma = map.broadcast_from(&input(0).ty.shape, &n.ty.shape);
                    let mb = map.broadcast_from(&input(1).ty.shape, &n.ty.shape);
                    let a = self.expr(n.inputs[0], &ma);
                    let b2 = self.expr(n.inputs[1], &mb);
                    self.push(Expr::Binary(*b, a, b2), dtype)
                }
                Op::Select => {
                    let ids: Vec<ExprId> = (0..3)
                        .map(|k| {
                            let m = map.broadcast_from(&input(k).ty.shape, &n.ty.shape);
                            self.expr(n.inputs[k], &m)
                        })
                        .collect();
                    self.push(Expr::Select(ids[0], ids[1], ids[2]), dtype)
                }
                Op::Transpose(perm) => self.expr(n.inputs[0], &map.through_transpose(perm)),
                Op::BroadcastTo(_) => {
                    let m = map.broadcast_from(&input(0).ty.shape, &n.ty.shape);
                    self.expr(n.inputs[0], &m)
                }
                Op::Slice(spec) => self.expr(n.inputs[0], &map.through_slice(spec)),
                Op::Reshape(_) => {
                    let m = map
                        .through_unit_reshape(&input(0).ty.shape, &n.ty.shape)
                        .expect("classify only virtualises unit-axis reshapes");
                    self.expr(n.inputs[0], &m)
                }
                other => unreachable!("classify never virtualises {}", other.name()),
            }
        };
        self.memo.insert(key, e);
        e
    }

    /// The finished kernel, named `name`, computing the graph nodes `roots`.
    pub fn finish(self, name: String, roots: Vec<NodeId>) -> Kernel {
        Kernel {
            name,
            roots,
            outer: self.outer,
            inner: self.inner,
            accesses: self.accesses,
            phases: self.phases,
        }
    }
}

fn scalar_expr(v: &Value) -> Expr {
    match v {
        Value::F32(a) => Expr::FloatConst(a.iter().next().copied().unwrap_or(0.0) as f64),
        Value::F64(a) => Expr::FloatConst(a.iter().next().copied().unwrap_or(0.0)),
        other => Expr::IntConst(
            other
                .cast(DType::I64)
                .as_i64()
                .ok()
                .and_then(|a| a.iter().next().copied())
                .unwrap_or(0),
        ),
    }
}

/// An elementwise (or copy) kernel computing `node` into its buffer `out`.
pub fn elementwise_kernel<S: NodeSource>(src: &S, node: NodeId, out: BufId) -> Kernel {
    let n = src.def().node(node);
    let shape = n.ty.shape.clone();
    let rank = shape.len();
    let mut kb = KernelBuilder::new(src, shape.clone(), vec![]);
    kb.begin_phase(false);
    let id = AffineMap::identity(rank);
    let v = kb.expr_root(node, &id);
    let a = kb.access(out, n.ty.dtype, &shape, &id);
    kb.end_phase(PhaseKind::Store {
        stores: vec![(a, v)],
    });
    kb.finish(n.name.clone(), vec![node])
}

/// A reduction kernel for `node` (a `Reduce`) into `out`: outer = kept axes, inner =
/// reduced axes; producers are fused into the reduce phase.
pub fn reduce_kernel<S: NodeSource>(src: &S, node: NodeId, out: BufId) -> Kernel {
    let def = src.def();
    let n = def.node(node);
    let Op::Reduce { op, axes, .. } = &n.op else {
        unreachable!("reduce_kernel on {}", n.op.name())
    };
    let x = n.inputs[0];
    let in_shape = def.node(x).ty.shape.clone();
    let kept: Vec<usize> = (0..in_shape.len()).filter(|k| !axes.contains(k)).collect();
    let outer: Vec<usize> = kept.iter().map(|&k| in_shape[k]).collect();
    let inner: Vec<usize> = axes.iter().map(|&k| in_shape[k]).collect();
    let n_outer = outer.len();
    let iter_rank = n_outer + inner.len();
    // Input axis k ↦ its iteration axis.
    let perm = reduce_iteration_perm(in_shape.len(), axes);
    let mut kb = KernelBuilder::new(src, outer, inner.clone());
    kb.begin_phase(true);
    let v = kb.expr(x, &AffineMap::select(&perm, iter_rank));
    let reduce_op = if *op == ReduceOp::Mean {
        ReduceOp::Sum
    } else {
        *op
    };
    kb.end_phase(PhaseKind::Reduce {
        op: reduce_op,
        value: v,
    });

    kb.begin_phase(false);
    let dtype = n.ty.dtype;
    let mut r = kb.push(Expr::PhaseResult(0), dtype);
    if *op == ReduceOp::Mean {
        let count = kb.push(
            Expr::FloatConst(inner.iter().product::<usize>() as f64),
            dtype,
        );
        r = kb.push(Expr::Binary(BinaryOp::Div, r, count), dtype);
    }
    let out_shape = n.ty.shape.clone();
    let keepdims = out_shape.len() == in_shape.len();
    let out_map = reduce_output_map(in_shape.len(), axes, keepdims, iter_rank);
    let a = kb.access(out, dtype, &out_shape, &out_map);
    kb.end_phase(PhaseKind::Store {
        stores: vec![(a, r)],
    });
    kb.finish(n.name.clone(), vec![node])
}

/// The map from a reduction's iteration space (outer = the kept axes in order, then the
/// reduced axes) to its output: kept axes are the outer axes, reduced axes kept with
/// `keepdims` are index 0.
pub fn reduce_output_map(
    in_rank: usize,
    axes: &[usize],
    keepdims: bool,
    iter_rank: usize,
) -> AffineMap {
    let mut base = Vec::new();
    let mut coef = Vec::new();
    let mut next_outer = 0;
    for k in 0..in_rank {
        let is_reduced = axes.contains(&k);
        if is_reduced && !keepdims {
            continue;
        }
        let mut row = vec![0; iter_rank];
        if !is_reduced {
            row[next_outer] = 1;
            next_outer += 1;
        }
        base.push(0);
        coef.push(row);
    }
    AffineMap {
        base,
        coef,
        iter_rank,
    }
}

/// Iteration axis of each input axis of a reduction over `axes` of a rank-`in_rank`
/// input: kept axes first (in order), then the reduced axes in the order of `axes`.
pub fn reduce_iteration_perm(in_rank: usize, axes: &[usize]) -> Vec<usize> {
    let kept: Vec<usize> = (0..in_rank).filter(|k| !axes.contains(k)).collect();
    (0..in_rank)
        .map(|k| match axes.iter().position(|&a| a == k) {
            Some(p) => kept.len() + p,
            None => kept.iter().position(|&a| a == k).expect("kept"),
        })
        .collect()
}

/// A kernel writing `value` (a node shaped like the slice) into the strided slice `spec` of
/// the row-major buffer `var` of `var_shape`.
pub fn slice_store_kernel<S: NodeSource>(
    src: &S,
    node: NodeId,
    value: NodeId,
    var: BufId,
    var_shape: &[usize],
    spec: &SliceSpec,
) -> Kernel {
    let dtype = src.def().node(value).ty.dtype;
    let shape = spec.out_shape();
    let mut kb = KernelBuilder::new(src, shape.clone(), vec![]);
    kb.begin_phase(false);
    let v = kb.expr(value, &AffineMap::identity(shape.len()));
    let cs = contiguous_strides(var_shape);
    let offset = spec
        .dims
        .iter()
        .zip(&cs)
        .map(|(d, s)| d.start as i64 * s)
        .sum();
    let outer_strides = spec.dims.iter().zip(&cs).map(|(d, s)| d.step * s).collect();
    let a = kb.raw_access(Access {
        buf: var,
        dtype,
        offset,
        outer_strides,
        inner_strides: vec![],
    });
    kb.end_phase(PhaseKind::Store {
        stores: vec![(a, v)],
    });
    kb.finish(src.def().node(node).name.clone(), vec![node])
}
