//! Algebraic and shape identities: neutral elements, composition of layout ops, matrix
//! products with transposed operands, broadcasts the binary ops do anyway, and
//! distributivity where it saves an operation.
//!
//! All are exact in integer arithmetic, and all but the distributive rules are exact in
//! floating point too (`x + 0 = x` fires for floats only when the zero is `−0`, since
//! `−0 + (+0) = +0`, and `x − 0 = x` only when it is `+0`; the property test found the
//! second); factoring `a·b + a·c = a·(b + c)` rounds differently (within a few
//! ulp of the sum), so [`EXACT_EXCLUDED`] lists it for users who need bit-identical results.

use super::{c, is_last_two_swap, ops_in, scalar, ty, typed};
use crate::egraph::lang::{EG, ENode, Term};
use crate::egraph::runner::Rule;
use egg::Id;
use flumen_frontend::op::{BinaryOp, Op, UnaryOp, broadcast_shapes};

/// Rules whose floating-point results may differ in rounding from the input's (all
/// rulesets): leave them out for bit-identical results.
pub const EXACT_EXCLUDED: [&str; 3] = ["factor-mul", "factor-matmul", "scale-into-matmul"];

/// The algebra ruleset.
pub fn rules() -> Vec<Rule> {
    vec![
        // x · 1 = x
        Rule {
            name: "mul-one",
            identity: "x · 1 = x",
            apply: mul_one,
        },
        // x + 0 = x (integers; floats only for −0)
        Rule {
            name: "add-zero",
            identity: "x + 0 = x (float: x + (−0) = x)",
            apply: add_zero,
        },
        // x − 0 = x (floats: only +0)
        Rule {
            name: "sub-zero",
            identity: "x − 0 = x (float: x − (+0) = x)",
            apply: sub_zero,
        },
        // x / 1 = x
        Rule {
            name: "div-one",
            identity: "x / 1 = x",
            apply: div_one,
        },
        // −(−x) = x
        Rule {
            name: "neg-neg",
            identity: "−(−x) = x",
            apply: neg_neg,
        },
        // transpose(transpose(x, p), q) = transpose(x, p∘q)
        Rule {
            name: "transpose-transpose",
            identity: "(xᵖ)^q = x^(p∘q)",
            apply: transpose_transpose,
        },
        // transpose(x, id) = x
        Rule {
            name: "transpose-identity",
            identity: "transpose(x, identity) = x",
            apply: transpose_identity,
        },
        // reshape(reshape(x, s), t) = reshape(x, t)
        Rule {
            name: "reshape-reshape",
            identity: "reshape(reshape(x, s), t) = reshape(x, t)",
            apply: reshape_reshape,
        },
        // reshape(x, shape(x)) = x
        Rule {
            name: "reshape-noop",
            identity: "reshape(x, shape x) = x",
            apply: reshape_noop,
        },
        // broadcast_to(x, shape(x)) = x
        Rule {
            name: "broadcast-noop",
            identity: "broadcast_to(x, shape x) = x",
            apply: broadcast_noop,
        },
        // broadcast_to(broadcast_to(x, s), t) = broadcast_to(x, t)
        Rule {
            name: "broadcast-broadcast",
            identity: "broadcast_to(broadcast_to(x, s), t) = broadcast_to(x, t)",
            apply: broadcast_broadcast,
        },
        // a ∘ broadcast_to(b, s) = a ∘ b when ∘'s own broadcasting gives the same shape
        Rule {
            name: "binary-absorbs-broadcast",
            identity: "a ∘ broadcast(b) = a ∘ b (implicit broadcasting)",
            apply: binary_absorbs_broadcast,
        },
        // matmul(transpose(a), b) = matmul(a, b) with transpose_a flipped (same for b)
        Rule {
            name: "matmul-transpose-operand",
            identity: "(Aᵀ)B = matmul(A, B, transpose_a)",
            apply: matmul_transpose_operand,
        },
        // transpose(matmul(a, b)) = matmul(b, a) with both flags flipped
        Rule {
            name: "transpose-matmul",
            identity: "(AB)ᵀ = BᵀAᵀ",
            apply: transpose_matmul,
        },
        // a·b + a·c = a·(b + c)
        Rule {
            name: "factor-mul",
            identity: "a·b + a·c = a·(b + c)",
            apply: factor_mul,
        },
        // AB + AC = A(B + C), AC + BC = (A + B)C
        Rule {
            name: "factor-matmul",
            identity: "AB + AC = A(B + C)",
            apply: factor_matmul,
        },
    ]
}

