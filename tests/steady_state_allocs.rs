//! Steady-state runs of a compiled executable allocate only what they return.
//!
//! A counting `#[global_allocator]` (every thread, rayon's workers included) watches
//! [`Executable::run`] on a graph that exercises fused kernels, a matrix product, the
//! native interpreter steps (gather, scatter_add, roll, concat, pad, tile, cumsum, top_k,
//! argsort, a random op) and a reduction. After a warm-up run, each run may allocate
//! exactly what [`Executable::run`]'s signature hands back: the `Vec<Value>` of fetches and
//! one data vector per non-empty fetch (all fetches here have rank ≤ 4, whose shapes
//! ndarray keeps inline). The matrix product has m ≤ 4 rows and f32 operands, so on
//! AVX-512 CPUs it takes the allocation-free small-m kernels; the `gemm` crate, used for
//! larger products and elsewhere, allocates packing buffers per call, so every step is
//! also run alone and only matmul steps may allocate.
//!
//! The whole check is one `#[test]` so no other test of this binary allocates meanwhile.

use flumen::compiler::compile;
use flumen::runtime::exec::{Executable, RunMemory, Step, resolve_buffers, run_steps};
use flumen::{DType, Graph, NodeId, SessionState, Tensor, Value};
use flumen_frontend::map_value;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Counts allocations (and reallocations) of every thread.
struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Row-major f32 data from a small LCG.
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// The graph: `rows × width` features through a dense layer, then the index/layout ops.
/// Returns the graph, its feeds (x, ids) and its fetches.
fn graph(rows: usize, width: usize) -> (Graph, Vec<NodeId>, Vec<Tensor>) {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[rows, width]).unwrap();
    let ids = g.placeholder("ids", DType::I32, &[6]).unwrap();
    let w = g
        .variable(
            "w",
            Value::from_vec(&[width, width], data(width * width, 1)).unwrap(),
        )
        .unwrap();
    let b = g
        .variable("b", Value::from_vec(&[width], data(width, 2)).unwrap())
        .unwrap();
    let h = (x.matmul(&w).unwrap() + &b).unwrap().relu().unwrap();
    let gathered = h.gather(&ids, 0, 0).unwrap(); // [6, width]
    let rolled = gathered.roll(-3, 1).unwrap();
    let both = Tensor::concat(&[&gathered, &rolled], 1).unwrap(); // [6, 2w]
    let padded = both.pad(&[(1, 1), (0, 0)], 0.25f32).unwrap(); // [8, 2w]
    let tiled = padded.tile(&[1, 2]).unwrap(); // [8, 4w]
    let sums = tiled.cumsum(1, false, false).unwrap();
    let noise = g
        .random_normal(&[8, 4 * width], 0.0, 0.01, DType::F32, Some(7))
        .unwrap();
    let y = (sums + &noise).unwrap();
    let (top, top_idx) = y.top_k(5).unwrap();
    let order = y.argsort(-1, true).unwrap();
    let segments = gathered.scatter_add(&ids, 0, 0, rows).unwrap(); // [rows, width]
    let total = y.sum(&[1], false).unwrap();
    let feeds = vec![x.id(), ids.id()];
    (g, feeds, vec![top, top_idx, order, segments, total])
}

/// Compile, initialise the variables, and return the executable, state and feed values.
fn setup(rows: usize, width: usize) -> (Executable, SessionState, Vec<Value>, usize) {
    let (g, feeds, fetches) = graph(rows, width);
    let def = g.def();
    let ids: Vec<NodeId> = fetches.iter().map(Tensor::id).collect();
    let (exe, report) = compile(&def, &feeds, &ids).unwrap();
    let mut sess = flumen::Session::new(&g);
    sess.initialize().unwrap();
    let mut state = SessionState::new();
    state.variables = sess.variables().clone();
    let x = Value::from_vec(&[rows, width], data(rows * width, 3)).unwrap();
    let idx = Value::from_vec(&[6], vec![0i32, 3, 1, 3, 2, 0]).unwrap();
    let interpreted = report.interpreted.len();
    (exe, state, vec![x, idx], interpreted)
}

/// Allocations of each of `runs` runs after a warm-up run, and the fetched values of the
/// last one.
fn count(
    exe: &mut Executable,
    state: &mut SessionState,
    feeds: &[Value],
    runs: usize,
) -> (Vec<usize>, Vec<Value>) {
    let refs: Vec<&Value> = feeds.iter().collect();
    let mut out = exe.run(&refs, state).unwrap();
    let mut counts = Vec::with_capacity(runs);
    for _ in 0..runs {
        drop(out);
        let before = ALLOCS.load(Relaxed);
        out = exe.run(&refs, state).unwrap();
        counts.push(ALLOCS.load(Relaxed) - before);
    }
    (counts, out)
}

