//! The pass framework: a [`Pass`] maps a graph to a graph; a [`Pipeline`] runs named passes
//! in order, runs the verifier after each one (always in tests and debug builds, or when
//! asked), and prints the IR after the passes named in `FLUMEN_DUMP` (comma-separated pass
//! names, or `all`).

use crate::verify::verify;
use flumen_frontend::{GraphDef, GraphError, NodeId, Result};

/// What passes transform: a graph and the nodes whose values are wanted (the fetches, and
/// the assigns and groups that must run). Passes keep `outputs` pointing at nodes with the
/// same values, and keep the names of stateful nodes (variables, random ops), which the
/// session state is keyed by.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    /// The graph.
    pub def: GraphDef,
    /// Nodes that must be computed, in fetch order.
    pub outputs: Vec<NodeId>,
}

/// A named transformation of a [`Unit`].
pub trait Pass {
    /// The pass's name (used by `FLUMEN_DUMP` and in error messages).
    fn name(&self) -> &'static str;
    /// Transform the unit.
    fn run(&self, unit: Unit) -> Result<Unit>;
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
    pub fn run(&self, mut unit: Unit) -> Result<Unit> {
        let check = |unit: &Unit, when: &str| -> Result<()> {
            verify(&unit.def).map_err(|e| GraphError::invalid(format!("{when}: {e}")))?;
            if let Some(bad) = unit.outputs.iter().find(|o| o.0 >= unit.def.len()) {
                return Err(GraphError::invalid(format!(
                    "{when}: output {bad} is not a node"
                )));
            }
            Ok(())
        };
        if self.verify_between {
            check(&unit, "before the first pass")?;
        }
        for pass in &self.passes {
            unit = pass.run(unit)?;
            if self.verify_between {
                check(&unit, &format!("after pass `{}`", pass.name()))?;
            }
            if self.dump.iter().any(|d| d == pass.name() || d == "all") {
                eprintln!("// IR after pass `{}`\n{}", pass.name(), unit.def);
            }
        }
        Ok(unit)
    }
}
