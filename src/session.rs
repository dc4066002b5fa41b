//! [`Session`]: runs fetches of a graph with feeds, holding variable state across runs
//! (TF1 semantics).

use flumen_frontend::op::Op;
use flumen_frontend::{Graph, GraphError, NodeId, Result, Tensor, Value};
use flumen_runtime::SessionState;
use flumen_runtime::interpreter::executor;
use std::collections::{BTreeMap, HashMap};

/// Which engine executes the graph.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The reference interpreter (the semantics oracle; slow and simple).
    #[default]
    Interpreter,
}

/// Runs a [`Graph`]: `run(feeds, fetches)` evaluates the fetched tensors, applying any
/// assigns they depend on. Variables are initialised on first use and persist across runs.
/// The session sees nodes added to the graph after it was created.
pub struct Session {
    graph: Graph,
    state: SessionState,
    backend: Backend,
}

impl Session {
    /// A session on `graph` with the default backend.
    pub fn new(graph: &Graph) -> Session {
        Session::with_backend(graph, Backend::default())
    }

    /// A session on `graph` with a chosen backend.
    pub fn with_backend(graph: &Graph, backend: Backend) -> Session {
        Session {
            graph: graph.clone(),
            state: SessionState::new(),
            backend,
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The graph this session runs.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    fn check_fetch(&self, t: &Tensor) -> Result<NodeId> {
        if !self.graph.same_graph(t.graph()) {
            return Err(GraphError::Fetch {
                node: t.name(),
                msg: "this tensor belongs to another graph than the session's".into(),
            });
        }
        Ok(t.id())
    }

    /// Evaluate `fetches` given placeholder `feeds`. Every placeholder the fetches depend on
    /// must be fed exactly once with its declared dtype and shape.
    pub fn run(&mut self, feeds: &[(&Tensor, Value)], fetches: &[&Tensor]) -> Result<Vec<Value>> {
        let fetch_ids = fetches
            .iter()
            .map(|t| self.check_fetch(t))
            .collect::<Result<Vec<_>>>()?;
        let def = self.graph.def();
        let mut feed_map: HashMap<NodeId, Value> = HashMap::new();
        for (t, v) in feeds {
            let name = t.name();
            let bad = |msg: String| GraphError::Feed {
                placeholder: name.clone(),
                msg,
            };
            if !self.graph.same_graph(t.graph()) {
                return Err(bad(
                    "this placeholder belongs to another graph than the session's".into(),
                ));
            }
            let node = def.node(t.id());
            let Op::Placeholder { dtype, shape } = &node.op else {
                return Err(bad(format!(
                    "only placeholders can be fed; this is a {} node",
                    node.op.name()
                )));
            };
            if v.dtype() != *dtype {
                return Err(bad(format!(
                    "fed a {} value but the placeholder is {}{}",
                    v.dtype(),
                    dtype,
                    if v.dtype().is_numeric() && dtype.is_numeric() {
                        " (convert the array first)"
                    } else {
                        ""
                    }
                )));
            }
            if v.shape() != shape.as_slice() {
                return Err(bad(format!(
                    "fed shape {:?} but the placeholder has shape {:?}",
                    v.shape(),
                    shape
                )));
            }
            if feed_map.insert(t.id(), v.clone()).is_some() {
                return Err(bad("fed twice".into()));
            }
        }
        let needed = def.reachable(&fetch_ids, false);
        for (id, node) in def.iter() {
            if needed[id.0]
                && matches!(node.op, Op::Placeholder { .. })
                && !feed_map.contains_key(&id)
            {
                return Err(GraphError::Feed {
                    placeholder: node.name.clone(),
                    msg: format!("must be fed a {} value (fetches depend on it)", node.ty),
                });
            }
        }
        match self.backend {
            Backend::Interpreter => executor::run(&def, &feed_map, &fetch_ids, &mut self.state),
        }
    }

    /// Initialise every variable of the graph that is not initialised yet.
    pub fn initialize(&mut self) -> Result<()> {
        let def = self.graph.def();
        let all = vec![true; def.len()];
        executor::initialize_variables(&def, &all, &mut self.state)
    }

    /// The current value of every initialised variable, by name.
    pub fn variables(&self) -> &BTreeMap<String, Value> {
        &self.state.variables
    }

    /// The current value of variable `var` (initialising it if needed).
    pub fn variable(&mut self, var: &Tensor) -> Result<Value> {
        self.check_variable(var)?;
        self.initialize()?;
        Ok(self.state.variables[&var.name()].clone())
    }

    /// Overwrite variable `var` with `value` (same dtype and shape).
    pub fn set_variable(&mut self, var: &Tensor, value: Value) -> Result<()> {
        self.check_variable(var)?;
        if value.dtype() != var.dtype() || value.shape() != var.shape() {
            return Err(GraphError::invalid(format!(
                "variable `{}` is {} but the value is {}{:?}",
                var.name(),
                var.ty(),
                value.dtype(),
                value.shape()
            )));
        }
        self.state.variables.insert(var.name(), value);
        Ok(())
    }

    fn check_variable(&self, var: &Tensor) -> Result<()> {
        self.check_fetch(var)?;
        if !matches!(var.op(), Op::Variable { .. }) {
            return Err(GraphError::invalid(format!(
                "`{}` is a {} node, not a variable",
                var.name(),
                var.op().name()
            )));
        }
        Ok(())
    }

    /// The session state (variables and random counters).
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// Mutable access to the session state.
    pub fn state_mut(&mut self) -> &mut SessionState {
        &mut self.state
    }
}
