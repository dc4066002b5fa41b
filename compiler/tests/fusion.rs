//! Reduction groups and sibling fusion (`lower::rowfuse`, `lower::sibling`):
//!
//! - snapshots of the lowered steps of softmax, log-softmax, layer norm, softmax
//!   cross-entropy and an Adam step, with the number of kernels each must become;
//! - the MNIST training step (784-300-10, batch 100, Adam): kernel count and how many
//!   kernels touch `W1`-sized arrays;
//! - compiled against the reference interpreter, with explicit tolerances, on these
//!   patterns in f32 and f64 over several shapes (inner size 1, odd sizes, several
//!   reduced axes, broadcast operands), including the state after an Adam step.

use flumen_compiler::Unit;
use flumen_compiler::compile::compile;
use flumen_compiler::kernel::{Kernel, PhaseKind};
use flumen_compiler::lower::{FusionOptions, LStep, Lowered, lower_with};
use flumen_compiler::passes::default_pipeline;
use flumen_frontend::TensorType;
use flumen_frontend::nn::{Initializer, Reduction};
use flumen_frontend::train::{Adam, Optimizer};
use flumen_frontend::{DType, Graph, NodeId, Tensor, Value};
use flumen_runtime::SessionState;
use flumen_runtime::interpreter::executor;
use std::collections::HashMap;

/// The placeholders of `g` (in node order) and the fetched node ids.
fn feeds_of(g: &Graph) -> Vec<NodeId> {
    g.def()
        .iter()
        .filter(|(_, n)| matches!(n.op, flumen_frontend::Op::Placeholder { .. }))
        .map(|(id, _)| id)
        .collect()
}

/// The default pipeline, then lowering with `options`.
fn lower_graph(g: &Graph, fetches: &[&Tensor], options: FusionOptions) -> Lowered {
    let def = g.def();
    let feeds: Vec<(String, TensorType)> = feeds_of(g)
        .iter()
        .map(|f| (def.node(*f).name.clone(), def.node(*f).ty.clone()))
        .collect();
    let unit = default_pipeline()
        .run(Unit {
            def,
            outputs: fetches.iter().map(|t| t.id()).collect(),
        })
        .expect("the pipeline runs");
    lower_with(&unit, &feeds, options).expect("lowers")
}

const NO_FUSION: FusionOptions = FusionOptions {
    reduction_groups: false,
    siblings: false,
    hoist_scalars: false,
};

/// Kernel steps and matmul epilogues.
fn count_kernels(l: &Lowered) -> usize {
    l.steps
        .iter()
        .filter(|s| {
            matches!(
                s,
                LStep::Kernel(_)
                    | LStep::MatMul {
                        epilogue: Some(_),
                        ..
                    }
            )
        })
        .count()
}

/// The lowered steps as text.
fn describe(l: &Lowered) -> String {
    l.to_string()
}

/// The lowered steps without and with fusion, and the number of kernels with fusion.
fn before_after(g: &Graph, fetches: &[&Tensor]) -> (String, usize) {
    let before = lower_graph(g, fetches, NO_FUSION);
    let after = lower_graph(g, fetches, FusionOptions::default());
    let n = count_kernels(&after);
    let s = format!(
        "// without reduction groups, sibling fusion and scalar hoisting: {} kernels\n{}\n// with them: {n} kernels\n{}",
        count_kernels(&before),
        describe(&before),
        describe(&after)
    );
    (s, n)
}

fn softmax_graph(d: DType, shape: &[usize]) -> (Graph, Vec<Tensor>) {
    let g = Graph::new();
    let x = g.placeholder("x", d, shape).unwrap();
    let p = x.softmax(-1).unwrap();
    (g, vec![p])
}

fn log_softmax_graph(d: DType, shape: &[usize]) -> (Graph, Vec<Tensor>) {
    let g = Graph::new();
    let x = g.placeholder("x", d, shape).unwrap();
    let p = x.log_softmax(-1).unwrap();
    (g, vec![p])
}

