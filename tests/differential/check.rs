//! Running a graph on both backends and checking it: every op locally against the
//! interpreter on the compiled inputs, fusion bit for bit, end-to-end where no approximate
//! op reaches (see the crate docs).

use super::*;

// ---------------------------------------------------------------------------------------
// Running a graph
// ---------------------------------------------------------------------------------------

/// Values of the fetches and the variables after one run of a fresh session.
type RunResult = Result<(Vec<Value>, BTreeMap<String, Value>), String>;

/// Run `fetches` of `def` once in a fresh session on `backend`, feeding each placeholder
/// named in `feeds` (placeholders not in `def` are ignored).
pub(crate) fn session_run(
    def: &GraphDef,
    feeds: &[(String, Value)],
    fetches: &[NodeId],
    backend: Backend,
) -> RunResult {
    let g = Graph::from_def(def.clone());
    let mut sess = Session::with_backend(&g, backend);
    let feed_tensors: Vec<(Tensor, Value)> = feeds
        .iter()
        .filter_map(|(name, v)| g.get(name).map(|t| (t, v.clone())))
        .collect();
    let feed_refs: Vec<(&Tensor, Value)> =
        feed_tensors.iter().map(|(t, v)| (t, v.clone())).collect();
    let fetch_tensors: Vec<Tensor> = fetches
        .iter()
        .map(|id| g.tensor(*id).ok_or_else(|| format!("no node {id}")))
        .collect::<Result<_, _>>()?;
    let fetch_refs: Vec<&Tensor> = fetch_tensors.iter().collect();
    let values = sess
        .run(&feed_refs, &fetch_refs)
        .map_err(|e| e.to_string())?;
    Ok((values, sess.variables().clone()))
}

/// `def` with its composites expanded (what the compiled backend runs).
pub(crate) fn canonical(def: &GraphDef) -> Result<GraphDef, String> {
    Canonicalize
        .run(flumen::compiler::Unit {
            def: def.clone(),
            outputs: vec![],
        })
        .map(|u| u.def)
        .map_err(|e| format!("canonicalize: {e}"))
}

/// Which fetches a check draws.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Fetch {
    /// Every node (nothing is fused).
    All,
    /// A random subset drawn from this seed (fusion happens).
    Subset(u64),
    /// The last node only.
    Last,
}

/// How placeholders are fed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Feeds {
    /// [`feed_value`]: mostly ordinary values, special ones in one feed of four.
    Random,
    /// [`special_value`]: NaNs, infinities, `-0.0`, subnormals and extreme integers in every
    /// feed.
    Special,
}

/// SplitMix64, for the test's own choices.
pub(crate) struct Mix(pub(crate) u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
}

// ---------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------

/// Nodes the constant-folding pass turns into constants (its rule, minus evaluation
/// failures, which fail the run anyway).
pub(crate) fn folded(def: &GraphDef) -> Vec<bool> {
    let mut f = vec![false; def.len()];
    for (id, n) in def.iter() {
        f[id.0] = matches!(n.op, Op::Constant(_))
            || (is_foldable_op(&n.op)
                && n.ty.numel() <= MAX_FOLDED_ELEMENTS
                && n.inputs.iter().all(|i| f[i.0]));
    }
    f
}

/// Forward taint in execution (id) order over the executed nodes: a node is tainted when
/// `seed` holds for it or a data input is tainted; a `read` when an earlier executed
/// assign to its variable is tainted. Variables (start-of-run values) are never tainted.
pub(crate) fn taint(def: &GraphDef, executed: &[bool], seed: impl Fn(NodeId) -> bool) -> Vec<bool> {
    let mut t = vec![false; def.len()];
    let mut var_taint: BTreeMap<NodeId, bool> = BTreeMap::new();
    for (id, n) in def.iter() {
        if !executed[id.0] || matches!(n.op, Op::Variable { .. }) {
            continue;
        }
        t[id.0] = seed(id) || n.inputs.iter().any(|i| t[i.0]);
        if matches!(n.op, Op::Read) {
            t[id.0] |= var_taint.get(&n.inputs[0]).copied().unwrap_or(false);
        }
        if n.op.is_assign() {
            *var_taint.entry(n.inputs[0]).or_default() |= t[id.0];
        }
    }
    t
}