fn binary(eg: &EG, node: &ENode) -> Option<(BinaryOp, Id, Id)> {
    match eg.analysis.op(node.sym)? {
        Op::Binary(b) => Some((*b, node.children[0], node.children[1])),
        _ => None,
    }
}

/// `x ∘ k = x` (and `k ∘ x = x` when `commutes`) where `k` is the splat `value`.
fn neutral(
    eg: &EG,
    id: Id,
    node: &ENode,
    which: BinaryOp,
    value: f64,
    commutes: bool,
) -> Vec<Term> {
    let Some((b, x, y)) = binary(eg, node) else {
        return vec![];
    };
    if b != which {
        return vec![];
    }
    let mut out = vec![];
    if scalar(eg, y) == Some(value) && ty(eg, x) == ty(eg, id) {
        out.push(c(x));
    }
    if commutes && scalar(eg, x) == Some(value) && ty(eg, y) == ty(eg, id) {
        out.push(c(y));
    }
    out
}

fn mul_one(eg: &EG, id: Id, node: &ENode) -> Vec<Term> {
    neutral(eg, id, node, BinaryOp::Mul, 1.0, true)
}

fn add_zero(eg: &EG, id: Id, node: &ENode) -> Vec<Term> {
    if ty(eg, id).dtype.is_float() {
        // x + (+0) is +0 at x = −0; only x + (−0) = x holds for every float.
        let neg_zero = |k: Id| scalar(eg, k).is_some_and(|v| v == 0.0 && v.is_sign_negative());
        if !node.children.iter().any(|&k| neg_zero(k)) {
            return vec![];
        }
    }
    neutral(eg, id, node, BinaryOp::Add, 0.0, true)
}

fn sub_zero(eg: &EG, id: Id, node: &ENode) -> Vec<Term> {
    // x − (−0) is +0 at x = −0; only x − (+0) = x holds for every float.
    if let Some((BinaryOp::Sub, _, k)) = binary(eg, node)
        && ty(eg, id).dtype.is_float()
        && scalar(eg, k).is_some_and(|v| v.is_sign_negative())
    {
        return vec![];
    }
    neutral(eg, id, node, BinaryOp::Sub, 0.0, false)
}

fn div_one(eg: &EG, id: Id, node: &ENode) -> Vec<Term> {
    neutral(eg, id, node, BinaryOp::Div, 1.0, false)
}

fn neg_neg(eg: &EG, _id: Id, node: &ENode) -> Vec<Term> {
    if eg.analysis.op(node.sym) != Some(&Op::Unary(UnaryOp::Neg)) {
        return vec![];
    }
    ops_in(eg, node.children[0])
        .filter(|(op, _)| **op == Op::Unary(UnaryOp::Neg))
        .map(|(_, n)| c(n.children[0]))
        .collect()
}

fn transpose_transpose(eg: &EG, _id: Id, node: &ENode) -> Vec<Term> {
    let Some(Op::Transpose(p)) = eg.analysis.op(node.sym) else {
        return vec![];
    };
    ops_in(eg, node.children[0])
        .filter_map(|(op, inner)| match op {
            Op::Transpose(q) => {
                let y = inner.children[0];
                let r: Vec<usize> = p.iter().map(|&i| q[i]).collect();
                if r.iter().enumerate().all(|(i, &a)| i == a) {
                    Some(c(y))
                } else {
                    typed(eg, Op::Transpose(r), vec![c(y)])
                }
            }
            _ => None,
        })
        .collect()
}

