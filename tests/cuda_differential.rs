//! The differential suite on a GPU: random graphs of every op family
//! (`flumen_frontend::testing::arb_graph_ext`, every node fetched, and `arb_graph` with
//! state and random ops, a subset fetched) run on CUDA device 0 and on the reference
//! interpreter, from the same feeds and variable values, and agree element for element:
//! integers and bools exactly, f32 within 1e-5 + 1e-4·|want|, f64 within 1e-12 +
//! 1e-10·|want| (CUDA's f32 math functions are within 1–4 ulp, and block reductions sum
//! in a different order than the interpreter). A graph the interpreter rejects at run time
//! must fail on the GPU too.
//!
//! Skips (passing, with a message) when no CUDA device is usable — always the case without
//! `--features cuda`. `PROPTEST_CASES` sets the number of graphs per property (default 256).

mod cuda_common;

use cuda_common::{compare, gpu, tolerance};
use flumen::{Backend, Device, Graph, GraphDef, NodeId, Session, Tensor, Value};
use flumen_frontend::testing::{arb_graph, arb_graph_ext, feed_value};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// Run `fetches` of `def` in a fresh session (interpreter, or compiled on `device`).
fn run(
    def: &GraphDef,
    feeds: &[(String, Value)],
    fetches: &[NodeId],
    device: Option<Device>,
) -> Result<Vec<Value>, String> {
    let g = Graph::from_def(def.clone());
    let mut sess = match device {
        Some(d) => Session::with_device(&g, d).map_err(|e| e.to_string())?,
        None => Session::with_backend(&g, Backend::Interpreter),
    };
    let feed_tensors: Vec<(Tensor, Value)> = feeds
        .iter()
        .filter_map(|(name, v)| g.get(name).map(|t| (t, v.clone())))
        .collect();
    let feed_refs: Vec<(&Tensor, Value)> =
        feed_tensors.iter().map(|(t, v)| (t, v.clone())).collect();
    let fetch_tensors: Vec<Tensor> = fetches.iter().filter_map(|id| g.tensor(*id)).collect();
    let fetch_refs: Vec<&Tensor> = fetch_tensors.iter().collect();
    sess.run(&feed_refs, &fetch_refs).map_err(|e| e.to_string())
}

fn check(def: &GraphDef, seed: u64, all: bool) -> Result<(), String> {
    let feeds: Vec<(String, Value)> = def
        .iter()
        .filter(|(_, n)| matches!(n.op, flumen::Op::Placeholder { .. }))
        .enumerate()
        .map(|(i, (_, n))| {
            (
                n.name.clone(),
                feed_value(n.ty.dtype, &n.ty.shape, seed.wrapping_add(i as u64)),
            )
        })
        .collect();
    let fetches: Vec<NodeId> = def
        .iter()
        .map(|(id, _)| id)
        .filter(|id| all || (seed >> (id.0 % 64)) & 1 == 1)
        .filter(|id| !matches!(def.node(*id).op, flumen::Op::NoOp))
        .collect();
    if fetches.is_empty() {
        return Ok(());
    }
    let want = run(def, &feeds, &fetches, None);
    let got = run(def, &feeds, &fetches, Some(Device::Cuda(0)));
    match (want, got) {
        (Err(_), Err(_)) => Ok(()),
        (Err(e), Ok(_)) => Err(format!(
            "the interpreter fails ({e}) but the GPU does not\n{def}"
        )),
        (Ok(_), Err(e)) => Err(format!("the GPU fails: {e}\n{def}")),
        (Ok(w), Ok(g)) => {
            for ((w, g), id) in w.iter().zip(&g).zip(&fetches) {
                let (atol, rtol) = tolerance(w.dtype());
                compare(&def.node(*id).name, g, w, atol, rtol)
                    .map_err(|e| format!("{e}\n{def}"))?;
            }
            Ok(())
        }
    }
}

fn config(seed: u64) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(256),
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[test]
fn random_graphs_on_the_gpu_match_the_interpreter() {
    if !gpu("random_graphs_on_the_gpu_match_the_interpreter") {
        return;
    }
    let mut runner = proptest::test_runner::TestRunner::new(config(0xC0DA_0001));
    runner
        .run(&(arb_graph_ext(16), any::<u64>()), |(def, seed)| {
            let r = check(&def, seed, true);
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            Ok(())
        })
        .unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(config(0xC0DA_0002));
    runner
        .run(&(arb_graph(24), any::<u64>()), |(def, seed)| {
            let r = check(&def, seed, false);
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
            Ok(())
        })
        .unwrap();
}
