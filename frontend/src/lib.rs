//! Flumen's frontend: the graph IR, the op table and the Rust DSL that builds graphs.
//!
//! ```
//! use flumen_frontend::{Graph, DType};
//! let g = Graph::new();
//! let x = g.placeholder("x", DType::F32, &[2, 3])?;
//! let y = ((&x * 2.0)? + 1.0)?.relu()?;
//! assert_eq!(y.shape(), &[2, 3]);
//! // Mixing dtypes without a cast is an error naming the op and both dtypes:
//! let i = g.placeholder("i", DType::I32, &[2, 3])?;
//! let err = (&x + &i).unwrap_err();
//! assert!(err.to_string().contains("f32 and i32"));
//! # Ok::<(), flumen_frontend::GraphError>(())
//! ```
#![warn(missing_docs)]

pub mod autodiff;
pub mod dot;
pub mod dsl;
pub mod dtype;
pub mod error;
pub mod graph;
pub mod nn;
pub mod op;
mod tensor;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;
pub mod train;
pub mod value;

pub use autodiff::{UnconnectedGradients, gradients, gradients_or_zeros, gradients_with};
pub use dsl::state_init::Init;
pub use dsl::{IntoOperand, Operand, SliceArgs};
pub use dtype::{DType, Scalar};
pub use error::{BuildError, GraphError, Result};
pub use graph::{Graph, GraphDef, Node, NodeId};
pub use ndarray::s;
pub use op::{Op, TensorType};
pub use tensor::Tensor;
pub use value::{Element, Value};
