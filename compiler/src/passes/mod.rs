//! The graph-to-graph passes, one file each, and the default pipeline.

mod canonicalize;
mod dce;

pub use canonicalize::Canonicalize;
pub use dce::DeadCodeElimination;

use crate::pass::Pipeline;

/// The passes every compiled graph goes through, in order.
pub fn default_pipeline() -> Pipeline {
    Pipeline::new().with(Canonicalize).with(DeadCodeElimination)
}
