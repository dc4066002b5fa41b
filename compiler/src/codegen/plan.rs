//! Vectorisation planning: which expressions are live and which are invariant over the
//! inner space, and which [`Strategy`] a kernel gets (see [`super::emit`] for what each
//! strategy generates).

use super::CodegenError;
use super::emit::EmitOptions;
use super::layout::{Layout, elem_size, validate};
use super::ops::{self, natural_lanes};
use crate::kernel::{Expr, Kernel, Phase, PhaseKind};
use flumen_frontend::DType;
use flumen_frontend::op::ReduceOp;

/// How a kernel is vectorised (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Scalar loops only.
    Scalar,
    /// `lanes` consecutive indices of the innermost outer axis per vector.
    Outer {
        /// 4 (f32/i32) or 2 (f64/i64).
        lanes: u32,
    },
    /// The innermost inner axis is vectorised in the phases marked `Some(lanes)`.
    Inner {
        /// Per phase: the lane count, or `None` for a scalar phase.
        phases: Vec<Option<u32>>,
    },
}
/// The vectorisation strategy the emitter uses for `kernel`.
pub fn plan(kernel: &Kernel, opts: &EmitOptions) -> Result<Strategy, CodegenError> {
    validate(kernel)?;
    let lay = Layout::new(kernel)?;
    let info = analyze(kernel, &lay);
    Ok(choose(kernel, &lay, &info, opts))
}
/// Per-phase analysis.
pub(crate) struct PhaseInfo {
    /// Needed by a store or the reduced value.
    pub live: Vec<bool>,
    /// Independent of the inner index (hoistable out of the inner loops).
    pub inv: Vec<bool>,
}

pub(crate) fn analyze(k: &Kernel, lay: &Layout) -> Vec<PhaseInfo> {
    let stored: Vec<_> = k.outputs();
    k.phases
        .iter()
        .map(|p| {
            let n = p.exprs.len();
            let mut live = vec![false; n];
            match &p.kind {
                PhaseKind::Reduce { value, .. } => live[value.0] = true,
                PhaseKind::Store { stores } => stores.iter().for_each(|(_, v)| live[v.0] = true),
            }
            for i in (0..n).rev() {
                if live[i] {
                    for o in operands(&p.exprs[i]) {
                        live[o] = true;
                    }
                }
            }
            let mut inv = vec![false; n];
            for i in 0..n {
                inv[i] = match &p.exprs[i] {
                    Expr::Load(a) => {
                        lay.acc[*a].inner.iter().all(|&s| s == 0)
                            && !stored.contains(&k.accesses[*a].buf)
                    }
                    Expr::FloatConst(_) | Expr::IntConst(_) | Expr::PhaseResult(_) => true,
                    e => operands(e).iter().all(|&o| inv[o]),
                };
            }
            PhaseInfo { live, inv }
        })
        .collect()
}

/// Invariant expressions that the inner loop body uses directly: operands of variant
/// expressions, and roots (stored or reduced values).
pub(crate) fn direct_invariants(p: &Phase, inf: &PhaseInfo) -> Vec<usize> {
    let mut used = vec![false; p.exprs.len()];
    for (i, e) in p.exprs.iter().enumerate() {
        if inf.live[i] && !inf.inv[i] {
            operands(e).into_iter().for_each(|o| used[o] = true);
        }
    }
    match &p.kind {
        PhaseKind::Reduce { value, .. } => used[value.0] = true,
        PhaseKind::Store { stores } => stores.iter().for_each(|(_, v)| used[v.0] = true),
    }
    (0..p.exprs.len())
        .filter(|&i| used[i] && inf.inv[i])
        .collect()
}

pub(crate) fn operands(e: &Expr) -> Vec<usize> {
    match e {
        Expr::Unary(_, x) | Expr::Cast(_, x) => vec![x.0],
        Expr::Binary(_, a, b) => vec![a.0, b.0],
        Expr::Select(c, a, b) => vec![c.0, a.0, b.0],
        _ => vec![],
    }
}

