//! Attention rules: recognise masked dense attention whose mask has a BigBird (ITC) or
//! ETC global-local layout and add the blockified form (MODELS.md §4a, §4b) to its class.
//!
//! The naive form the rules match (what `flumen::nn::attention::attention` builds):
//!
//! ```text
//! matmul(softmax(matmul(Q, K, transpose_b) · s + bias [+ key_bias], axis=-1), V)
//! ```
//!
//! with `Q, K, V: [B, H, n, d]`, `s` a scalar constant, `key_bias: [B, 1, 1, n]` (padding),
//! and `bias` either `reshape(broadcast_to(reshape(C)))` of a block-level constant
//! `C[H or 1, nb, nb]` holding 0 / −10000 (BigBird), or an element-level constant `[n, n]`
//! (ETC). The layout is read from the constant's values, so the rule is exact by
//! construction: the blockified form computes the same softmax over the same allowed keys
//! (the disallowed ones contribute `exp(−10000 + …) = 0` to the dense form). The
//! extractor keeps whichever form its cost model finds cheaper.

use super::{ops_in, scalar, ty};
use crate::egraph::lang::{EG, ENode, Term};
use crate::egraph::runner::Rule;
use egg::Id;
use flumen_frontend::nn::attention::{
    BigBirdLayout, EtcLayout, MASK_BIAS, bigbird_blockified, etc_blockified,
};
use flumen_frontend::op::{BinaryOp, Composite, Op};
use flumen_frontend::{Graph, Result, Tensor, Value};

/// The attention ruleset.
pub fn rules() -> Vec<Rule> {
    vec![
        // softmax(QKᵀs + bigbird_mask)V = bigbird_blockified(Q, K, V)
        Rule {
            name: "bigbird-blockify",
            identity: "softmax(QKᵀ·s + M_bigbird)V = blockified BigBird (reshape, roll, gather, batched matmul)",
            apply: bigbird,
        },
        // softmax(QKᵀs + etc_mask)V = etc_blockified(Q, K, V)
        Rule {
            name: "etc-blockify",
            identity: "softmax(QKᵀ·s + M_etc)V = blockified ETC (blocks of r+1, concat_3_blocks, global keys)",
            apply: etc,
        },
    ]
}

/// One instance of the naive form.
struct Naive {
    q: Id,
    k: Id,
    v: Id,
    scale: f64,
    bias: Id,
    key_bias: Option<Id>,
}

fn op_is(eg: &EG, n: &ENode, f: impl Fn(&Op) -> bool) -> bool {
    eg.analysis.op(n.sym).is_some_and(f)
}

/// The pairs `(a, b)` of the `a + b` nodes of a class, both orders.
fn sums(eg: &EG, id: Id) -> Vec<(Id, Id)> {
    ops_in(eg, id)
        .filter(|(op, _)| **op == Op::Binary(BinaryOp::Add))
        .flat_map(|(_, n)| {
            let (a, b) = (n.children[0], n.children[1]);
            [(a, b), (b, a)]
        })
        .collect()
}

/// `(Q, K, s)` for the `matmul(Q, K, transpose_b) · s` nodes of a class.
fn scaled_scores(eg: &EG, id: Id) -> Vec<(Id, Id, f64)> {
    let mut out = vec![];
    for (op, n) in ops_in(eg, id) {
        if *op != Op::Binary(BinaryOp::Mul) {
            continue;
        }
        for (m, s) in [
            (n.children[0], n.children[1]),
            (n.children[1], n.children[0]),
        ] {
            let Some(scale) = scalar(eg, s).filter(|_| ty(eg, s).rank() == 0) else {
                continue;
            };
            for (mop, mm) in ops_in(eg, m) {
                if *mop
                    == (Op::MatMul {
                        transpose_a: false,
                        transpose_b: true,
                    })
                {
                    out.push((mm.children[0], mm.children[1], scale));
                }
            }
        }
    }
    out
}

fn find_naive(eg: &EG, node: &ENode) -> Vec<Naive> {
    let mut out = vec![];
    if !op_is(eg, node, |op| {
        *op == Op::MatMul {
            transpose_a: false,
            transpose_b: false,
        }
    }) {
        return out;
    }
    let (p, v) = (node.children[0], node.children[1]);
    let vt = ty(eg, v);
    if vt.rank() != 4 || !vt.dtype.is_float() {
        return out;
    }
    let (bsz, n) = (vt.shape[0], vt.shape[2]);
    for (op, sm) in ops_in(eg, p) {
        if *op != Op::Composite(Composite::Softmax { axis: 3 }) {
            continue;
        }
        let logits = sm.children[0];
        // logits = scores + bias, or (scores + bias) + key_bias.
        let mut candidates: Vec<(Id, Id, Option<Id>)> = vec![];
        for (x, y) in sums(eg, logits) {
            candidates.push((x, y, None));
            if ty(eg, y).shape == [bsz, 1, 1, n] {
                for (s, b) in sums(eg, x) {
                    candidates.push((s, b, Some(y)));
                }
            }
        }
        for (scores, bias, key_bias) in candidates {
            for (q, k, scale) in scaled_scores(eg, scores) {
                let (qt, kt) = (ty(eg, q), ty(eg, k));
                if qt.rank() == 4 && qt == kt && qt.shape[..3] == vt.shape[..3] {
                    out.push(Naive {
                        q,
                        k,
                        v,
                        scale,
                        bias,
                        key_bias,
                    });
                }
            }
        }
    }
    out
}

