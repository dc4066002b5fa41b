//! Multi-output (sibling) fusion: elementwise kernels over the same outer space that share
//! an input, or where one reads what the other writes at the same index, become one kernel
//! with several stores — e.g. Adam's `m`, `v` and parameter updates of one variable, which
//! otherwise each traverse the parameter-sized arrays (the gradient three times).
//!
//! Runs on the lowered steps after epilogues and in-place updates. Kernel `b` (later) is
//! merged into kernel `a` when
//! - both are single-phase, elementwise (no inner space), over equal outer shapes;
//! - every read by `b` of memory `a` writes is at exactly the index `a` writes it (the
//!   value is then taken from `a`'s expression, no load), and every read by `a` of memory
//!   `b` writes is at exactly the index `b` writes it (each point loads before it stores,
//!   as an in-place update does); they write disjoint memory;
//! - both have only contiguous or broadcast accesses along the last outer axis, or neither
//!   (merging must not turn a vectorised kernel into a scalar one);
//! - the steps between them can be jumped: the merged kernel runs at `a`'s place when no
//!   step in between writes what `b` reads or touches what `b` writes, otherwise at `b`'s
//!   place when no step in between touches what `a` writes or writes what `a` reads.
//!
//! Memory is compared through alias roots (views of variables, reshapes), so in-place
//! updates are seen as writes to the variable.

use super::{LStep, Lowered, alias_root};
use crate::kernel::{Access, BufId, Expr, ExprId, Kernel, Phase, PhaseKind};
use flumen_runtime::exec::BufferDecl;

/// How far ahead (in steps) a sibling is looked for.
const WINDOW: usize = 24;

/// A plain elementwise kernel: one store phase, no inner space.
fn is_candidate(k: &Kernel) -> bool {
    k.inner.is_empty() && k.phases.len() == 1 && ends_with_outer_store(k)
}

/// Whether the last phase of `k` stores once per outer index (an elementwise kernel, or a
/// reduction group ending with per-row results): a sibling's expressions can join it.
fn ends_with_outer_store(k: &Kernel) -> bool {
    k.phases
        .last()
        .is_some_and(|p| !p.over_inner && matches!(p.kind, PhaseKind::Store { .. }))
}

/// Every store of `k`, of every phase.
fn stores(k: &Kernel) -> Vec<(usize, ExprId)> {
    k.phases
        .iter()
        .flat_map(|p| match &p.kind {
            PhaseKind::Store { stores } => stores.clone(),
            PhaseKind::Reduce { .. } => Vec::new(),
        })
        .collect()
}

/// Same element at every point of the outer space (and independent of the inner index).
fn same_index(x: &Access, y: &Access) -> bool {
    x.offset == y.offset
        && x.outer_strides == y.outer_strides
        && x.dtype == y.dtype
        && x.inner_strides
            .iter()
            .chain(&y.inner_strides)
            .all(|&s| s == 0)
}

/// Whether every access of `k` moves by 0 or 1 element along the last outer axis.
fn contiguous_last(k: &Kernel) -> bool {
    k.accesses
        .iter()
        .all(|a| a.outer_strides.last().is_none_or(|&s| s == 0 || s == 1))
}

/// Whether `x` addresses a distinct element at every point of `outer`.
fn injective(x: &Access, outer: &[usize]) -> bool {
    let mut axes: Vec<(u64, usize)> = x
        .outer_strides
        .iter()
        .zip(outer)
        .filter(|(_, n)| **n > 1)
        .map(|(s, n)| (s.unsigned_abs(), *n))
        .collect();
    axes.sort_unstable();
    let mut span = 0u64;
    for (s, n) in axes {
        if s <= span {
            return false;
        }
        span = span.saturating_add(s.saturating_mul(n as u64 - 1));
    }
    true
}

/// Roots of the buffers a step reads and writes.
fn roots(buffers: &[BufferDecl], bs: Vec<BufId>) -> Vec<BufId> {
    bs.into_iter().map(|b| alias_root(buffers, b)).collect()
}

