//! The reference interpreter: plain ndarray code for every op. It defines the semantics;
//! clarity over speed.
//!
//! [`eval_op`] evaluates one pure op (everything but the variable ops, which the executor
//! in [`executor`] handles against [`SessionState`](crate::state::SessionState)).

mod eval;
pub mod executor;
pub(crate) mod kernels;

pub use eval::eval_op;
pub use kernels::index::assign_slice;

/// Per-execution context for ops that need more than their inputs.
#[derive(Clone, Copy, Debug, Default)]
pub struct EvalContext {
    /// How many times this node has run before in the session (the Philox counter of
    /// random ops).
    pub counter: u64,
}
