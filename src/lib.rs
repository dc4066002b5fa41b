//! Flumen: TF1-style static dataflow graphs built in a Rust DSL, optimised ahead of time and
//! run by a [`Session`].
//!
//! ```
//! use flumen::{Graph, Session, DType, Value};
//! let g = Graph::new();
//! let x = g.placeholder("x", DType::F32, &[3])?;
//! let w = g.variable("w", ndarray::arr1(&[1.0f32, 2.0, 3.0]))?;
//! let y = (&x * &w)?.sum_all()?;
//! let mut sess = Session::new(&g);
//! let out = sess.run(&[(&x, Value::from(ndarray::arr1(&[1.0f32, 1.0, 1.0])))], &[&y])?;
//! assert_eq!(out[0].as_f32()?.iter().next(), Some(&6.0));
//! # Ok::<(), flumen::GraphError>(())
//! ```
#![warn(missing_docs)]

pub mod aot;
mod checkpoint;
pub mod data;
mod device;
pub mod model_dir;
pub mod models;
pub mod plot;
mod session;
pub mod tensorboard;

pub use device::Device;
pub use flumen_frontend::{
    BuildError, DType, Element, Graph, GraphDef, GraphError, Init, Node, NodeId, Op, Result,
    Scalar, SliceArgs, Tensor, TensorType, UnconnectedGradients, Value, autodiff, dsl, dtype,
    error, gradients, gradients_or_zeros, gradients_with, graph, nn, op, s, train, value,
};
pub use flumen_runtime::SessionState;
pub use session::{Backend, FeedView, Session};

/// The compiler crate (passes, verifier).
pub use flumen_compiler as compiler;
/// The runtime crate (interpreter, executor).
pub use flumen_runtime as runtime;
