//! [`Session`]: runs fetches of a graph with feeds, holding variable state across runs
//! (TF1 semantics). Feeds are owned [`Value`]s ([`Session::run`]) or borrowed arrays
//! ([`Session::run_views`], [`FeedView`]), which the compiled CPU backend reads in place.

use crate::device::{CudaSession, Device};
use flumen_compiler::CompileReport;
use flumen_frontend::op::Op;
use flumen_frontend::{
    DType, Element, Graph, GraphDef, GraphError, NodeId, Result, Tensor, Value, map_value,
};
use flumen_runtime::SessionState;
use flumen_runtime::exec::Executable;
use flumen_runtime::interpreter::executor;
use ndarray::{ArrayD, ArrayViewD};
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

/// A borrowed feed for [`Session::run_views`]: a view of an array of any dtype (any strides;
/// a row-major one is read in place by the compiled CPU backend, without a copy).
///
/// Make one with `FeedView::from(&value)`, `FeedView::from(&array)` or
/// `FeedView::from(array.view())`, e.g. from a slice of a larger batch.
#[derive(Clone, Debug)]
pub enum FeedView<'a> {
    /// f32 elements.
    F32(ArrayViewD<'a, f32>),
    /// f64 elements.
    F64(ArrayViewD<'a, f64>),
    /// i32 elements.
    I32(ArrayViewD<'a, i32>),
    /// i64 elements.
    I64(ArrayViewD<'a, i64>),
    /// u8 elements.
    U8(ArrayViewD<'a, u8>),
    /// bool elements.
    Bool(ArrayViewD<'a, bool>),
}

/// Apply an expression to the view inside a [`FeedView`], whatever its dtype.
macro_rules! map_view {
    ($view:expr, $a:ident => $body:expr) => {
        match $view {
            FeedView::F32($a) => $body,
            FeedView::F64($a) => $body,
            FeedView::I32($a) => $body,
            FeedView::I64($a) => $body,
            FeedView::U8($a) => $body,
            FeedView::Bool($a) => $body,
        }
    };
}

macro_rules! feed_view_from {
    ($t:ty, $variant:ident) => {
        impl<'a> From<ArrayViewD<'a, $t>> for FeedView<'a> {
            fn from(a: ArrayViewD<'a, $t>) -> Self {
                FeedView::$variant(a)
            }
        }
        impl<'a> From<&'a ArrayD<$t>> for FeedView<'a> {
            fn from(a: &'a ArrayD<$t>) -> Self {
                FeedView::$variant(a.view())
            }
        }
    };
}
feed_view_from!(f32, F32);
feed_view_from!(f64, F64);
feed_view_from!(i32, I32);
feed_view_from!(i64, I64);
feed_view_from!(u8, U8);
feed_view_from!(bool, Bool);

impl<'a> From<&'a Value> for FeedView<'a> {
    fn from(v: &'a Value) -> Self {
        match v {
            Value::F32(a) => FeedView::F32(a.view()),
            Value::F64(a) => FeedView::F64(a.view()),
            Value::I32(a) => FeedView::I32(a.view()),
            Value::I64(a) => FeedView::I64(a.view()),
            Value::U8(a) => FeedView::U8(a.view()),
            Value::Bool(a) => FeedView::Bool(a.view()),
        }
    }
}

impl FeedView<'_> {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            FeedView::F32(_) => DType::F32,
            FeedView::F64(_) => DType::F64,
            FeedView::I32(_) => DType::I32,
            FeedView::I64(_) => DType::I64,
            FeedView::U8(_) => DType::U8,
            FeedView::Bool(_) => DType::Bool,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        map_view!(self, a => a.shape())
    }

    /// An owned copy (row-major).
    pub fn to_value(&self) -> Value {
        map_view!(self, a => Element::wrap(a.as_standard_layout().into_owned()))
    }

    /// The data pointer when the view is row-major and contiguous.
    fn standard_ptr(&self) -> Option<*const u8> {
        map_view!(self, a => a.is_standard_layout().then(|| a.as_ptr().cast::<u8>()))
    }
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
        let fetch_ids = self.fetch_ids(fetches)?;
        let graph = self.graph.clone();
        let feed_ids = graph.with_def(|def| {
            self.check_feeds(def, feeds.iter().map(|(t, v)| (*t, v.dtype(), v.shape())))
        })?;
        match self.backend {
            // The graph is borrowed, never cloned per run: `graph.def()` copies every
            // constant and initial value (512 MiB per run in the 8192² GPU GEMM benchmark,
            // which measured 375 ms instead of cuBLAS's 21).
            Backend::Interpreter => graph.with_def(|def| {
                check_all_fed(def, &feed_ids, &fetch_ids)?;
                let feed_map: HashMap<NodeId, Value> =
                    feeds.iter().map(|(t, v)| (t.id(), v.clone())).collect();
                executor::run(def, &feed_map, &fetch_ids, &mut self.state)
            }),
            Backend::Compiled if self.cuda.is_some() => {
                graph.with_def(|def| check_all_fed(def, &feed_ids, &fetch_ids))?;
                let values: Vec<&Value> = feeds.iter().map(|(_, v)| v).collect();
                let cuda = self.cuda.as_mut().expect("matched");
                cuda.run(&graph, &mut self.state, (fetch_ids, feed_ids), &values)
            }
            Backend::Compiled => {
                let key = (fetch_ids, feed_ids);
                self.prepare(&graph, &key)?;
                let cached = self.cache.get_mut(&key).expect("prepared");
                let values: Vec<&Value> = feeds.iter().map(|(_, v)| v).collect();
                cached.exe.run(&values, &mut self.state)
            }
        }
    }

    /// [`Session::run`] with borrowed feeds: nothing is copied on the compiled CPU backend
    /// when a view is row-major (a strided view is copied to row-major order first; the
    /// interpreter and GPU backends take owned copies). Errors name the placeholder when a
    /// view's dtype or shape differs from the placeholder's, or a placeholder is fed twice
    /// or not at all.
    ///
    /// ```
    /// # use flumen::{DType, FeedView, Graph, Session};
    /// let g = Graph::new();
    /// let x = g.placeholder("x", DType::F32, &[2])?;
    /// let y = (&x * &x)?;
    /// let batch = ndarray::arr1(&[1.0f32, 2.0, 3.0, 4.0]).into_dyn();
    /// let first = batch.slice(ndarray::s![..2]).into_dyn();
    /// let out = Session::new(&g).run_views(&[(&x, FeedView::from(first))], &[&y])?;
    /// assert_eq!(out[0].as_f32().unwrap().as_slice().unwrap(), &[1.0, 4.0]);
    /// # Ok::<(), flumen::GraphError>(())
    /// ```
    pub fn run_views(
        &mut self,
        feeds: &[(&Tensor, FeedView<'_>)],
        fetches: &[&Tensor],
    ) -> Result<Vec<Value>> {
        let fetch_ids = self.fetch_ids(fetches)?;
        let graph = self.graph.clone();
        let feed_ids = graph.with_def(|def| {
            self.check_feeds(def, feeds.iter().map(|(t, v)| (*t, v.dtype(), v.shape())))
        })?;
        if self.backend == Backend::Interpreter || self.cuda.is_some() {
            // Those backends take owned values.
            let owned: Vec<(&Tensor, Value)> =
                feeds.iter().map(|(t, v)| (*t, v.to_value())).collect();
            return self.run(&owned, fetches);
        }
        let key = (fetch_ids, feed_ids);
        self.prepare(&graph, &key)?;
        let cached = self.cache.get_mut(&key).expect("prepared");
        run_borrowed(cached, feeds, &mut self.state)
    }

    fn fetch_ids(&self, fetches: &[&Tensor]) -> Result<Vec<NodeId>> {
        fetches.iter().map(|t| self.check_fetch(t)).collect()
    }

    /// The compiled executable for `key` (compiled and cached on first use), with every
    /// variable it uses initialised.
    fn prepare(&mut self, graph: &Graph, key: &(Vec<NodeId>, Vec<NodeId>)) -> Result<()> {
        if !self.cache.contains_key(key) {
            let (exe, report) = graph.with_def(|def| {
                check_all_fed(def, &key.1, &key.0)?;
                flumen_compiler::compile(def, &key.1, &key.0)
            })?;
            self.cache.insert(key.clone(), Cached { exe, report });
        }
        let cached = self.cache.get_mut(key).expect("just inserted");
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
        Ok(())
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

    /// Check each feed (placeholder, dtype, shape) against its placeholder.
    fn check_feeds<'t>(
        &self,
        def: &GraphDef,
        feeds: impl Iterator<Item = (&'t Tensor, DType, &'t [usize])>,
    ) -> Result<Vec<NodeId>> {
        let mut ids: Vec<NodeId> = Vec::new();
        for (t, v_dtype, v_shape) in feeds {
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
            if v_dtype != *dtype {
                return Err(bad(format!(
                    "fed a {} value but the placeholder is {}{}",
                    v_dtype,
                    dtype,
                    if v_dtype.is_numeric() && dtype.is_numeric() {
                        " (convert the array first)"
                    } else {
                        ""
                    }
                )));
            }
            if v_shape != shape.as_slice() {
                return Err(bad(format!(
                    "fed shape {:?} but the placeholder has shape {:?}",
                    v_shape, shape
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

/// Run `cached` on borrowed feeds (in [`Executable::feeds`] order, type-checked by the
/// session) through [`Executable::run_with_feed_ptrs`], with the feeds' own data pointers.
fn run_borrowed(
    cached: &mut Cached,
    feeds: &[(&Tensor, FeedView<'_>)],
    state: &mut SessionState,
) -> Result<Vec<Value>> {
    // Strided views are copied to row-major order (kept alive until the run ends).
    let copies: Vec<Option<Value>> = if feeds.iter().all(|(_, v)| v.standard_ptr().is_some()) {
        Vec::new()
    } else {
        feeds
            .iter()
            .map(|(_, v)| v.standard_ptr().is_none().then(|| v.to_value()))
            .collect()
    };
    let ptrs =
        feeds
            .iter()
            .enumerate()
            .map(|(i, (_, v))| match copies.get(i).and_then(Option::as_ref) {
                Some(c) => map_value!(c, a => a.as_ptr().cast::<u8>()),
                None => v.standard_ptr().expect("row-major (checked above)"),
            });
    // SAFETY: each pointer is the row-major data of a feed the session type-checked (or of
    // its row-major copy), borrowed for the whole call and only read.
    unsafe { cached.exe.run_with_feed_ptrs(ptrs, state) }
}
