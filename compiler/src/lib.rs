//! Flumen's compiler: the graph verifier and the pass framework (named passes composed into
//! a pipeline, with the verifier between passes in tests and debug builds).
#![warn(missing_docs)]

pub mod pass;
pub mod verify;

pub use pass::{Pass, Pipeline};
pub use verify::verify;