fn layer_norm_graph(d: DType, shape: &[usize]) -> (Graph, Vec<Tensor>) {
    let g = Graph::new();
    let x = g.placeholder("x", d, shape).unwrap();
    let last = shape[shape.len() - 1];
    let gamma = g.placeholder("gamma", d, &[last]).unwrap();
    let beta = g.placeholder("beta", d, &[last]).unwrap();
    let y = x.layer_norm_affine(&gamma, &beta, 1e-5).unwrap();
    (g, vec![y])
}

/// Per-example softmax cross-entropy (dense labels) and its mean.
fn xent_graph(d: DType, shape: &[usize]) -> (Graph, Vec<Tensor>) {
    let g = Graph::new();
    let x = g.placeholder("x", d, shape).unwrap();
    let y = g.placeholder("labels", d, shape).unwrap();
    let l = x.softmax_cross_entropy(&y, None, Reduction::None).unwrap();
    (g, vec![l])
}

/// Softmax over the middle axis of a rank-3 tensor, times a broadcast row, plus the
/// max-shifted logits fetched too (a member stored for the outside).
fn middle_axis_graph(d: DType, shape: &[usize]) -> (Graph, Vec<Tensor>) {
    let g = Graph::new();
    let x = g.placeholder("x", d, shape).unwrap();
    let w = g.placeholder("w", d, &[1, shape[1], 1]).unwrap();
    let xs = (&x * &w).unwrap();
    let m = xs.max(&[1], true).unwrap();
    let shifted = (&xs - &m).unwrap();
    let e = shifted.exp().unwrap();
    let s = e.sum(&[1], true).unwrap();
    let p = (&e / &s).unwrap();
    (g, vec![p, shifted, s])
}

/// A mean and variance over two axes (`[b, h, w]` over h and w), normalised.
fn two_axes_graph(d: DType, shape: &[usize]) -> (Graph, Vec<Tensor>) {
    let g = Graph::new();
    let x = g.placeholder("x", d, shape).unwrap();
    let mean = x.mean(&[1, 2], true).unwrap();
    let c = (&x - &mean).unwrap();
    let var = c.square().unwrap().mean(&[1, 2], false).unwrap();
    let inv = (var + 1e-3).unwrap().rsqrt().unwrap();
    let y = (&c * &inv.reshape(&[shape[0] as i64, 1, 1]).unwrap()).unwrap();
    (g, vec![y])
}

/// One Adam step on `w` (`[rows, cols]`) for the loss `Σ (x·w)²`.
fn adam_graph(d: DType, rows: usize, cols: usize) -> (Graph, Vec<Tensor>) {
    let g = Graph::new();
    let init = Initializer::Normal {
        mean: 0.0,
        stddev: 0.5,
    }
    .build(&g, &[rows, cols], d, Some(7))
    .unwrap();
    let w = g.variable("w", &init).unwrap();
    let x = g.placeholder("x", d, &[3, rows]).unwrap();
    let loss = x
        .matmul(&w)
        .unwrap()
        .square()
        .unwrap()
        .sum(&[0, 1], false)
        .unwrap();
    let train = Adam::new(0.01).minimize(&loss, None).unwrap();
    (g, vec![loss, train])
}

type Builder = fn(DType, &[usize]) -> (Graph, Vec<Tensor>);

fn kernels_of(build: Builder, shape: &[usize]) -> String {
    let (g, out) = build(DType::F32, shape);
    let refs: Vec<&Tensor> = out.iter().collect();
    before_after(&g, &refs).0
}

fn kernel_count(build: Builder, shape: &[usize]) -> usize {
    let (g, out) = build(DType::F32, shape);
    let refs: Vec<&Tensor> = out.iter().collect();
    count_kernels(&lower_graph(&g, &refs, FusionOptions::default()))
}

#[test]
fn softmax_is_one_kernel() {
    assert_eq!(kernel_count(softmax_graph, &[4, 16]), 1);
    insta::assert_snapshot!(kernels_of(softmax_graph, &[4, 16]));
}

#[test]
fn log_softmax_is_one_kernel() {
    assert_eq!(kernel_count(log_softmax_graph, &[4, 16]), 1);
    insta::assert_snapshot!(kernels_of(log_softmax_graph, &[4, 16]));
}