/// Lane count for vectorising the exprs selected by `want` in phase `pi`, if they allow it.
/// `vstride(a)` is the byte stride of access `a` along the vectorised axis.
fn phase_lanes(
    k: &Kernel,
    pi: usize,
    want: &dyn Fn(usize) -> bool,
    vstride: &dyn Fn(usize) -> i64,
) -> Option<u32> {
    let p = &k.phases[pi];
    let mut lanes: Option<u32> = None;
    let mut note = |d: DType| -> bool {
        if d == DType::Bool {
            return true;
        }
        match (natural_lanes(d), lanes) {
            (None, _) => false,
            (Some(l), None) => {
                lanes = Some(l);
                true
            }
            (Some(l), Some(m)) => l == m,
        }
    };
    for i in (0..p.exprs.len()).filter(|&i| want(i)) {
        let d = p.dtypes[i];
        let ok = note(d)
            && operands(&p.exprs[i]).iter().all(|&o| note(p.dtypes[o]))
            && match &p.exprs[i] {
                Expr::Load(a) => {
                    let s = vstride(*a);
                    d != DType::Bool && (s == 0 || s == elem_size(d))
                }
                Expr::Unary(op, _) => ops::vector_friendly_unary(*op, d),
                Expr::Binary(op, a, _) => ops::vector_friendly_binary(*op, p.dtypes[a.0]),
                _ => true,
            };
        if !ok {
            return None;
        }
    }
    if let PhaseKind::Reduce { value, .. } = &p.kind
        && !note(p.dtypes[value.0])
    {
        return None;
    }
    if let PhaseKind::Store { stores } = &p.kind {
        for (a, _) in stores {
            let d = k.accesses[*a].dtype;
            if !note(d) || d == DType::Bool || vstride(*a) != elem_size(d) {
                return None;
            }
        }
    }
    lanes
}

/// Whether every written buffer is accessed through a single geometry (so that vector code
/// cannot reorder a read after a write of the same element or vice versa).
fn no_overlapping_writes(k: &Kernel, lay: &Layout) -> bool {
    let stored = k.outputs();
    stored.iter().all(|b| {
        let mut geoms = k
            .accesses
            .iter()
            .zip(&lay.acc)
            .filter(|(a, _)| a.buf == *b)
            .map(|(_, g)| g);
        let first = geoms.next();
        geoms.all(|g| Some(g) == first)
    })
}

pub(crate) fn choose(k: &Kernel, lay: &Layout, info: &[PhaseInfo], opts: &EmitOptions) -> Strategy {
    if !opts.vectorize || !no_overlapping_writes(k, lay) {
        return Strategy::Scalar;
    }
    let inner_rank = lay.inner.len();
    let has_inner = lay.inner_len > 0 && inner_rank > 0 && k.phases.iter().any(|p| p.over_inner);
    // Outer axis: every live expression of every phase in the same lane count.
    let n_last = *lay.outer.last().expect("at least one outer axis");
    let outer_stride = |a: usize| *lay.acc[a].outer.last().expect("outer axis");
    let mut outer: Option<u32> = None;
    let mut outer_ok = true;
    for (pi, inf) in info.iter().enumerate() {
        match phase_lanes(k, pi, &|i| inf.live[i], &outer_stride) {
            Some(l) if outer.is_none_or(|m| m == l) => outer = Some(l),
            _ => outer_ok = false,
        }
    }
    let outer = outer.filter(|&l| outer_ok && n_last >= l as usize);
    if !has_inner {
        return outer.map_or(Strategy::Scalar, |lanes| Strategy::Outer { lanes });
    }
    // Inner axis, per phase over the inner space.
    let inner_stride = |a: usize| *lay.acc[a].inner.last().expect("inner axis");
    let inner_last = *lay.inner.last().expect("inner axis");
    let phases: Vec<Option<u32>> = k
        .phases
        .iter()
        .zip(info)
        .enumerate()
        .map(|(pi, (p, inf))| {
            if !p.over_inner {
                return None;
            }
            if let PhaseKind::Reduce {
                op: ReduceOp::Prod,
                value,
            } = &p.kind
                && p.dtypes[value.0].is_float()
            {
                return None; // reassociating a float product is not within tolerance
            }
            phase_lanes(k, pi, &|i| inf.live[i] && !inf.inv[i], &inner_stride)
                .filter(|&l| inner_last >= l as usize)
        })
        .collect();
    let all_inner = k
        .phases
        .iter()
        .zip(&phases)
        .all(|(p, l)| !p.over_inner || l.is_some());
    let any_inner = phases.iter().any(Option::is_some);
    if all_inner && (inner_last >= 16 || outer.is_none()) {
        Strategy::Inner { phases }
    } else if let Some(lanes) = outer {
        Strategy::Outer { lanes }
    } else if any_inner {
        Strategy::Inner { phases }
    } else {
        Strategy::Scalar
    }
}

/// Whether the variant part of phase `p` is expensive enough (a transcendental, `pow` or
/// `mod`) that one vector accumulator keeps up: unrolling would only multiply code size.
pub(crate) fn heavy_body(p: &Phase, inf: &PhaseInfo) -> bool {
    use flumen_frontend::op::{BinaryOp, UnaryOp::*};
    p.exprs.iter().enumerate().any(|(i, e)| {
        inf.live[i]
            && !inf.inv[i]
            && match e {
                Expr::Unary(op, _) => matches!(
                    op,
                    Exp | Log | Log1p | Sin | Cos | Tanh | Sigmoid | Softplus | Erf | Gelu
                ),
                Expr::Binary(op, _, _) => matches!(op, BinaryOp::Pow | BinaryOp::Mod),
                _ => false,
            }
    })
}
