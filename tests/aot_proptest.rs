//! AOT libraries against the JIT on the property-test graphs
//! (`flumen_frontend::testing`): random well-typed graphs are combined into one graph (so
//! one library covers many of them), exported, and the library must give the JIT's bits
//! for every fetched value, for two consecutive runs (variables and random counters carry
//! over), and for every variable afterwards. Also: the embedded plan's decoder rejects
//! truncated and corrupted plans with an error, never a panic.
//!
//! The graphs come from a fixed seed (`AOT_PROPTEST_SEED` overrides it, `AOT_PROPTEST_GRAPHS`
//! the number per library), so a failure reproduces.

mod aot_util;

use aot_util::{Lib, assert_bits, scratch};
use flumen::aot::compile_library;
use flumen::runtime::exec::Plan;
use flumen::{Graph, GraphDef, NodeId, Op, Session, Value};
use flumen_frontend::testing::{feed_value, graph_from_ext_steps, graph_from_steps};

/// SplitMix64: the test's deterministic source of graph steps and feeds.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The name a node had in its own graph (before [`merged`] prefixed `g{i}/`).
fn local_name(name: &str) -> &str {
    match name.split_once('/') {
        Some((g, rest)) if g.starts_with('g') && g[1..].parse::<u32>().is_ok() => rest,
        _ => name,
    }
}

/// Placeholders of `def` and random values for them (seeded by the node's local name, so
/// a graph gets the same feeds alone and merged).
fn feeds(def: &GraphDef, seed: u64) -> Vec<(NodeId, Value)> {
    def.iter()
        .filter_map(|(id, n)| match &n.op {
            Op::Placeholder { dtype, shape } => {
                let h = local_name(&n.name)
                    .bytes()
                    .fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
                        (h ^ b as u64).wrapping_mul(0x100_0000_01B3)
                    });
                Some((id, feed_value(*dtype, shape, seed ^ h)))
            }
            _ => None,
        })
        .collect()
}

/// Whether the JIT runs `def` fetching `fetches` twice without error.
fn runs(def: &GraphDef, fetches: &[NodeId], seed: u64) -> bool {
    let g = Graph::from_def(def.clone());
    let mut sess = Session::new(&g);
    let fed: Vec<_> = feeds(def, seed)
        .into_iter()
        .map(|(id, v)| (g.tensor(id).unwrap(), v))
        .collect();
    let feed_refs: Vec<_> = fed.iter().map(|(t, v)| (t, v.clone())).collect();
    let fetch_t: Vec<_> = fetches.iter().map(|f| g.tensor(*f).unwrap()).collect();
    let fetch_refs: Vec<_> = fetch_t.iter().collect();
    (0..2).all(|_| sess.run(&feed_refs, &fetch_refs).is_ok())
}

/// Nodes nothing consumes (by data or control edges): the outputs a user would fetch.
fn sinks(def: &GraphDef) -> Vec<NodeId> {
    let consumers = def.consumers();
    let mut used = vec![false; def.len()];
    for n in def.nodes() {
        for c in &n.control_inputs {
            used[c.0] = true;
        }
    }
    def.iter()
        .filter(|(id, _)| consumers[id.0].is_empty() && !used[id.0])
        .map(|(id, _)| id)
        .collect()
}

/// `count` random graphs that the JIT runs, merged into one graph (graph `i`'s nodes are
/// renamed `g{i}/...`), with their fetches: the sinks, or every node for every third
/// graph (nothing fused).
fn merged(count: usize, ext: bool, rng: &mut Rng, seed: u64) -> (GraphDef, Vec<NodeId>) {
    let mut out = GraphDef::new();
    let mut fetches = Vec::new();
    let mut kept = 0;
    while kept < count {
        let steps: Vec<(u8, u64)> = (0..1 + rng.next() % 20)
            .map(|_| (rng.next() as u8, rng.next()))
            .collect();
        let def = if ext {
            graph_from_ext_steps(&steps, 12)
        } else {
            graph_from_steps(&steps, 12)
        };
        let local = if kept % 3 == 2 {
            def.iter().map(|(id, _)| id).collect()
        } else {
            sinks(&def)
        };
        if def.is_empty() || local.is_empty() || !runs(&def, &local, seed) {
            continue;
        }
        let base = out.len();
        let shift = |ids: &[NodeId]| ids.iter().map(|i| NodeId(i.0 + base)).collect::<Vec<_>>();
        for n in def.nodes() {
            out.add(
                n.op.clone(),
                &shift(&n.inputs),
                &shift(&n.control_inputs),
                format!("g{kept}/{}", n.name),
                None,
            )
            .unwrap();
        }
        fetches.extend(shift(&local));
        kept += 1;
    }
    (out, fetches)
}