#[test]
fn layer_norm_is_one_kernel() {
    assert_eq!(kernel_count(layer_norm_graph, &[4, 16]), 1);
    insta::assert_snapshot!(kernels_of(layer_norm_graph, &[4, 16]));
}

#[test]
fn softmax_cross_entropy_is_one_kernel() {
    assert_eq!(kernel_count(xent_graph, &[4, 10]), 1);
    insta::assert_snapshot!(kernels_of(xent_graph, &[4, 10]));
}

#[test]
fn other_groups_kernel_counts() {
    // The shifted logits and the sum are fetched: stored by the one kernel.
    assert_eq!(kernel_count(middle_axis_graph, &[2, 5, 3]), 1);
    assert_eq!(kernel_count(two_axes_graph, &[2, 3, 4]), 1);
}

#[test]
fn adam_step_kernels() {
    let (g, out) = adam_graph(DType::F32, 5, 4);
    let (s, kernels) = before_after(&g, &[&out[0], &out[1]]);
    insta::assert_snapshot!(s);
    // The loss reduction, the gradient's elementwise part, the step counter and learning
    // rate scalars (one kernel), and the m, v and w updates (one kernel).
    assert_eq!(kernels, 4, "{s}");
}

// ---------------------------------------------------------------------------------------
// MNIST training step
// ---------------------------------------------------------------------------------------

const PIXELS: usize = 784;
const HIDDEN: usize = 300;
const CLASSES: usize = 10;
const BATCH: usize = 100;

fn mnist_train() -> (Graph, Tensor, Tensor) {
    let g = Graph::new();
    let var = |scope: &str, name: &str, std: f64, shape: &[usize], k: u64| {
        let _scope = g.scope(scope);
        let init = Initializer::Normal {
            mean: 0.0,
            stddev: std,
        }
        .build(&g, shape, DType::F32, Some(k))
        .unwrap();
        g.variable(name, &init).unwrap()
    };
    let w1 = var("layer1", "W", 0.03, &[PIXELS, HIDDEN], 0);
    let b1 = var("layer1", "b", 1.0, &[HIDDEN], 1);
    let w2 = var("layer2", "W", 0.03, &[HIDDEN, CLASSES], 2);
    let b2 = var("layer2", "b", 1.0, &[CLASSES], 3);
    let x = g.placeholder("x", DType::F32, &[BATCH, PIXELS]).unwrap();
    let y = g.placeholder("y", DType::I64, &[BATCH]).unwrap();
    let hidden = (x.matmul(&w1).unwrap() + &b1).unwrap().relu().unwrap();
    let logits = (hidden.matmul(&w2).unwrap() + &b2).unwrap();
    let one_hot = y.one_hot(CLASSES, DType::F32).unwrap();
    let loss = logits
        .softmax_cross_entropy(&one_hot, None, Reduction::SumOverBatchSize)
        .unwrap();
    let train = Adam::default().minimize(&loss, None).unwrap();
    (g, loss, train)
}

/// Kernels (epilogues included) that access a buffer of `numel` elements.
fn kernels_touching(
    steps: &[LStep],
    buffers: &[flumen_runtime::exec::BufferDecl],
    numel: usize,
) -> usize {
    let touches = |k: &Kernel| k.accesses.iter().any(|a| buffers[a.buf.0].numel == numel);
    steps
        .iter()
        .map(|s| match s {
            LStep::Kernel(k) => touches(k) as usize,
            LStep::MatMul {
                epilogue: Some(k), ..
            } => touches(k) as usize,
            _ => 0,
        })
        .sum()
}

fn multi_reduction_kernels(l: &Lowered) -> usize {
    l.steps
        .iter()
        .filter(|s| match s {
            LStep::Kernel(k) => {
                k.phases
                    .iter()
                    .filter(|p| matches!(p.kind, PhaseKind::Reduce { .. }))
                    .count()
                    > 1
            }
            _ => false,
        })
        .count()
}

