//! The graph-to-graph passes, one file each, and the default pipeline.
//!
//! Every pass keeps [`Unit::outputs`](crate::pass::Unit) pointing at nodes with the same
//! values and keeps the names of stateful nodes (variables, random ops, placeholders),
//! which the session's state and feeds are keyed by.

mod canonicalize;
pub mod constant_folding;
mod cse;
mod dce;

pub use canonicalize::Canonicalize;
pub use constant_folding::{ConstantFolding, MAX_FOLDED_ELEMENTS, is_foldable_op};
pub use cse::CommonSubexpressionElimination;
pub use dce::DeadCodeElimination;

pub use crate::egraph::Saturate;

use crate::pass::Pipeline;

/// The passes every compiled graph goes through, in order: `canonicalize` (composites to
/// primitives) → `constant_folding` → `cse` → `dce`; with `FLUMEN_EGRAPH=1`, the
/// [`optimizing_pipeline`] instead.
pub fn default_pipeline() -> Pipeline {
    if std::env::var("FLUMEN_EGRAPH").is_ok_and(|v| v == "1") {
        return optimizing_pipeline();
    }
    Pipeline::new()
        .with(Canonicalize)
        .with(ConstantFolding)
        .with(CommonSubexpressionElimination)
        .with(DeadCodeElimination)
}

/// `saturate` (equality saturation with egg, see [`crate::egraph`]) followed by the passes
/// of the default pipeline.
pub fn optimizing_pipeline() -> Pipeline {
    Pipeline::new()
        .with(Saturate::default())
        .with(Canonicalize)
        .with(ConstantFolding)
        .with(CommonSubexpressionElimination)
        .with(DeadCodeElimination)
}