/// Where a constant holds only 0 and −10000: `true` for 0 (allowed).
fn mask_of(v: &Value) -> Option<Vec<bool>> {
    let vals = v.to_f64_vec();
    vals.iter()
        .map(|&x| {
            if x == 0.0 {
                Some(true)
            } else if x == MASK_BIAS {
                Some(false)
            } else {
                None
            }
        })
        .collect()
}

/// The BigBird layout of a bias class: `reshape(broadcast_to(reshape(C)))`.
fn bigbird_layout(eg: &EG, bias: Id, heads: usize, n: usize) -> Option<BigBirdLayout> {
    let bt = ty(eg, bias);
    let hb = match bt.shape.as_slice() {
        [h, a, b] if *a == n && *b == n && (*h == heads || *h == 1) => *h,
        _ => return None,
    };
    for (op, r1) in ops_in(eg, bias) {
        let Op::Reshape(_) = op else { continue };
        for (op, bc) in ops_in(eg, r1.children[0]) {
            let Op::BroadcastTo(s) = op else { continue };
            let [h, nb, b, nb2, b2] = s.as_slice() else {
                continue;
            };
            if *h != hb || nb != nb2 || b != b2 || nb * b != n {
                continue;
            }
            for (op, r2) in ops_in(eg, bc.children[0]) {
                if *op != Op::Reshape(vec![hb, *nb, 1, *nb, 1]) {
                    continue;
                }
                for cn in &eg[r2.children[0]].nodes {
                    let Some(value) = eg.analysis.constant(cn.sym) else {
                        continue;
                    };
                    let Some(mask) = mask_of(value) else { continue };
                    let mut layout = BigBirdLayout::from_block_mask(&mask, hb, *nb, *b)?;
                    if hb == 1 && heads > 1 {
                        layout.random = vec![layout.random[0].clone(); heads];
                    }
                    return Some(layout);
                }
            }
        }
    }
    None
}

/// The ETC layout of a bias class: a constant `[n, n]` (or `[1, n, n]`).
fn etc_layout(eg: &EG, bias: Id, n: usize) -> Option<EtcLayout> {
    let bt = ty(eg, bias);
    if bt.shape != [n, n] && bt.shape != [1, n, n] {
        return None;
    }
    eg[bias].nodes.iter().find_map(|cn| {
        let value = eg.analysis.constant(cn.sym)?;
        EtcLayout::from_dense_mask(&mask_of(value)?, n)
    })
}

/// The blockified subgraph built by `build` on placeholders for Q, K, V (and key bias),
/// as a term bound to the matched classes.
fn subgraph(
    eg: &EG,
    m: &Naive,
    build: impl Fn(&Tensor, &Tensor, &Tensor, Option<&Tensor>) -> Result<Tensor>,
) -> Option<Term> {
    let g = Graph::new();
    let ph = |name: &str, id: Id| {
        let t = ty(eg, id);
        g.placeholder(name, t.dtype, &t.shape).ok()
    };
    let (q, k, v) = (ph("q", m.q)?, ph("k", m.k)?, ph("v", m.v)?);
    let kb = match m.key_bias {
        Some(id) => Some(ph("key_bias", id)?),
        None => None,
    };
    let out = build(&q, &k, &v, kb.as_ref()).ok()?;
    let mut bind = vec![(q.id(), m.q), (k.id(), m.k), (v.id(), m.v)];
    if let (Some(t), Some(id)) = (&kb, m.key_bias) {
        bind.push((t.id(), id));
    }
    Some(Term::Graph {
        def: g.def(),
        bind,
        output: out.id(),
    })
}

fn bigbird(eg: &EG, _id: Id, node: &ENode) -> Vec<Term> {
    find_naive(eg, node)
        .into_iter()
        .filter_map(|m| {
            let qt = ty(eg, m.q);
            let layout = bigbird_layout(eg, m.bias, qt.shape[1], qt.shape[2])?;
            if !layout.is_itc() {
                return None;
            }
            subgraph(eg, &m, |q, k, v, kb| {
                bigbird_blockified(q, k, v, &layout, kb, m.scale)
            })
        })
        .collect()
}

fn etc(eg: &EG, _id: Id, node: &ENode) -> Vec<Term> {
    find_naive(eg, node)
        .into_iter()
        .filter_map(|m| {
            let n = ty(eg, m.q).shape[2];
            let layout = etc_layout(eg, m.bias, n)?;
            subgraph(eg, &m, |q, k, v, kb| {
                etc_blockified(q, k, v, &layout, kb, m.scale)
            })
        })
        .collect()
}