fn transpose_identity(eg: &EG, _id: Id, node: &ENode) -> Vec<Term> {
    match eg.analysis.op(node.sym) {
        Some(Op::Transpose(p)) if p.iter().enumerate().all(|(i, &a)| i == a) => {
            vec![c(node.children[0])]
        }
        _ => vec![],
    }
}

fn reshape_reshape(eg: &EG, id: Id, node: &ENode) -> Vec<Term> {
    let Some(Op::Reshape(s)) = eg.analysis.op(node.sym) else {
        return vec![];
    };
    ops_in(eg, node.children[0])
        .filter_map(|(op, inner)| match op {
            Op::Reshape(_) => {
                let y = inner.children[0];
                if ty(eg, y) == ty(eg, id) {
                    Some(c(y))
                } else {
                    typed(eg, Op::Reshape(s.clone()), vec![c(y)])
                }
            }
            _ => None,
        })
        .collect()
}

fn reshape_noop(eg: &EG, id: Id, node: &ENode) -> Vec<Term> {
    match eg.analysis.op(node.sym) {
        Some(Op::Reshape(_)) if ty(eg, node.children[0]) == ty(eg, id) => {
            vec![c(node.children[0])]
        }
        _ => vec![],
    }
}

fn broadcast_noop(eg: &EG, id: Id, node: &ENode) -> Vec<Term> {
    match eg.analysis.op(node.sym) {
        Some(Op::BroadcastTo(_)) if ty(eg, node.children[0]) == ty(eg, id) => {
            vec![c(node.children[0])]
        }
        _ => vec![],
    }
}

fn broadcast_broadcast(eg: &EG, _id: Id, node: &ENode) -> Vec<Term> {
    let Some(Op::BroadcastTo(s)) = eg.analysis.op(node.sym) else {
        return vec![];
    };
    ops_in(eg, node.children[0])
        .filter_map(|(op, inner)| match op {
            Op::BroadcastTo(_) => typed(eg, Op::BroadcastTo(s.clone()), vec![c(inner.children[0])]),
            _ => None,
        })
        .collect()
}

fn binary_absorbs_broadcast(eg: &EG, id: Id, node: &ENode) -> Vec<Term> {
    let Some((b, x, y)) = binary(eg, node) else {
        return vec![];
    };
    let out = &ty(eg, id).shape;
    let mut terms = vec![];
    for (side, (this, other)) in [(x, y), (y, x)].into_iter().enumerate() {
        for (op, inner) in ops_in(eg, this) {
            if let Op::BroadcastTo(_) = op {
                let z = inner.children[0];
                if broadcast_shapes(&ty(eg, z).shape, &ty(eg, other).shape).as_ref() == Some(out) {
                    let args = if side == 0 {
                        vec![c(z), c(other)]
                    } else {
                        vec![c(other), c(z)]
                    };
                    terms.extend(typed(eg, Op::Binary(b), args));
                }
            }
        }
    }
    terms
}

fn matmul_transpose_operand(eg: &EG, _id: Id, node: &ENode) -> Vec<Term> {
    let Some(&Op::MatMul {
        transpose_a,
        transpose_b,
    }) = eg.analysis.op(node.sym)
    else {
        return vec![];
    };
    let (a, b) = (node.children[0], node.children[1]);
    let mut out = vec![];
    for (op, inner) in ops_in(eg, a) {
        if let Op::Transpose(p) = op
            && is_last_two_swap(p)
        {
            let m = Op::MatMul {
                transpose_a: !transpose_a,
                transpose_b,
            };
            out.extend(typed(eg, m, vec![c(inner.children[0]), c(b)]));
        }
    }
    for (op, inner) in ops_in(eg, b) {
        if let Op::Transpose(p) = op
            && is_last_two_swap(p)
        {
            let m = Op::MatMul {
                transpose_a,
                transpose_b: !transpose_b,
            };
            out.extend(typed(eg, m, vec![c(a), c(inner.children[0])]));
        }
    }
    out
}

