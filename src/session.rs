//! [`Session`]: runs fetches of a graph with feeds, holding variable state across runs
//! (TF1 semantics).

use crate::device::{CudaSession, Device};
use flumen_compiler::CompileReport;
use flumen_frontend::op::Op;
use flumen_frontend::{Graph, GraphDef, GraphError, NodeId, Result, Tensor, Value};
use flumen_runtime::SessionState;
use flumen_runtime::exec::Executable;
use flumen_runtime::interpreter::executor;
use std::collections::{BTreeMap, HashMap};

/// Which engine executes the graph.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// Compiled native code: fused kernels JIT-compiled with Cranelift, matrix products in
    /// a GEMM library. Compiled once per set of fetches and feeds, then cached.
    #[default]
    Compiled,
    /// The reference interpreter (the semantics oracle; slow and simple).
    Interpreter,
}

/// A cached executable and what compiling it reported.
struct Cached {
    exe: Executable,
    report: CompileReport,
}

/// Runs a [`Graph`]: `run(feeds, fetches)` evaluates the fetched tensors, applying any
/// assigns they depend on. Variables are initialised on first use and persist across runs.
/// The session sees nodes added to the graph after it was created.
pub struct Session {
    graph: Graph,
    state: SessionState,
    backend: Backend,
    cache: HashMap<(Vec<NodeId>, Vec<NodeId>), Cached>,
    /// Set when the session runs on a GPU ([`Session::with_device`]).
    cuda: Option<CudaSession>,
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
            cache: HashMap::new(),
            cuda: None,
        }
    }

    /// A session on `graph` that runs compiled code on `device`. [`Device::Cpu`] is the
    /// default compiled backend; [`Device::Cuda`] compiles to CUDA (fused kernels through
    /// NVRTC, matrix products in cuBLAS, each run replayed as a CUDA graph) and keeps the
    /// variables in device memory between runs. Errors when the device cannot be used: built
    /// without the `cuda` feature, no NVIDIA driver, NVRTC or cuBLAS missing (the message
    /// names the library), or no GPU with that ordinal.
    ///
    /// On a GPU session, [`Session::variables`] and [`Session::state`] show the host copies
    /// as of the last synchronisation: the methods taking `&mut self` that read or change
    /// variables synchronise first, and [`Session::sync_variables`] does it explicitly.
    pub fn with_device(graph: &Graph, device: Device) -> Result<Session> {
        let mut sess = Session::with_backend(graph, Backend::Compiled);
        if let Device::Cuda(i) = device {
            sess.cuda = Some(CudaSession::open(i)?);
        }
        Ok(sess)
    }

    /// The device compiled code runs on ([`Device::Cpu`] for the interpreter too).
    pub fn device(&self) -> Device {
        self.cuda
            .as_ref()
            .map_or(Device::Cpu, |c| Device::Cuda(c.ordinal()))
    }

    /// Copy the variables that GPU runs changed back into the host state
    /// ([`Session::variables`]); a no-op on the CPU.
    pub fn sync_variables(&mut self) -> Result<()> {
        match &mut self.cuda {
            Some(c) => c.sync(&mut self.state),
            None => Ok(()),
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
        let graph = self.graph.clone();
        let feed_ids = graph.with_def(|def| self.check_feeds(def, feeds))?;
        match self.backend {
            Backend::Interpreter => graph.with_def(|def| {
                check_all_fed(def, &feed_ids, &fetch_ids)?;
                let feed_map: HashMap<NodeId, Value> =
                    feeds.iter().map(|(t, v)| (t.id(), v.clone())).collect();
                executor::run(def, &feed_map, &fetch_ids, &mut self.state)
            }),
            Backend::Compiled if self.cuda.is_some() => {
                // With the graph borrowed: `graph.def()` clones it, constants and variable
                // initial values included (512 MiB per run in the 8192² GEMM benchmark).
                graph.with_def(|def| check_all_fed(def, &feed_ids, &fetch_ids))?;
                let values: Vec<&Value> = feeds.iter().map(|(_, v)| v).collect();
                let cuda = self.cuda.as_mut().expect("matched");
                cuda.run(&graph, &mut self.state, (fetch_ids, feed_ids), &values)
            }
            Backend::Compiled => {
                let key = (fetch_ids, feed_ids);
                if !self.cache.contains_key(&key) {
                    let def = graph.def();
                    check_all_fed(&def, &key.1, &key.0)?;
                    let (exe, report) = flumen_compiler::compile(&def, &key.1, &key.0)?;
                    self.cache.insert(key.clone(), Cached { exe, report });
                }
                let cached = self.cache.get_mut(&key).expect("just inserted");
                if cached
                    .exe
                    .variables
                    .iter()
                    .any(|v| !self.state.variables.contains_key(v))
                {
                    graph.with_def(|def| {
                        let needed = def.reachable(&key.0, false);
                        executor::initialize_variables(def, &needed, &mut self.state)
                    })?;
                }
                let values: Vec<&Value> = feeds.iter().map(|(_, v)| v).collect();
                cached.exe.run(&values, &mut self.state)
            }
        }
    }

    /// What compiling the executable for these fetches and feeds reported (compiling it if
    /// needed), or `None` on the interpreter backend.
    pub fn compile_report(
        &mut self,
        feeds: &[&Tensor],
        fetches: &[&Tensor],
    ) -> Result<Option<CompileReport>> {
        if self.backend == Backend::Interpreter {
            return Ok(None);
        }
        let fetch_ids = fetches
            .iter()
            .map(|t| self.check_fetch(t))
            .collect::<Result<Vec<_>>>()?;
        let feed_ids = feeds
            .iter()
            .map(|t| self.check_fetch(t))
            .collect::<Result<Vec<_>>>()?;
        let key = (fetch_ids, feed_ids);
        if let Some(cuda) = &mut self.cuda {
            return cuda.compile_report(&self.graph, key).map(Some);
        }
        if !self.cache.contains_key(&key) {
            let def = self.graph.def();
            let (exe, report) = flumen_compiler::compile(&def, &key.1, &key.0)?;
            self.cache.insert(key.clone(), Cached { exe, report });
        }
        Ok(Some(self.cache[&key].report.clone()))
    }

    fn check_feeds(&self, def: &GraphDef, feeds: &[(&Tensor, Value)]) -> Result<Vec<NodeId>> {
        let mut ids: Vec<NodeId> = Vec::with_capacity(feeds.len());
        for (t, v) in feeds {
            let bad = |msg: String| GraphError::Feed {
                placeholder: t.name(),
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
            if ids.contains(&t.id()) {
                return Err(bad("fed twice".into()));
            }
            ids.push(t.id());
        }
        Ok(ids)
    }

    /// Initialise every variable of the graph that is not initialised yet.
    pub fn initialize(&mut self) -> Result<()> {
        self.sync_variables()?;
        let def = self.graph.def();
        let all = vec![true; def.len()];
        executor::initialize_variables(&def, &all, &mut self.state)
    }

    /// The current value of every initialised variable, by name (on a GPU session, as of
    /// the last [`Session::sync_variables`]).
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
        self.sync_variables()?;
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

    /// Drop every cached executable (they are rebuilt on the next run).
    pub fn clear_cache(&mut self) {
        self.cache.clear();
        if let Some(c) = &mut self.cuda {
            c.clear_cache();
        }
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

    /// The session state (variables and random counters). On a GPU session the variables
    /// are the host copies as of the last [`Session::sync_variables`].
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// Mutable access to the session state (on a GPU session, synchronised first; changes
    /// are uploaded before the next run).
    pub fn state_mut(&mut self) -> &mut SessionState {
        if let Some(c) = &mut self.cuda
            && let Err(e) = c.sync(&mut self.state)
        {
            // The device failed (a lost context); the host copies stay as they were.
            eprintln!("flumen: could not copy variables back from the GPU: {e}");
        }
        &mut self.state
    }
}

/// Every placeholder the fetches depend on must be among the feeds.
fn check_all_fed(def: &GraphDef, feeds: &[NodeId], fetches: &[NodeId]) -> Result<()> {
    let needed = def.reachable(fetches, false);
    for (id, node) in def.iter() {
        if needed[id.0] && matches!(node.op, Op::Placeholder { .. }) && !feeds.contains(&id) {
            return Err(GraphError::Feed {
                placeholder: node.name.clone(),
                msg: format!("must be fed a {} value (fetches depend on it)", node.ty),
            });
        }
    }
    Ok(())
}
