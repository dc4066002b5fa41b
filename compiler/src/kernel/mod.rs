//! The fused-kernel IR ([`ir`]) and its reference evaluator ([`eval`]).

pub mod eval;
pub mod ir;

pub use ir::{Access, BufId, Expr, ExprId, Kernel, KernelFn, Phase, PhaseKind};
