//! Flumen's compiler: the graph verifier and the pass framework (named passes composed into
//! a pipeline, with the verifier between passes in tests and debug builds).
#![warn(missing_docs)]

pub mod aot;
pub mod codegen;
pub mod compile;
pub mod cuda;
pub mod egraph;
pub mod kernel;
pub mod lower;
pub mod pass;
pub mod passes;
pub mod verify;

pub use compile::{CompileReport, compile};
pub use pass::{Pass, Pipeline, Unit};
pub use verify::verify;