#[test]
fn mnist_train_step_kernels() {
    let (g, loss, train) = mnist_train();
    let before = lower_graph(&g, &[&loss, &train], NO_FUSION);
    let after = lower_graph(&g, &[&loss, &train], FusionOptions::default());
    let w1 = PIXELS * HIDDEN;
    let line = |what: &str, l: &Lowered| {
        format!(
            "{what}: {} steps, {} kernels, {} touching W1-sized arrays, {} multi-reduction kernels",
            l.steps.len(),
            count_kernels(l),
            kernels_touching(&l.steps, &l.buffers, w1),
            multi_reduction_kernels(l)
        )
    };
    println!("MNIST train step {}", line("before", &before));
    println!("MNIST train step {}", line("after", &after));
    if std::env::var("FUSION_DUMP").is_ok() {
        println!("{}", describe(&after));
    }
    assert_eq!(
        kernels_touching(&before.steps, &before.buffers, w1),
        3,
        "Adam's m, v and W1 updates, unfused"
    );
    assert_eq!(
        kernels_touching(&after.steps, &after.buffers, w1),
        1,
        "Adam's m, v and W1 updates are one kernel"
    );
    assert!(
        multi_reduction_kernels(&after) >= 1,
        "the loss's log-sum-exp is one kernel"
    );
    assert!(count_kernels(&after) < count_kernels(&before));
}

// ---------------------------------------------------------------------------------------
// Compiled against the interpreter
// ---------------------------------------------------------------------------------------

/// Deterministic values in [-3, 3) (a few large ones to exercise the max shift).
fn value(d: DType, shape: &[usize], seed: u64) -> Value {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data: Vec<f64> = (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            if i % 17 == 5 {
                40.0 * u - 20.0
            } else {
                6.0 * u - 3.0
            }
        })
        .collect();
    Value::from_vec(shape, data).unwrap().cast(d)
}

/// `|got - want| ≤ abs + rel·|want|` elementwise (NaN only where the reference has one).
fn assert_close(what: &str, got: &Value, want: &Value, abs: f64, rel: f64) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || (a - b).abs() <= abs + rel * b.abs();
        assert!(
            ok,
            "{what}[{i}]: compiled {a}, interpreter {b} (abs {abs}, rel {rel})"
        );
    }
}

/// Tolerances: f32 sums of ≤ 64 terms in another order plus 2-ulp `exp`/`log` → a few
/// 1e-6 relative (1e-5 with headroom); f64 the same structure at 2⁻⁵³ → 1e-12.
fn tol(d: DType) -> (f64, f64) {
    match d {
        DType::F32 => (2e-5, 2e-5),
        _ => (1e-12, 1e-12),
    }
}

/// Run `build` compiled (twice: the second run reuses the arena) and on the interpreter.
fn check(
    name: &str,
    build: fn(DType, &[usize]) -> (Graph, Vec<Tensor>),
    d: DType,
    shape: &[usize],
) {
    let (g, out) = build(d, shape);
    let def = g.def();
    let feeds = feeds_of(&g);
    let fetch: Vec<NodeId> = out.iter().map(|t| t.id()).collect();
    let values: Vec<Value> = feeds
        .iter()
        .enumerate()
        .map(|(i, f)| value(d, &def.node(*f).ty.shape, 11 + i as u64))
        .collect();
    let feed_map: HashMap<NodeId, Value> = feeds.iter().copied().zip(values.clone()).collect();
    let want = executor::run(&def, &feed_map, &fetch, &mut SessionState::new()).unwrap();
    let (mut exe, _) = compile(&def, &feeds, &fetch).expect("compiles");
    let refs: Vec<&Value> = values.iter().collect();
    let (abs, rel) = tol(d);
    for _ in 0..2 {
        let got = exe.run(&refs, &mut SessionState::new()).unwrap();
        for (k, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_close(&format!("{name} {d} {shape:?} output {k}"), a, b, abs, rel);
        }
    }
}

#[test]
fn groups_match_the_interpreter() {
    let shapes: &[&[usize]] = &[
        &[4, 16],
        &[3, 1],
        &[1, 7],
        &[5, 33],
        &[2, 3, 17],
        &[0, 4],
        &[7, 64],
    ];
    for d in [DType::F32, DType::F64] {
        for shape in shapes {
            check("softmax", softmax_graph, d, shape);
            check("log_softmax", log_softmax_graph, d, shape);
            check("layer_norm", layer_norm_graph, d, shape);
            check("xent", xent_graph, d, shape);
        }
        for shape in [[2usize, 5, 3], [1, 1, 1], [3, 7, 9]] {
            check("middle_axis", middle_axis_graph, d, &shape);
            check("two_axes", two_axes_graph, d, &shape);
        }
    }
}