/// `b` merged into `a` (`a` runs first), or `None` when that is not the same computation.
fn merge(buffers: &[BufferDecl], a: &Kernel, b: &Kernel) -> Option<Kernel> {
    if !ends_with_outer_store(a) || !is_candidate(b) || a.outer != b.outer {
        return None;
    }
    // Do not take away vector code: the code generator vectorises an elementwise kernel
    // along its last outer axis only when every access there is contiguous or broadcast.
    if contiguous_last(a) != contiguous_last(b) {
        return None;
    }
    let last = a.phases.len() - 1;
    let root = |x: &Access| alias_root(buffers, x.buf);
    let a_out: Vec<&Access> = stores(a).iter().map(|(i, _)| &a.accesses[*i]).collect();
    let b_out: Vec<&Access> = stores(b).iter().map(|(i, _)| &b.accesses[*i]).collect();
    // Disjoint outputs, each output memory written once per point and at a distinct
    // element per point.
    if a_out
        .iter()
        .any(|x| b_out.iter().any(|y| root(x) == root(y)))
    {
        return None;
    }
    for outs in [&a_out, &b_out] {
        for (n, x) in outs.iter().enumerate() {
            if !injective(x, &a.outer) || outs[n + 1..].iter().any(|y| root(x) == root(y)) {
                return None;
            }
        }
    }
    // `a` reading what `b` writes: only at the index `b` writes it.
    for x in &a.accesses {
        for y in &b_out {
            if root(x) == root(y) && !same_index(x, y) {
                return None;
            }
        }
    }
    // Related: `b` reads something `a` reads or writes.
    let a_roots: Vec<BufId> = a.accesses.iter().map(root).collect();
    let b_reads: Vec<&Access> = {
        let outs: Vec<usize> = stores(b).iter().map(|(i, _)| *i).collect();
        b.accesses
            .iter()
            .enumerate()
            .filter(|(i, _)| !outs.contains(i))
            .map(|(_, x)| x)
            .collect()
    };
    if !b_reads.iter().any(|x| a_roots.contains(&root(x))) {
        return None;
    }

    let mut accesses = a.accesses.clone();
    let mut exprs = a.phases[last].exprs.clone();
    let mut dtypes = a.phases[last].dtypes.clone();
    let mut st: Vec<(usize, ExprId)> = match &a.phases[last].kind {
        PhaseKind::Store { stores } => stores.clone(),
        PhaseKind::Reduce { .. } => unreachable!("checked: the last phase stores"),
    };
    let a_stores = stores(a);
    let mut acc_of = Vec::with_capacity(b.accesses.len());
    for x in &b.accesses {
        let mut x = x.clone();
        x.inner_strides = vec![0; a.inner.len()];
        let x = &x;
        let i = match accesses.iter().position(|y| y == x) {
            Some(i) => i,
            None => {
                accesses.push(x.clone());
                accesses.len() - 1
            }
        };
        acc_of.push(i);
    }
    let mut id_of: Vec<ExprId> = Vec::with_capacity(b.phases[0].exprs.len());
    for (e, &d) in b.phases[0].exprs.iter().zip(&b.phases[0].dtypes) {
        let m = |x: &ExprId| id_of[x.0];
        let new = match e {
            Expr::Load(ai) => {
                let x = &b.accesses[*ai];
                // A value `a` stores to this memory: same index (checked), take it.
                let written = a_stores
                    .iter()
                    .find(|(sa, _)| root(&a.accesses[*sa]) == root(x));
                match written {
                    // Only a value of the last phase is an expression of the merged phase.
                    Some((sa, v)) if same_index(&a.accesses[*sa], x) && st.contains(&(*sa, *v)) => {
                        id_of.push(*v);
                        continue;
                    }
                    Some(_) => return None,
                    None => {
                        // One load per access: reuse `a`'s.
                        let ai = acc_of[*ai];
                        let prior = exprs.iter().position(|e| *e == Expr::Load(ai));
                        if let Some(p) = prior {
                            id_of.push(ExprId(p));
                            continue;
                        }
                        Expr::Load(ai)
                    }
                }
            }
            Expr::FloatConst(c) => Expr::FloatConst(*c),
            Expr::IntConst(c) => Expr::IntConst(*c),
            Expr::Unary(op, x) => Expr::Unary(*op, m(x)),
            Expr::Binary(op, x, y) => Expr::Binary(*op, m(x), m(y)),
            Expr::Select(c, x, y) => Expr::Select(m(c), m(x), m(y)),
            Expr::Cast(t, x) => Expr::Cast(*t, m(x)),
            Expr::PhaseResult(_) => return None,
        };
        exprs.push(new);
        dtypes.push(d);
        id_of.push(ExprId(exprs.len() - 1));
    }
    st.extend(stores(b).iter().map(|(i, v)| (acc_of[*i], id_of[v.0])));
    // Drop the accesses only `b`'s substituted loads used.
    let mut phases: Vec<Phase> = a.phases[..last].to_vec();
    phases.push(Phase {
        over_inner: false,
        exprs,
        dtypes,
        kind: PhaseKind::Store { stores: st },
    });
    let used: Vec<bool> = (0..accesses.len())
        .map(|i| {
            phases.iter().any(|p| {
                p.exprs.iter().any(|e| matches!(e, Expr::Load(a) if *a == i))
                    || matches!(&p.kind, PhaseKind::Store { stores } if stores.iter().any(|(a, _)| *a == i))
            })
        })
        .collect();
    let mut renum = vec![usize::MAX; accesses.len()];
    let mut kept = Vec::new();
    for (i, x) in accesses.into_iter().enumerate() {
        if used[i] {
            renum[i] = kept.len();
            kept.push(x);
        }
    }
    for p in &mut phases {
        for e in &mut p.exprs {
            if let Expr::Load(a) = e {
                *a = renum[*a];
            }
        }
        if let PhaseKind::Store { stores } = &mut p.kind {
            for (a, _) in stores {
                *a = renum[*a];
            }
        }
    }
    Some(Kernel {
        name: format!("{}+{}", a.name, b.name),
        roots: a.roots.iter().chain(&b.roots).copied().collect(),
        outer: a.outer.clone(),
        inner: a.inner.clone(),
        accesses: kept,
        phases,
    })
}

