//! The pass framework: a [`Pass`] maps a graph to a graph; a [`Pipeline`] runs named passes
//! in order, runs the verifier after each one (always in tests and debug builds, or when
//! asked), and prints the IR after the passes named in `FLUMEN_DUMP` (comma-separated pass
//! names, or `all`).

use crate::verify::verify;
use flumen_frontend::{GraphDef, GraphError, Result};

/// A named graph-to-graph transformation.
pub trait Pass {
    /// The pass's name (used by `FLUMEN_DUMP` and in error messages).
    fn name(&self) -> &'static str;
    /// Transform the graph.
    fn run(&self, def: GraphDef) -> Result<GraphDef>;
}

/// An ordered list of passes.
pub struct Pipeline {
    passes: Vec<Box<dyn Pass>>,
    verify_between: bool,
    dump: Vec<String>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline::new()
    }
}

impl Pipeline {
    /// An empty pipeline; the verifier runs between passes in debug builds, and `FLUMEN_DUMP`
    /// is read from the environment.
    pub fn new() -> Self {
        let dump = std::env::var("FLUMEN_DUMP")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Pipeline {
            passes: Vec::new(),
            verify_between: cfg!(debug_assertions),
            dump,
        }
    }

    /// Append a pass.
    pub fn with(mut self, pass: impl Pass + 'static) -> Self {
        self.passes.push(Box::new(pass));
        self
    }

    /// Force the verifier on or off between passes.
    pub fn verify_between(mut self, on: bool) -> Self {
        self.verify_between = on;
        self
    }

    /// Print the IR after these passes (in addition to `FLUMEN_DUMP`).
    pub fn dump_after(mut self, names: &[&str]) -> Self {
        self.dump.extend(names.iter().map(|s| s.to_string()));
        self
    }

    /// The passes' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.passes.iter().map(|p| p.name()).collect()
    }

    /// Run every pass in order.
    pub fn run(&self, mut def: GraphDef) -> Result<GraphDef> {
        if self.verify_between {
            verify(&def).map_err(|e| GraphError::invalid(format!("before the first pass: {e}")))?;
        }
        for pass in &self.passes {
            def = pass.run(def)?;
            if self.verify_between {
                verify(&def).map_err(|e| {
                    GraphError::invalid(format!("after pass `{}`: {e}", pass.name()))
                })?;
            }
            if self.dump.iter().any(|d| d == pass.name() || d == "all") {
                eprintln!("// IR after pass `{}`\n{def}", pass.name());
            }
        }
        Ok(def)
    }
}
