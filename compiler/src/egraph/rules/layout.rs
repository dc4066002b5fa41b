//! Layout rules: move transposes through elementwise ops, in both directions, so that
//! transposes can meet and cancel (`algebra`'s `transpose-transpose`) or end up where
//! they are free (on a matmul operand, or fused into one kernel). All exact: elementwise
//! ops compute the same scalar whatever the layout.

use super::{c, ops_in, ty, typed};
use crate::egraph::lang::{EG, ENode, Term};
use crate::egraph::runner::Rule;
use egg::Id;
use flumen_frontend::op::Op;

/// The layout ruleset.
pub fn rules() -> Vec<Rule> {
    vec![
        // transpose(f(x)) = f(transpose(x)) for elementwise unary f and casts
        Rule {
            name: "transpose-sink-unary",
            identity: "f(x)ᵖ = f(xᵖ)",
            apply: sink_unary,
        },
        // f(transpose(x)) = transpose(f(x))
        Rule {
            name: "transpose-hoist-unary",
            identity: "f(xᵖ) = f(x)ᵖ",
            apply: hoist_unary,
        },
        // transpose(a ∘ b) = transpose(a) ∘ transpose(b) (operands of full rank or scalars)
        Rule {
            name: "transpose-sink-binary",
            identity: "(a ∘ b)ᵖ = aᵖ ∘ bᵖ",
            apply: sink_binary,
        },
        // transpose(a) ∘ transpose(b) = transpose(a ∘ b); transpose(a) ∘ s = transpose(a ∘ s)
        Rule {
            name: "transpose-hoist-binary",
            identity: "aᵖ ∘ bᵖ = (a ∘ b)ᵖ",
            apply: hoist_binary,
        },
    ]
}

fn is_unary_like(op: &Op) -> bool {
    matches!(op, Op::Unary(_) | Op::Cast(_))
}

fn sink_unary(eg: &EG, _id: Id, node: &ENode) -> Vec<Term> {
    let Some(Op::Transpose(p)) = eg.analysis.op(node.sym) else {
        return vec![];
    };
    ops_in(eg, node.children[0])
        .filter(|(op, _)| is_unary_like(op))
        .filter_map(|(op, inner)| {
            let t = typed(eg, Op::Transpose(p.clone()), vec![c(inner.children[0])])?;
            typed(eg, op.clone(), vec![t])
        })
        .collect()
}

fn hoist_unary(eg: &EG, _id: Id, node: &ENode) -> Vec<Term> {
    let Some(op) = eg.analysis.op(node.sym) else {
        return vec![];
    };
    if !is_unary_like(op) {
        return vec![];
    }
    ops_in(eg, node.children[0])
        .filter_map(|(inner_op, inner)| match inner_op {
            Op::Transpose(p) => {
                let f = typed(eg, op.clone(), vec![c(inner.children[0])])?;
                typed(eg, Op::Transpose(p.clone()), vec![f])
            }
            _ => None,
        })
        .collect()
}

fn sink_binary(eg: &EG, id: Id, node: &ENode) -> Vec<Term> {
    let Some(Op::Transpose(p)) = eg.analysis.op(node.sym) else {
        return vec![];
    };
    let rank = p.len();
    ops_in(eg, node.children[0])
        .filter(|(op, _)| matches!(op, Op::Binary(_)))
        .filter_map(|(op, inner)| {
            let args = inner
                .children
                .iter()
                .map(|&a| match ty(eg, a).rank() {
                    0 => Some(c(a)),
                    r if r == rank => typed(eg, Op::Transpose(p.clone()), vec![c(a)]),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            let t = typed(eg, op.clone(), args)?;
            (super::term_type(eg, &t).as_ref() == Some(ty(eg, id))).then_some(t)
        })
        .collect()
}

fn hoist_binary(eg: &EG, id: Id, node: &ENode) -> Vec<Term> {
    let Some(op @ Op::Binary(_)) = eg.analysis.op(node.sym) else {
        return vec![];
    };
    let (x, y) = (node.children[0], node.children[1]);
    let transposes = |id: Id| -> Vec<(Vec<usize>, Id)> {
        ops_in(eg, id)
            .filter_map(|(o, n)| match o {
                Op::Transpose(p) => Some((p.clone(), n.children[0])),
                _ => None,
            })
            .collect()
    };
    let mut out = vec![];
    let mut push = |p: &Vec<usize>, a: Term, b: Term| {
        if let Some(inner) = typed(eg, op.clone(), vec![a, b])
            && let Some(t) = typed(eg, Op::Transpose(p.clone()), vec![inner])
            && super::term_type(eg, &t).as_ref() == Some(ty(eg, id))
        {
            out.push(t);
        }
    };
    let (tx, ty_) = (transposes(x), transposes(y));
    for (p, a) in &tx {
        for (q, b) in &ty_ {
            if p == q {
                push(p, c(*a), c(*b));
            }
        }
        if ty(eg, y).rank() == 0 {
            push(p, c(*a), c(y));
        }
    }
    if ty(eg, x).rank() == 0 {
        for (q, b) in &ty_ {
            push(q, c(x), c(*b));
        }
    }
    out
}