/// Whether the steps strictly between `i` and `j` let step `s` move across them: none
/// writes what `s` reads, none reads or writes what `s` writes.
fn can_cross(l: &Lowered, i: usize, j: usize, s: usize) -> bool {
    let reads = roots(&l.buffers, l.steps[s].reads());
    let writes = roots(&l.buffers, l.steps[s].writes());
    l.steps[i + 1..j].iter().all(|m| {
        let mr = roots(&l.buffers, m.reads());
        let mw = roots(&l.buffers, m.writes());
        !mw.iter().any(|b| reads.contains(b) || writes.contains(b))
            && !mr.iter().any(|b| writes.contains(b))
    })
}

/// Merge sibling elementwise kernels (see the module docs).
pub fn merge_siblings(l: &mut Lowered) {
    let mut i = 0;
    while i < l.steps.len() {
        let mut j = i + 1;
        while j < l.steps.len() && j <= i + WINDOW {
            let merged = match (&l.steps[i], &l.steps[j]) {
                (LStep::Kernel(a), LStep::Kernel(b)) => merge(&l.buffers, a, b),
                _ => None,
            };
            let Some(k) = merged else {
                j += 1;
                continue;
            };
            if can_cross(l, i, j, j) {
                l.steps[i] = LStep::Kernel(k);
                l.steps.remove(j);
            } else if can_cross(l, i, j, i) {
                l.steps[j] = LStep::Kernel(k);
                l.steps.remove(i);
                // The merged kernel now sits at j - 1; look for more siblings of it.
                i = j - 1;
                j = i + 1;
            } else {
                j += 1;
            }
        }
        i += 1;
    }
}