/// `def` with the nodes of `pins` replaced by placeholders of their type (same names and
/// control inputs; ids unchanged).
pub(crate) fn pin(def: &GraphDef, pins: &[NodeId]) -> Result<GraphDef, String> {
    let mut out = GraphDef::new();
    for (id, n) in def.iter() {
        let (op, inputs) = if pins.contains(&id) {
            let op = Op::Placeholder {
                dtype: n.ty.dtype,
                shape: n.ty.shape.clone(),
            };
            (op, vec![])
        } else {
            (n.op.clone(), n.inputs.clone())
        };
        out.add(op, &inputs, &n.control_inputs, n.name.clone(), None)
            .map_err(|e| format!("pinning: {e}"))?;
    }
    Ok(out)
}

/// `def` with most constants (three in four; one in two scalars, which kernels inline as
/// literals) turned into placeholders, and the values to feed them. Random graphs compute
/// on many constants, which constant folding would otherwise evaluate with the interpreter
/// and take away from the compiled code. Constants in variable initializers stay (those
/// cannot read feeds).
pub(crate) fn unfold_constants(
    def: &GraphDef,
    seed: u64,
) -> Result<(GraphDef, BTreeMap<String, Value>), String> {
    let inits: Vec<NodeId> = def
        .iter()
        .filter(|(_, n)| matches!(n.op, Op::Variable { .. }))
        .map(|(_, n)| n.inputs[0])
        .collect();
    let in_init = def.reachable(&inits, true);
    let mut r = Mix(seed ^ 0xC0A5_7A47);
    let mut out = GraphDef::new();
    let mut values = BTreeMap::new();
    for (id, n) in def.iter() {
        let op = match &n.op {
            Op::Constant(v) if !in_init[id.0] && !r.one_in(if v.len() == 1 { 2 } else { 4 }) => {
                values.insert(n.name.clone(), v.clone());
                Op::Placeholder {
                    dtype: n.ty.dtype,
                    shape: n.ty.shape.clone(),
                }
            }
            op => op.clone(),
        };
        out.add(op, &n.inputs, &n.control_inputs, n.name.clone(), None)
            .map_err(|e| format!("unfolding constants: {e}"))?;
    }
    Ok((out, values))
}

/// What one check covered.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Covered {
    /// Values compared op by op.
    pub(crate) local: usize,
    /// Fetched values compared for fusion.
    pub(crate) fused: usize,
    /// Fetched values compared bitwise end to end.
    pub(crate) end_to_end: usize,
    /// Both backends ran the graph (rather than both failing).
    pub(crate) ran: bool,
}

/// Check `def0` with feeds drawn from `seed` (see the module docs). `Err` describes the
/// first disagreement.
pub(crate) fn check_graph(
    def0: &GraphDef,
    seed: u64,
    fetch: Fetch,
    feeds: Feeds,
) -> Result<Covered, String> {
    check_graph_inner(def0, seed, fetch, feeds).map_err(|e| {
        format!("{e}\nfeeds {feeds:?} with seed {seed:#x}, fetch {fetch:?}, graph:\n{def0}")
    })
}