fn transpose_matmul(eg: &EG, id: Id, node: &ENode) -> Vec<Term> {
    let Some(Op::Transpose(p)) = eg.analysis.op(node.sym) else {
        return vec![];
    };
    // Only when nothing else uses the product (else it would be computed twice).
    if !is_last_two_swap(p) || !super::used_only_by(eg, node.children[0], id) {
        return vec![];
    }
    ops_in(eg, node.children[0])
        .filter_map(|(op, inner)| match *op {
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => {
                let m = Op::MatMul {
                    transpose_a: !transpose_b,
                    transpose_b: !transpose_a,
                };
                let t = typed(eg, m, vec![c(inner.children[1]), c(inner.children[0])])?;
                (super::term_type(eg, &t).as_ref() == Some(ty(eg, id))).then_some(t)
            }
            _ => None,
        })
        .collect()
}

/// The factors of the products in class `id`: (op node's two children).
fn products(eg: &EG, id: Id) -> Vec<(Id, Id)> {
    ops_in(eg, id)
        .filter(|(op, _)| **op == Op::Binary(BinaryOp::Mul))
        .map(|(_, n)| (n.children[0], n.children[1]))
        .collect()
}

fn factor_mul(eg: &EG, id: Id, node: &ENode) -> Vec<Term> {
    let Some((BinaryOp::Add, x, y)) = binary(eg, node) else {
        return vec![];
    };
    let mut out = vec![];
    for (a1, b1) in products(eg, x) {
        for (a2, b2) in products(eg, y) {
            // Find a common factor (products commute).
            for (f, u, v) in [
                (a1, b1, a2, b2),
                (a1, b1, b2, a2),
                (b1, a1, a2, b2),
                (b1, a1, b2, a2),
            ]
            .into_iter()
            .filter(|(p, _, q, _)| eg.find(*p) == eg.find(*q))
            .map(|(p, u, _, v)| (p, u, v))
            {
                // Only when the factored form has the same shape and saves work.
                let sum = match typed(eg, Op::Binary(BinaryOp::Add), vec![c(u), c(v)]) {
                    Some(t) => t,
                    None => continue,
                };
                if let Some(t) = typed(eg, Op::Binary(BinaryOp::Mul), vec![c(f), sum])
                    && super::term_type(eg, &t).as_ref() == Some(ty(eg, id))
                {
                    out.push(t);
                }
            }
        }
    }
    out.truncate(2);
    out
}

fn factor_matmul(eg: &EG, id: Id, node: &ENode) -> Vec<Term> {
    let Some((BinaryOp::Add, x, y)) = binary(eg, node) else {
        return vec![];
    };
    // Only when the two products are used nowhere else.
    if !super::used_only_by(eg, x, id) || !super::used_only_by(eg, y, id) {
        return vec![];
    }
    let mut out = vec![];
    for (op1, n1) in ops_in(eg, x) {
        let Op::MatMul { .. } = op1 else { continue };
        for (op2, n2) in ops_in(eg, y) {
            if op1 != op2 {
                continue;
            }
            let (a1, b1, a2, b2) = (
                n1.children[0],
                n1.children[1],
                n2.children[0],
                n2.children[1],
            );
            let cands = [
                (eg.find(a1) == eg.find(a2) && ty(eg, b1) == ty(eg, b2), true),
                (
                    eg.find(b1) == eg.find(b2) && ty(eg, a1) == ty(eg, a2),
                    false,
                ),
            ];
            for (ok, left_common) in cands {
                if !ok {
                    continue;
                }
                let t = if left_common {
                    let sum = Term::Op(Op::Binary(BinaryOp::Add), vec![c(b1), c(b2)]);
                    typed(eg, op1.clone(), vec![c(a1), sum])
                } else {
                    let sum = Term::Op(Op::Binary(BinaryOp::Add), vec![c(a1), c(a2)]);
                    typed(eg, op1.clone(), vec![sum, c(b1)])
                };
                if let Some(t) = t
                    && super::term_type(eg, &t).as_ref() == Some(ty(eg, id))
                {
                    out.push(t);
                }
            }
        }
    }
    out
}