/// Two Adam steps, compiled and interpreted from the same initial state; the loss and
/// every variable (w, its m and v slots, the step counter) compared after each.
#[test]
fn adam_step_matches_the_interpreter() {
    for d in [DType::F32, DType::F64] {
        for (rows, cols) in [(5, 4), (1, 1), (7, 33)] {
            let (g, out) = adam_graph(d, rows, cols);
            let def = g.def();
            let feeds = feeds_of(&g);
            let fetch: Vec<NodeId> = out.iter().map(|t| t.id()).collect();
            let x = value(d, &[3, rows], 5);
            let mut want_state = SessionState::new();
            executor::initialize_variables(&def, &vec![true; def.len()], &mut want_state).unwrap();
            let mut got_state = want_state.clone();
            let (mut exe, _) = compile(&def, &feeds, &fetch).expect("compiles");
            let (abs, rel) = tol(d);
            for step in 0..2 {
                let feed_map = HashMap::from([(feeds[0], x.clone())]);
                let want = executor::run(&def, &feed_map, &fetch, &mut want_state).unwrap();
                let got = exe.run(&[&x], &mut got_state).unwrap();
                let what = format!("adam {d} [{rows}, {cols}] step {step}");
                assert_close(&format!("{what} loss"), &got[0], &want[0], abs, rel);
                for (name, w) in &want_state.variables {
                    let g = &got_state.variables[name];
                    assert_close(&format!("{what} `{name}`"), g, w, abs, rel);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Edge cases: where a group must stop, be dropped, or write a variable in place
// ---------------------------------------------------------------------------------------

/// Softmax whose `exp` is also read by a matrix product placed between the group's
/// reductions: the group stops before the product (it must see the stored `exp`).
fn outside_reader_graph(d: DType, shape: &[usize]) -> (Graph, Vec<Tensor>) {
    let g = Graph::new();
    let x = g.placeholder("x", d, shape).unwrap();
    let w = g.placeholder("w", d, &[shape[1], 3]).unwrap();
    let m = x.max(&[1], true).unwrap();
    let e = (&x - &m).unwrap().exp().unwrap();
    let side = e.matmul(&w).unwrap();
    let s = e.sum(&[1], true).unwrap();
    let p = (&e / &s).unwrap();
    (g, vec![p, side])
}

/// A member read at another outer index (through a transpose of a square tensor): the
/// group cannot be one kernel and must fall back to one kernel per node.
fn transposed_member_graph(d: DType, shape: &[usize]) -> (Graph, Vec<Tensor>) {
    let g = Graph::new();
    let x = g.placeholder("x", d, &[shape[0], shape[0]]).unwrap();
    let m = x.max(&[1], true).unwrap();
    let y = (&x - &m).unwrap();
    let z = (&y * &y.transpose(&[1, 0]).unwrap()).unwrap();
    let s = z.sum(&[1], false).unwrap();
    (g, vec![s])
}

#[test]
fn groups_stop_or_fall_back_and_match_the_interpreter() {
    for d in [DType::F32, DType::F64] {
        for shape in [[4usize, 16], [3, 1], [5, 7]] {
            check("outside_reader", outside_reader_graph, d, &shape);
            check("transposed_member", transposed_member_graph, d, &shape);
        }
    }
    // The transposed read makes the group unbuildable: no kernel has two reductions.
    let (g, out) = transposed_member_graph(DType::F32, &[5]);
    let l = lower_graph(&g, &[&out[0]], FusionOptions::default());
    assert_eq!(multi_reduction_kernels(&l), 0, "{}", describe(&l));
    // The product reads the stored exp: max+exp is one kernel, then the product.
    let (g, out) = outside_reader_graph(DType::F32, &[4, 16]);
    let l = lower_graph(&g, &[&out[0], &out[1]], FusionOptions::default());
    let matmul = l
        .steps
        .iter()
        .position(|s| matches!(s, LStep::MatMul { .. }))
        .expect("a product");
    assert!(
        matches!(&l.steps[matmul + 1..], [LStep::Kernel(_)]),
        "the sum and the division come after the product:\n{}",
        describe(&l)
    );
}

/// Running statistics: `running ← 0.9·running + 0.1·mean(x, rows)` and the normalised
/// `x`, twice; the group's per-row store goes straight into the variable. Compared with
/// the interpreter (output and variable after each run).
#[test]
fn group_output_assigned_in_place_matches_the_interpreter() {
    for d in [DType::F32, DType::F64] {
        for (rows, cols) in [(4usize, 16usize), (3, 1), (7, 65)] {
            let g = Graph::new();
            let x = g.placeholder("x", d, &[rows, cols]).unwrap();
            let running = g
                .variable("running", Value::zeros(d, &[rows]).cast(d))
                .unwrap();
            let mean = x.mean(&[1], false).unwrap();
            let upd = ((&running * 0.9).unwrap() + (&mean * 0.1).unwrap()).unwrap();
            let set = running.assign(&upd).unwrap();
            let y = (&x - &mean.reshape(&[rows as i64, 1]).unwrap()).unwrap();
            // Fetching the assign's value itself would keep the copy (inplace.rs).
            let train = g.group("train", &[&set]).unwrap();
            let l = lower_graph(&g, &[&y, &train], FusionOptions::default());
            assert!(
                !l.steps.iter().any(|s| matches!(s, LStep::Copy { .. })),
                "the update is in place:\n{}",
                describe(&l)
            );
            let def = g.def();
            let feeds = feeds_of(&g);
            let fetch = [y.id(), train.id()];
            let xv = value(d, &[rows, cols], 3);
            let mut want_state = SessionState::new();
            executor::initialize_variables(&def, &vec![true; def.len()], &mut want_state).unwrap();
            let mut got_state = want_state.clone();
            let (mut exe, _) = compile(&def, &feeds, &fetch).expect("compiles");
            let (abs, rel) = tol(d);
            for run in 0..2 {
                let feed_map = HashMap::from([(feeds[0], xv.clone())]);
                let want = executor::run(&def, &feed_map, &fetch, &mut want_state).unwrap();
                let got = exe.run(&[&xv], &mut got_state).unwrap();
                let what = format!("running stats {d} [{rows}, {cols}] run {run}");
                assert_close(&what, &got[0], &want[0], abs, rel);
                assert_close(
                    "running",
                    &got_state.variables["running"],
                    &want_state.variables["running"],
                    abs,
                    rel,
                );
            }
        }
    }
}

/// Two variables updated from each other's values at the start of the run
/// (`a ← a + b`, `b ← a·b`), over a wide and an odd shape: sibling fusion must keep
/// the start-of-run values. Compared with the interpreter over three runs.
#[test]
fn sibling_updates_reading_each_other_match_the_interpreter() {
    for d in [DType::F32, DType::F64] {
        for n in [1usize, 67, 300] {
            let g = Graph::new();
            let a = g.variable("a", value(d, &[n], 1)).unwrap();
            let b = g.variable("b", value(d, &[n], 2)).unwrap();
            let sa = a.assign((&a + &b).unwrap()).unwrap();
            let sb = b.assign((&a * &b).unwrap().tanh().unwrap()).unwrap();
            let train = g.group("train", &[&sa, &sb]).unwrap();
            let def = g.def();
            let fetch = [train.id()];
            let mut want_state = SessionState::new();
            executor::initialize_variables(&def, &vec![true; def.len()], &mut want_state).unwrap();
            let mut got_state = want_state.clone();
            let (mut exe, _) = compile(&def, &[], &fetch).expect("compiles");
            let (abs, rel) = tol(d);
            for run in 0..3 {
                executor::run(&def, &HashMap::new(), &fetch, &mut want_state).unwrap();
                exe.run(&[], &mut got_state).unwrap();
                for v in ["a", "b"] {
                    assert_close(
                        &format!("{d} n={n} run {run} `{v}`"),
                        &got_state.variables[v],
                        &want_state.variables[v],
                        abs,
                        rel,
                    );
                }
            }
        }
    }
}
