//! Fusion-friendly forms: rewrites that let lowering fuse more or compute less — a scalar
//! factor moved onto the smaller matmul operand (where it fuses into that operand's
//! producer), division by a power of two as an exact multiplication, `x·x` as `square`,
//! `a + (−b)` as one subtraction, idempotent activations.
//!
//! `scale-into-matmul` only fires when nothing else uses the product (so it never makes a
//! shared matmul be computed twice). All are exact except `scale-into-matmul`, which is exact when the scalar is a power of
//! two (as `1/√d` is for d = 4, 16, 64, 256) and otherwise rounds the scaled operand once.

use super::{c, ops_in, scalar, ty, typed};
use crate::egraph::lang::{EG, ENode, Term};
use crate::egraph::runner::Rule;
use egg::Id;
use flumen_frontend::op::{BinaryOp, Op, UnaryOp};
use flumen_frontend::{Scalar, Value};

/// The fusion ruleset.
pub fn rules() -> Vec<Rule> {
    vec![
        // (AB)·s = (A·s)B = A(B·s) for a scalar s
        Rule {
            name: "scale-into-matmul",
            identity: "(AB)·s = (A·s)B = A(B·s)",
            apply: scale_into_matmul,
        },
        // x / 2ᵏ = x · 2⁻ᵏ
        Rule {
            name: "div-pow2-to-mul",
            identity: "x / 2ᵏ = x · 2⁻ᵏ",
            apply: div_pow2,
        },
        // x · x = square(x)
        Rule {
            name: "mul-self-square",
            identity: "x · x = square(x)",
            apply: mul_self,
        },
        // a + (−b) = a − b
        Rule {
            name: "add-neg-sub",
            identity: "a + (−b) = a − b",
            apply: add_neg,
        },
        // relu(relu(x)) = relu(x)
        Rule {
            name: "relu-idempotent",
            identity: "relu(relu(x)) = relu(x)",
            apply: relu_relu,
        },
    ]
}

fn scale_into_matmul(eg: &EG, id: Id, node: &ENode) -> Vec<Term> {
    if eg.analysis.op(node.sym) != Some(&Op::Binary(BinaryOp::Mul)) {
        return vec![];
    }
    let (x, s) = (node.children[0], node.children[1]);
    let mut out = vec![];
    for (m, s) in [(x, s), (s, x)] {
        if ty(eg, s).rank() != 0 || !ty(eg, s).dtype.is_float() {
            continue;
        }
        // Never when the product is also used elsewhere: that would compute it twice.
        if !super::used_only_by(eg, m, id) {
            continue;
        }
        for (op, mm) in ops_in(eg, m) {
            if let Op::MatMul { .. } = op {
                let (a, b) = (mm.children[0], mm.children[1]);
                let sa = typed(eg, Op::Binary(BinaryOp::Mul), vec![c(a), c(s)]);
                let sb = typed(eg, Op::Binary(BinaryOp::Mul), vec![c(b), c(s)]);
                for t in [
                    sa.and_then(|sa| typed(eg, op.clone(), vec![sa, c(b)])),
                    sb.and_then(|sb| typed(eg, op.clone(), vec![c(a), sb])),
                ]
                .into_iter()
                .flatten()
                {
                    if super::term_type(eg, &t).as_ref() == Some(ty(eg, id)) {
                        out.push(t);
                    }
                }
            }
        }
    }
    out
}

fn div_pow2(eg: &EG, _id: Id, node: &ENode) -> Vec<Term> {
    if eg.analysis.op(node.sym) != Some(&Op::Binary(BinaryOp::Div)) {
        return vec![];
    }
    let (x, d) = (node.children[0], node.children[1]);
    let t = ty(eg, d);
    let Some(v) = scalar(eg, d) else {
        return vec![];
    };
    if !t.dtype.is_float() || v == 0.0 || !v.is_finite() {
        return vec![];
    }
    let inv = 1.0 / v;
    // Exact iff v is a power of two whose inverse is normal in the dtype.
    let pow2 = v.abs().log2().fract() == 0.0 && inv.is_normal() && (inv as f32).is_normal();
    if !pow2 {
        return vec![];
    }
    let k = Value::full(t.dtype, &t.shape, Scalar::Float(inv));
    typed(eg, Op::Binary(BinaryOp::Mul), vec![c(x), Term::Const(k)])
        .into_iter()
        .collect()
}

fn mul_self(eg: &EG, _id: Id, node: &ENode) -> Vec<Term> {
    if eg.analysis.op(node.sym) != Some(&Op::Binary(BinaryOp::Mul)) {
        return vec![];
    }
    let (a, b) = (node.children[0], node.children[1]);
    if eg.find(a) != eg.find(b) || !ty(eg, a).dtype.is_float() {
        return vec![];
    }
    typed(eg, Op::Unary(UnaryOp::Square), vec![c(a)])
        .into_iter()
        .collect()
}

fn add_neg(eg: &EG, _id: Id, node: &ENode) -> Vec<Term> {
    if eg.analysis.op(node.sym) != Some(&Op::Binary(BinaryOp::Add)) {
        return vec![];
    }
    let (a, b) = (node.children[0], node.children[1]);
    let mut out = vec![];
    for (x, y) in [(a, b), (b, a)] {
        for (op, n) in ops_in(eg, y) {
            if *op == Op::Unary(UnaryOp::Neg) {
                out.extend(typed(
                    eg,
                    Op::Binary(BinaryOp::Sub),
                    vec![c(x), c(n.children[0])],
                ));
            }
        }
    }
    out
}

fn relu_relu(eg: &EG, _id: Id, node: &ENode) -> Vec<Term> {
    if eg.analysis.op(node.sym) != Some(&Op::Unary(UnaryOp::Relu)) {
        return vec![];
    }
    let x = node.children[0];
    if ops_in(eg, x).any(|(op, _)| *op == Op::Unary(UnaryOp::Relu)) {
        vec![c(x)]
    } else {
        vec![]
    }
}
