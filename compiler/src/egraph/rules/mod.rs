//! The rulesets, one file per topic. Each rule is data — a name, the identity it states
//! and a function that finds the instances — and each file lists its rules in one table.
//!
//! Rules only add terms whose shape rule holds (checked with the op table before they
//! return them); the runner checks that each term has the type of the class it is equated
//! with.

pub mod algebra;
pub mod attention;
pub mod fusion;
pub mod layout;

use super::lang::{EG, ENode, Term};
use egg::Id;
use flumen_frontend::op::{Op, TensorType};

/// The identity a rule states, by rule name, over every ruleset.
pub fn identity_of(name: &str) -> Option<&'static str> {
    [
        algebra::rules(),
        fusion::rules(),
        layout::rules(),
        attention::rules(),
    ]
    .into_iter()
    .flatten()
    .find(|r| r.name == name)
    .map(|r| r.identity)
}

/// The type of a class.
pub(crate) fn ty(eg: &EG, id: Id) -> &TensorType {
    &eg[id].data.ty
}

/// The splat value of a class, if it is a constant with one value everywhere.
pub(crate) fn scalar(eg: &EG, id: Id) -> Option<f64> {
    eg[id].data.scalar
}

/// The op nodes of a class with their nodes.
pub(crate) fn ops_in(eg: &EG, id: Id) -> impl Iterator<Item = (&Op, &ENode)> {
    eg[id]
        .nodes
        .iter()
        .filter_map(move |n| eg.analysis.op(n.sym).map(|op| (op, n)))
}

/// `op(args)` if its shape rule accepts the argument types (given as classes or terms).
pub(crate) fn typed(eg: &EG, op: Op, args: Vec<Term>) -> Option<Term> {
    let types = args
        .iter()
        .map(|a| term_type(eg, a))
        .collect::<Option<Vec<_>>>()?;
    op.infer(&types).ok()?;
    Some(Term::Op(op, args))
}

/// The type of a term (None for subgraphs or ill-typed terms).
pub(crate) fn term_type(eg: &EG, t: &Term) -> Option<TensorType> {
    match t {
        Term::Class(id) => Some(ty(eg, *id).clone()),
        Term::Const(v) => Some(TensorType::new(v.dtype(), v.shape())),
        Term::Op(op, args) => {
            let types = args
                .iter()
                .map(|a| term_type(eg, a))
                .collect::<Option<Vec<_>>>()?;
            op.infer(&types).ok()
        }
        Term::Graph { def, output, .. } => def.get(*output).map(|n| n.ty.clone()),
    }
}

/// `Term::Class`.
pub(crate) fn c(id: Id) -> Term {
    Term::Class(id)
}

/// Whether `perm` swaps the last two axes and keeps the others.
pub(crate) fn is_last_two_swap(perm: &[usize]) -> bool {
    let r = perm.len();
    r >= 2
        && perm[r - 1] == r - 2
        && perm[r - 2] == r - 1
        && perm[..r - 2].iter().enumerate().all(|(i, &p)| i == p)
}

/// Whether class `m` is used only by e-nodes of class `user` and is not a root: a rule
/// that rewrites `user` in terms of `m`'s operands then leaves nothing else needing `m`,
/// so it cannot duplicate `m`'s work (the guard of the rules that build a new matmul from
/// a consumer of an existing one).
pub(crate) fn used_only_by(eg: &EG, m: Id, user: Id) -> bool {
    let (m, user) = (eg.find(m), eg.find(user));
    !eg.analysis.roots.iter().any(|r| eg.find(*r) == m)
        && eg[m].parents().all(|p| eg.find(p) == user)
}
