//! Flumen's runtime: the reference interpreter (the oracle every backend is tested
//! against), the session state (variables and random-op counters) and the executor that
//! runs a graph on them.
#![warn(missing_docs)]

pub mod cuda;
pub mod exec;
pub mod interpreter;
pub mod state;

pub use interpreter::{EvalContext, eval_op};
pub use state::SessionState;
