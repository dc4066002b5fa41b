//! The fused-kernel IR: backend-neutral loop kernels that fusion produces and every code
//! generator (Cranelift JIT, Cranelift object files for AOT, CUDA C) consumes.
//!
//! A [`Kernel`] iterates an *outer* index space (one iteration per output element of a
//! reduction, or per element of an elementwise kernel) and, inside it, runs a sequence of
//! [`Phase`]s. A phase either reduces a scalar expression over the *inner* index space (the
//! reduced axes) or stores expressions to outputs (once per outer index, or once per inner
//! index). Later phases see the results of earlier reductions. This one shape covers
//! - elementwise chains with broadcasting, transposes and slices (inner space empty, one
//!   store phase);
//! - reductions with their producers fused in (`reduce` phase) and consumers fused after
//!   (a store phase reading the reduced value);
//! - softmax and layer norm as single kernels (reduce max, reduce sum, store over inner).
//!
//! Every buffer is read and written through an [`Access`]: an element offset plus one
//! stride per outer axis and per inner axis, so broadcasts (stride 0), transposes and
//! strided slices cost nothing.

use flumen_frontend::DType;
use flumen_frontend::op::{BinaryOp, ReduceOp, UnaryOp};
use std::fmt;

pub use flumen_runtime::exec::{BufId, KernelFn};

/// How a kernel addresses a buffer: element `offset + Σ outer_idx[a]·outer_strides[a] +
/// Σ inner_idx[a]·inner_strides[a]` (strides in elements, possibly 0 or negative).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    /// The buffer.
    pub buf: BufId,
    /// Element type of the buffer.
    pub dtype: DType,
    /// Element offset of index 0.
    pub offset: i64,
    /// One stride per outer axis.
    pub outer_strides: Vec<i64>,
    /// One stride per inner axis (empty for accesses used only outside inner loops).
    pub inner_strides: Vec<i64>,
}

/// Index of an expression within its phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExprId(pub usize);

/// A scalar expression node. Each has a dtype ([`Phase::dtypes`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Load through access number `.0` of the kernel.
    Load(usize),
    /// A float constant (rounded to the expression's dtype).
    FloatConst(f64),
    /// An integer or bool constant.
    IntConst(i64),
    /// Unary op.
    Unary(UnaryOp, ExprId),
    /// Binary op (operands have equal dtypes).
    Binary(BinaryOp, ExprId, ExprId),
    /// `c ? a : b`.
    Select(ExprId, ExprId, ExprId),
    /// Convert (semantics of `Value::cast`).
    Cast(DType, ExprId),
    /// The reduced value of an earlier reduce phase (by phase index) at this outer index.
    PhaseResult(usize),
}

/// What a phase does with its expressions.
#[derive(Clone, Debug, PartialEq)]
pub enum PhaseKind {
    /// Reduce expression `value` over the inner space with `op` (Sum, Max, Min or Prod;
    /// Mean is a Sum followed by a division).
    Reduce {
        /// The reduction.
        op: ReduceOp,
        /// The reduced expression.
        value: ExprId,
    },
    /// Store each expression through an access (written once per iteration).
    Store {
        /// `(access index, value)` pairs.
        stores: Vec<(usize, ExprId)>,
    },
}

/// One pass of a kernel over (optionally) the inner space.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// Whether the phase loops over the inner space (a reduce phase always does).
    pub over_inner: bool,
    /// The expressions, in dependency order.
    pub exprs: Vec<Expr>,
    /// The dtype of each expression.
    pub dtypes: Vec<DType>,
    /// What the phase produces.
    pub kind: PhaseKind,
}

/// A fused loop kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    /// A readable name (the fused nodes' names).
    pub name: String,
    /// Outer iteration space.
    pub outer: Vec<usize>,
    /// Inner (reduced) iteration space; empty for elementwise kernels.
    pub inner: Vec<usize>,
    /// Every buffer access (loads and stores).
    pub accesses: Vec<Access>,
    /// The phases, run in order for each outer index.
    pub phases: Vec<Phase>,
    /// The graph nodes this kernel computes: the ones it stores and the materialised ones
    /// fused into it (a reduction group's members, both sides of a sibling merge), not the
    /// views and elementwise producers inlined into its expressions. For tools (`flumen
    /// dump` outlines); code generation ignores it and the text form does not show it.
    pub roots: Vec<flumen_frontend::NodeId>,
}

impl Kernel {
    /// Number of outer iterations.
    pub fn outer_len(&self) -> usize {
        self.outer.iter().product()
    }

    /// Number of inner iterations.
    pub fn inner_len(&self) -> usize {
        self.inner.iter().product()
    }

    /// Rough work estimate (expression evaluations), used to decide whether to split a
    /// kernel across threads.
    pub fn work(&self) -> usize {
        let outer = self.outer_len();
        let inner = self.inner_len().max(1);
        self.phases
            .iter()
            .map(|p| outer * p.exprs.len().max(1) * if p.over_inner { inner } else { 1 })
            .sum()
    }

    /// Buffers written by the kernel.
    pub fn outputs(&self) -> Vec<BufId> {
        let mut out = Vec::new();
        for p in &self.phases {
            if let PhaseKind::Store { stores } = &p.kind {
                out.extend(stores.iter().map(|(a, _)| self.accesses[*a].buf));
            }
        }
        out
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "kernel {} outer={:?} inner={:?} {{",
            self.name, self.outer, self.inner
        )?;
        for (i, a) in self.accesses.iter().enumerate() {
            writeln!(
                f,
                "  a{i} = buf{}:{} offset={} outer={:?} inner={:?}",
                a.buf.0, a.dtype, a.offset, a.outer_strides, a.inner_strides
            )?;
        }
        for (pi, p) in self.phases.iter().enumerate() {
            writeln!(
                f,
                "  phase{pi}{} {{",
                if p.over_inner { " over inner" } else { "" }
            )?;
            for (i, (e, t)) in p.exprs.iter().zip(&p.dtypes).enumerate() {
                let s = match e {
                    Expr::Load(a) => format!("load a{a}"),
                    Expr::FloatConst(x) => format!("const {x:?}"),
                    Expr::IntConst(x) => format!("const {x}"),
                    Expr::Unary(op, x) => format!("{} e{}", op.name(), x.0),
                    Expr::Binary(op, a, b) => format!("{} e{}, e{}", op.name(), a.0, b.0),
                    Expr::Select(c, a, b) => format!("select e{}, e{}, e{}", c.0, a.0, b.0),
                    Expr::Cast(d, x) => format!("cast.{d} e{}", x.0),
                    Expr::PhaseResult(p) => format!("result phase{p}"),
                };
                writeln!(f, "    e{i}: {t} = {s}")?;
            }
            match &p.kind {
                PhaseKind::Reduce { op, value } => writeln!(f, "    {} e{}", op.name(), value.0)?,
                PhaseKind::Store { stores } => {
                    for (a, v) in stores {
                        writeln!(f, "    store a{a} <- e{}", v.0)?;
                    }
                }
            }
            writeln!(f, "  }}")?;
        }
        writeln!(f, "}}")
    }
}
