//! Neural-network building blocks on top of the DSL: weight initializers
//! ([`Initializer`]), the [`dense`] layer with its [`Activation`], and the loss
//! [`Reduction`] shared by the loss methods on [`Tensor`](crate::Tensor) (`dsl/nn.rs`).
//!
//! ```
//! use flumen_frontend::{Graph, DType};
//! use flumen_frontend::nn::{dense, Activation, Initializer, Reduction};
//! let g = Graph::new();
//! g.set_seed(7);
//! let x = g.placeholder("x", DType::F32, &[8, 4])?;
//! let labels = g.placeholder("labels", DType::I64, &[8])?;
//! let h = dense("hidden", &x, 16, Activation::Relu, &Initializer::HeNormal, &Initializer::Zeros)?;
//! let logits = dense("out", &h, 3, Activation::Linear, &Initializer::GlorotUniform, &Initializer::Zeros)?;
//! let loss = logits.sparse_softmax_cross_entropy(&labels, None, Reduction::SumOverBatchSize)?;
//! assert!(loss.shape().is_empty());
//! assert!(g.get("hidden/W").is_some() && g.get("out/b").is_some());
//! # Ok::<(), flumen_frontend::GraphError>(())
//! ```

/// Keras' fuzz factor `backend.epsilon()`, used to clip probabilities in
/// [`Tensor::binary_cross_entropy`](crate::Tensor::binary_cross_entropy).
pub const EPSILON: f64 = 1e-7;

pub mod attention;
mod dense;
mod init;
mod reduction;

pub use dense::{Activation, dense};
pub use init::{Initializer, fans};
pub use reduction::Reduction;