pub(crate) fn check_graph_inner(
    def0: &GraphDef,
    seed: u64,
    fetch: Fetch,
    feed_kind: Feeds,
) -> Result<Covered, String> {
    let (def0, constants) = &unfold_constants(def0, seed)?;
    let def = canonical(def0)?;
    let mut covered = Covered::default();
    if def.is_empty() {
        return Ok(covered);
    }
    let feeds: Vec<(String, Value)> = def
        .iter()
        .filter_map(|(id, n)| match &n.op {
            Op::Placeholder { dtype, shape } => {
                let s = seed ^ (id.0 as u64).wrapping_mul(0x2545_F491_4F6C_DD1D);
                let v = match (constants.get(&n.name), feed_kind) {
                    (Some(v), _) => v.clone(),
                    (None, Feeds::Random) => feed_value(*dtype, shape, s),
                    (None, Feeds::Special) => special_value(*dtype, shape, s),
                };
                Some((n.name.clone(), v))
            }
            _ => None,
        })
        .collect();
    // Fetches are drawn among the nodes of the original graph (a composite's output is the
    // node named after it), so that the original graph can run with the same fusion.
    let candidates: Vec<NodeId> = def
        .iter()
        .filter(|(_, n)| def0.find(&n.name).is_some())
        .map(|(id, _)| id)
        .collect();
    let fetches: Vec<NodeId> = match fetch {
        Fetch::All => candidates,
        Fetch::Last => vec![*candidates.last().expect("a non-empty graph")],
        Fetch::Subset(s) => {
            // Mostly sinks (what a user fetches), now and then an assign or an inner node
            // (which then stops fusion there).
            let consumers = def.consumers();
            let mut r = Mix(s);
            let mut f: Vec<NodeId> = candidates
                .iter()
                .copied()
                .filter(|id| {
                    let odds = if consumers[id.0].is_empty() {
                        1
                    } else if def.node(*id).op.is_assign() {
                        3
                    } else {
                        10
                    };
                    r.one_in(odds)
                })
                .collect();
            if f.is_empty() {
                f.push(*candidates.last().expect("a non-empty graph"));
            }
            f
        }
    };
    let executed = def.reachable(&fetches, false);
    let folds = folded(&def);
    let var_inits: Vec<NodeId> = def
        .iter()
        .filter(|(_, n)| matches!(n.op, Op::Variable { .. }))
        .map(|(_, n)| n.inputs[0])
        .collect();
    let in_init = def.reachable(&var_inits, true);
    let order_dependent = |id: NodeId| executed[id.0] && is_reassociating(&def, id) && !folds[id.0];
    // Reductions in a variable's initializer cannot become placeholders: their fused and
    // unfused values may differ, and so may everything after them.
    let pins: Vec<NodeId> = def
        .iter()
        .map(|(id, _)| id)
        .filter(|&id| order_dependent(id) && !in_init[id.0])
        .collect();
    let unpinned = taint(&def, &executed, |id| order_dependent(id) && in_init[id.0]);
    let approx = taint(&def, &executed, |id| is_approx(&def, id) && !folds[id.0]);

    let mut fetch1 = fetches.clone();
    fetch1.extend(pins.iter().filter(|p| !fetches.contains(p)));
    let at1 = |id: NodeId| fetch1.iter().position(|f| *f == id).expect("fetched");

    // 2. Both backends on G.
    let interp = session_run(&def, &feeds, &fetch1, Backend::Interpreter);
    let comp = session_run(&def, &feeds, &fetch1, Backend::Compiled);
    let ((c_vals, c_vars), (i_vals, i_vars)) = match (comp, interp) {
        (Err(_), Err(_)) => return Ok(covered),
        (Err(e), Ok(_)) => return Err(format!("only the compiled backend failed: {e}")),
        (Ok(_), Err(e)) => return Err(format!("only the interpreter failed: {e}")),
        (Ok(c), Ok(i)) => (c, i),
    };
    covered.ran = true;

    // 3. G' unfused, reductions pinned to their compiled values.
    let pinned = pin(&def, &pins)?;
    let mut feeds2 = feeds.clone();
    for p in &pins {
        feeds2.push((def.node(*p).name.clone(), c_vals[at1(*p)].clone()));
    }
    let fetch2: Vec<NodeId> = def
        .iter()
        .map(|(id, _)| id)
        .filter(|id| executed[id.0])
        .collect();
    let at2 = |id: NodeId| fetch2.iter().position(|f| *f == id).expect("fetched");
    let (a_vals, a_vars) = session_run(&pinned, &feeds2, &fetch2, Backend::Compiled)
        .map_err(|e| format!("the unfused compiled run failed: {e}"))?;

    // 4a. Fusion: bit for bit.
    for &id in &fetches {
        if unpinned[id.0] {
            continue;
        }
        compare(&c_vals[at1(id)], &a_vals[at2(id)], &exact).map_err(|e| {
            format!(
                "fusion changed `{}` ({}): {e}",
                def.node(id).name,
                def.node(id).op.name()
            )
        })?;
        covered.fused += 1;
    }

    // 4b. Pinned reductions against the interpreter on their compiled inputs.
    for &p in &pins {
        let n = def.node(p);
        let inputs: Vec<&Value> = n.inputs.iter().map(|i| &a_vals[at2(*i)]).collect();
        let want = eval_op(&n.op, &inputs, &n.ty, EvalContext::default())
            .map_err(|e| format!("interpreter on `{}`: {e}", n.name))?;
        let tol = op_tolerance(&n.op, &inputs, &want)?;
        compare(&c_vals[at1(p)], &want, &|i| tol[i])
            .map_err(|e| format!("{} `{}`: {e}", n.op.name(), n.name))?;
        covered.local += 1;
    }

    // 4c. Every op of G' on its compiled inputs; state replayed.
    let mut state = SessionState::new();
    executor::initialize_variables(&pinned, &executed, &mut state)
        .map_err(|e| format!("initialising variables: {e}"))?;
    let initial = state.variables.clone();
    for &id in &fetch2 {
        let n = pinned.node(id);
        let got = &a_vals[at2(id)];
        // A variable's input is its initializer, which does not run with the graph.
        let inputs: Vec<&Value> = match n.op {
            Op::Variable { .. } => vec![],
            _ => n.inputs.iter().map(|i| &a_vals[at2(*i)]).collect(),
        };
        let var_name = || pinned.node(n.inputs[0]).name.clone();
        let (want, tol) = match &n.op {
            Op::Placeholder { .. } => {
                let v = feeds2.iter().find(|(name, _)| *name == n.name);
                (v.map(|(_, v)| v.clone()).ok_or("unfed placeholder")?, None)
            }
            Op::Variable { .. } => (initial[&n.name].clone(), None),
            Op::Read => (state.variables[&var_name()].clone(), None),
            Op::Assign => {
                state.variables.insert(var_name(), inputs[1].clone());
                (inputs[1].clone(), None)
            }
            Op::AssignSlice(spec) => {
                let new = assign_slice(&state.variables[&var_name()], spec, inputs[1])?;
                state.variables.insert(var_name(), new.clone());
                (new, None)
            }
            op => {
                let counter = if op.is_stateful() {
                    state.next_counter(&n.name)
                } else {
                    0
                };
                let want = eval_op(op, &inputs, &n.ty, EvalContext { counter })
                    .map_err(|e| format!("interpreter on `{}`: {e}", n.name))?;
                let tol = op_tolerance(op, &inputs, &want)?;
                (want, Some(tol))
            }
        };
        let check = match &tol {
            Some(t) => compare(got, &want, &|i| t[i]),
            None => compare(got, &want, &exact),
        };
        check.map_err(|e| {
            let ins: Vec<String> = inputs.iter().map(|v| format!("{v:?}")).collect();
            format!(
                "{} `{}` on its compiled inputs: {e}\ninputs: {}",
                n.op.name(),
                n.name,
                ins.join(", ")
            )
        })?;
        covered.local += 1;
    }
    for (name, v) in &state.variables {
        if let Some(a) = a_vars.get(name) {
            compare(a, v, &exact).map_err(|e| format!("variable `{name}` after the run: {e}"))?;
        }
    }

    // 4d. End to end, where no approximation reaches.
    for &id in &fetches {
        if approx[id.0] {
            continue;
        }
        compare(&c_vals[at1(id)], &i_vals[at1(id)], &exact).map_err(|e| {
            format!(
                "`{}` ({}) differs from the interpreter: {e}",
                def.node(id).name,
                def.node(id).op.name()
            )
        })?;
        covered.end_to_end += 1;
    }
    let var_tainted = |name: &str| {
        def.iter().any(|(id, n)| {
            executed[id.0]
                && n.op.is_assign()
                && def.node(n.inputs[0]).name == name
                && (approx[id.0] || unpinned[id.0])
        })
    };
    for (name, c) in &c_vars {
        if var_tainted(name) {
            continue;
        }
        let i = i_vars
            .get(name)
            .ok_or(format!("variable `{name}` missing"))?;
        compare(c, i, &exact).map_err(|e| format!("variable `{name}` after the run: {e}"))?;
        if let Some(a) = a_vars.get(name) {
            compare(c, a, &exact)
                .map_err(|e| format!("variable `{name}` after the fused run: {e}"))?;
        }
    }

    // 4e. Composites: the original graph gives the same bits on each backend.
    if def0
        .nodes()
        .iter()
        .any(|n| matches!(n.op, Op::Composite(_)))
    {
        let fetch0: Vec<NodeId> = fetch1
            .iter()
            .filter_map(|id| def0.find(&def.node(*id).name))
            .collect();
        let names: Vec<&str> = fetch0
            .iter()
            .map(|id| def0.node(*id).name.as_str())
            .collect();
        for backend in [Backend::Compiled, Backend::Interpreter] {
            let (vals, _) = session_run(def0, &feeds, &fetch0, backend)
                .map_err(|e| format!("{backend:?} on the graph with composites: {e}"))?;
            let reference = if backend == Backend::Compiled {
                &c_vals
            } else {
                &i_vals
            };
            for (v, name) in vals.iter().zip(&names) {
                let id = def.find(name).expect("canonicalize keeps names");
                if backend == Backend::Compiled && unpinned[id.0] {
                    continue;
                }
                compare(v, &reference[at1(id)], &exact).map_err(|e| {
                    format!("{backend:?}: `{name}` differs with composites unexpanded: {e}")
                })?;
            }
        }
    }
    Ok(covered)
}