/// Allocations of each step of `exe` when run alone (after a full warm-up run), summed
/// over `reps` repetitions: `(step description, is a matmul, allocations)`.
fn per_step(
    exe: &mut Executable,
    state: &mut SessionState,
    feeds: &[Value],
    reps: usize,
) -> Vec<(String, bool, usize)> {
    let refs: Vec<&Value> = feeds.iter().collect();
    exe.run(&refs, state).unwrap();
    let vars: Vec<*mut u8> = exe
        .variables
        .iter()
        .map(|n| {
            let v = state.variables.get_mut(n).unwrap();
            map_value!(v, a => a.as_mut_ptr().cast::<u8>())
        })
        .collect();
    let fp: Vec<*const u8> = feeds
        .iter()
        .map(|v| map_value!(v, a => a.as_ptr().cast::<u8>()))
        .collect();
    let cp: Vec<*const u8> = exe
        .constants
        .iter()
        .map(|v| map_value!(v, a => a.as_ptr().cast::<u8>()))
        .collect();
    let mem = RunMemory {
        arena: exe.arena.as_mut_ptr(),
        feeds: &fp,
        variables: &vars,
        constants: &cp,
    };
    let mut ptrs = Vec::new();
    resolve_buffers(&exe.buffers, &mem, &mut ptrs);
    let mut args = Vec::with_capacity(256);
    let mut out: Vec<(String, bool, usize)> = exe
        .steps
        .iter()
        .map(|s| (s.describe(), matches!(s, Step::MatMul(_)), 0))
        .collect();
    for _ in 0..reps {
        for (i, s) in exe.steps.iter().enumerate() {
            let before = ALLOCS.load(Relaxed);
            // SAFETY: the pointers address the executable's buffers (as `Executable::run`
            // resolves them); nothing else touches them meanwhile.
            unsafe {
                run_steps(
                    std::slice::from_ref(s),
                    &exe.buffers,
                    &ptrs,
                    &mut |_| 0,
                    &mut args,
                )
            }
            .unwrap();
            out[i].2 += ALLOCS.load(Relaxed) - before;
        }
    }
    out
}

#[test]
fn steady_state_runs_allocate_only_the_fetches() {
    // Start rayon's workers first, so that their start-up allocations are not counted.
    rayon::broadcast(|_| ());

    // Small: every kernel below the threshold for splitting across threads, the product
    // on the small-m path (rows = 4).
    let (mut exe, mut state, feeds, interpreted) = setup(4, 16);
    assert!(
        interpreted >= 9,
        "expected the index/layout ops as interpreter steps"
    );
    let nonempty = exe.fetches.iter().filter(|(_, t)| t.numel() > 0).count();
    assert!(exe.fetches.iter().all(|(_, t)| t.rank() <= 4));
    assert_eq!(nonempty, 5);
    // Every step but the product allocates nothing; the product takes the small-m
    // kernels on AVX-512 CPUs (allocation-free) and the `gemm` crate elsewhere.
    let steps = per_step(&mut exe, &mut state, &feeds, 3);
    for (what, matmul, allocs) in &steps {
        assert!(
            *matmul || *allocs == 0,
            "{what} allocated {allocs} times in 3 steady-state runs"
        );
    }
    let gemm: usize = steps.iter().filter(|s| s.1).map(|s| s.2).sum::<usize>() / 3;
    state.counters.clear();
    let (counts, out) = count(&mut exe, &mut state, &feeds, 5);
    // Exactly: the returned Vec<Value> + one data vector per non-empty fetch (+ the
    // product's, none with the small-m kernels).
    let bound = 1 + nonempty + gemm;
    assert!(
        counts.iter().all(|&c| c == bound),
        "allocations per steady-state run: {counts:?}, expected {bound} (the fetches; gemm: {gemm})"
    );
    // The random counter advanced on every run (warm-up + 5), without allocating.
    assert_eq!(state.counters.values().copied().max(), Some(6));
    assert_eq!(out.len(), 5);

    // Large: kernels split across rayon's threads (by `rayon::join`), the product through
    // the `gemm` crate, which allocates packing buffers per call (on every thread it uses).
    // Every other step must allocate nothing; a whole run allocates the fetches plus what
    // the products allocate, plus at most one block of rayon's global job queue (it
    // allocates one per 63 jobs injected from outside the pool).
    let (mut exe, mut state, feeds, _) = setup(512, 256);
    let steps = per_step(&mut exe, &mut state, &feeds, 3);
    for (what, matmul, allocs) in &steps {
        assert!(
            *matmul || *allocs == 0,
            "{what} allocated {allocs} times in 3 steady-state runs"
        );
    }
    let gemm: usize = steps.iter().filter(|s| s.1).map(|s| s.2).sum::<usize>() / 3;
    assert!(gemm > 0, "expected the gemm crate's per-call buffers");
    let (counts, _) = count(&mut exe, &mut state, &feeds, 5);
    let bound = 1 + nonempty + gemm + 1;
    assert!(
        counts.iter().all(|&c| c <= bound),
        "allocations per steady-state run (large): {counts:?}, bound {bound} (gemm: {gemm})"
    );
    eprintln!("large graph: {counts:?} allocations per run, {gemm} of them in gemm");
}