/// Export `def` (feeds: its placeholders; fetches: `fetches`), then run the JIT and the
/// library twice each and compare every output and variable bit for bit.
fn check(def: GraphDef, fetches: &[NodeId], name: &str, seed: u64) {
    let g = Graph::from_def(def.clone());
    let mut sess = Session::new(&g);
    let fed: Vec<_> = feeds(&def, seed)
        .into_iter()
        .map(|(id, v)| (g.tensor(id).unwrap(), v))
        .collect();
    let feed_t: Vec<_> = fed.iter().map(|(t, _)| t).collect();
    let fetch_t: Vec<_> = fetches.iter().map(|f| g.tensor(*f).unwrap()).collect();
    let fetch_refs: Vec<_> = fetch_t.iter().collect();
    let dir = scratch(name);
    let report = compile_library(
        &mut sess,
        &feed_t,
        &fetch_refs,
        dir.join(format!("lib{name}.so")),
        &aot_util::export_options(),
    )
    .unwrap_or_else(|e| panic!("exporting {name}: {e}\n{def}"));
    let lib = Lib::from_report(&report);
    let state = lib.state(0);
    let inputs: Vec<Value> = fed.iter().map(|(_, v)| v.clone()).collect();
    let feed_pairs: Vec<_> = fed.iter().map(|(t, v)| (t, v.clone())).collect();
    for run in 0..2 {
        let jit = sess.run(&feed_pairs, &fetch_refs).unwrap();
        let so = state
            .run(&inputs)
            .unwrap_or_else(|(c, m)| panic!("{name} run {run}: error {c}: {m}"));
        assert_bits(&format!("{name} run {run}"), &jit, &so);
    }
    for (i, (var, _)) in report.variables.iter().enumerate() {
        let jit = &sess.variables()[var];
        assert!(
            jit.bit_eq(&state.variable(i)),
            "{name}: variable `{var}` differs"
        );
    }
    eprintln!(
        "{name}: {} nodes, {} fetches, {} steps ({} kernels, {} interpreted), {} variables",
        def.len(),
        fetches.len(),
        report.compile.steps,
        report.compile.kernels,
        report.compile.interpreted.len(),
        report.variables.len()
    );
}

#[test]
fn random_graphs_from_the_compiler_families_match_the_jit() {
    let seed = env_u64("AOT_PROPTEST_SEED", 0xA07);
    let mut rng = Rng(seed);
    let (def, fetches) = merged(
        env_u64("AOT_PROPTEST_GRAPHS", 24) as usize,
        true,
        &mut rng,
        seed,
    );
    check(def, &fetches, "aot_prop_ext", seed);
}

#[test]
fn random_graphs_with_state_and_random_ops_match_the_jit() {
    let seed = env_u64("AOT_PROPTEST_SEED", 0xA07) ^ 0x5151;
    let mut rng = Rng(seed);
    let (def, fetches) = merged(
        env_u64("AOT_PROPTEST_GRAPHS", 24) as usize / 2,
        false,
        &mut rng,
        seed,
    );
    check(def, &fetches, "aot_prop_general", seed);
}

#[test]
fn truncated_or_corrupted_plans_are_errors_not_panics() {
    let mut rng = Rng(7);
    let (def, fetches) = merged(6, false, &mut rng, 7);
    let feeds: Vec<NodeId> = feeds(&def, 0).into_iter().map(|(id, _)| id).collect();
    let mut state = flumen::SessionState::new();
    let g = Graph::from_def(def.clone());
    let mut sess = Session::new(&g);
    sess.initialize().unwrap();
    state.variables = sess.variables().clone();
    let art = flumen::compiler::aot::emit(&def, &feeds, &fetches, &state, "p").unwrap();
    let bytes = art.plan.encode().unwrap();
    assert_eq!(Plan::decode(&bytes).unwrap(), art.plan);
    for len in 0..bytes.len() {
        assert!(Plan::decode(&bytes[..len]).is_err(), "truncated at {len}");
    }
    let mut flips = 0;
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 1 << (rng.next() % 8);
        // Either rejected or still a valid plan (a flipped bit in a name or a size that
        // validation cannot tell from a real one) — never a panic.
        if Plan::decode(&b).is_err() {
            flips += 1;
        }
    }
    assert!(
        flips > bytes.len() / 4,
        "only {flips} of {} flips detected",
        bytes.len()
    );
}
