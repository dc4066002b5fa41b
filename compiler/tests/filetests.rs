//! Filetests: text-IR graphs through each pass and through lowering, with the result
//! snapshotted (insta, `compiler/tests/snapshots/`).
//!
//! - One test per pass (`canonicalize`, `constant_folding`, `cse`, `dce`) and one for the
//!   default pipeline: the snapshot holds the input IR, the outputs, and the IR after the
//!   pass (with the outputs it now points at).
//! - Lowering: the fused kernels (kernel IR, see `flumen_compiler::kernel`) and the other
//!   steps the default pipeline and fusion make for a dense layer with bias and ReLU, a
//!   softmax, a reduction with fused producers and a slice assignment.
//! - The pipeline runs the verifier between passes, and `FLUMEN_DUMP=<pass>` (or
//!   `Pipeline::dump_after`) prints the IR after that pass.
//!
//! Review snapshot changes with `cargo insta review` (or set `INSTA_UPDATE=always` and read
//! the diff): a change in the IR a pass produces is a change in what the compiler does.

use flumen_compiler::lower;
use flumen_compiler::passes::{
    Canonicalize, CommonSubexpressionElimination, ConstantFolding, DeadCodeElimination,
    default_pipeline,
};
use flumen_compiler::{Pass, Pipeline, Unit};
use flumen_frontend::op::{Op, TensorType};
use flumen_frontend::{GraphDef, GraphError, NodeId, Result};
use std::cell::Cell;
use std::fmt::Write;
use std::rc::Rc;

/// Parse `text` (the header is added) and name the outputs.
fn unit(text: &str, outputs: &[&str]) -> Unit {
    let def: GraphDef = format!("# flumen graph v1\n{text}")
        .parse()
        .unwrap_or_else(|e| panic!("filetest input does not parse: {e}"));
    let outputs = outputs
        .iter()
        .map(|n| def.find(n).unwrap_or_else(|| panic!("no node `{n}`")))
        .collect();
    Unit { def, outputs }
}

fn describe_outputs(u: &Unit) -> String {
    let names: Vec<String> = u
        .outputs
        .iter()
        .map(|o| format!("%{}", u.def.node(*o).name))
        .collect();
    format!("outputs: {}\n", names.join(", "))
}

/// The input, then the IR after `pass`.
fn run_pass(pass: &dyn Pass, before: Unit) -> String {
    let mut s = format!("{}{}", before.def, describe_outputs(&before));
    let after = pass.run(before).expect("the pass succeeds");
    flumen_compiler::verify(&after.def).expect("the pass keeps the graph valid");
    write!(
        s,
        "\n// after `{}`\n{}{}",
        pass.name(),
        after.def,
        describe_outputs(&after)
    )
    .unwrap();
    s
}

#[test]
fn canonicalize_expands_composites() {
    let u = unit(
        "%x = placeholder() {dtype=f32, shape=[2, 3]} : f32[2,3]
%probs = softmax(%x) {axis=1} ^(%x) : f32[2,3]
%gamma = constant() {value=f32[3] [1.0, 2.0, 3.0]} : f32[3]
%beta = constant() {value=f32[3] [0.5, 0.0, -0.5]} : f32[3]
%norm = layer_norm(%x, %gamma, %beta) {eps=1e-5, affine=true} : f32[2,3]
%loss = mean_squared_error(%probs, %norm) : f32[2]
",
        &["probs", "loss"],
    );
    insta::assert_snapshot!(run_pass(&Canonicalize, u));
}

#[test]
fn constant_folding_evaluates_constant_subgraphs() {
    // Folded: `ab`, `e`, `later` (which inherits the assign its input waited for). Not
    // folded: anything reading a placeholder or a random op, a broadcast above the size
    // cap, the random op itself, the no_op group.
    let u = unit(
        "%a = constant() {value=f32[2] [1.0, 2.0]} : f32[2]
%b = constant() {value=f32[] [3.0]} : f32[]
%ab = mul(%a, %b) : f32[2]
%e = exp(%ab) : f32[2]
%x = placeholder() {dtype=f32, shape=[2]} : f32[2]
%y = add(%x, %e) : f32[2]
%big = broadcast_to(%b) {shape=[300, 300]} : f32[300,300]
%big_sum = reduce_sum(%big) {axes=[0, 1], keepdims=false} : f32[]
%r = random_uniform() {low=0.0, high=1.0, dtype=f32, shape=[2], seed=7} : f32[2]
%noisy = mul(%r, %b) : f32[2]
%v = variable(%a) {trainable=true} : f32[2]
%set = assign(%v, %ab) : f32[2]
%after_set = constant() {value=f32[] [1.0]} ^(%set) : f32[]
%later = add(%after_set, %b) : f32[]
%idx = constant() {value=i64[1] [5]} : i64[1]
%bad_gather = gather(%a, %idx) {axis=0, batch_dims=0} : f32[1]
%group = no_op() ^(%set) : bool[]
",
        &["y", "big_sum", "noisy", "later", "bad_gather", "group", "e"],
    );
    insta::assert_snapshot!(run_pass(&ConstantFolding, u));
}

#[test]
fn cse_merges_identical_pure_nodes_only() {
    // Merged: `exp2` into `exp1`, then `s2` into `s1`; the bitwise-equal NaN constants.
    // Kept apart: 0.0 and -0.0, two random ops with equal seeds, two reads, a node with a
    // different control input, and the placeholders.
    let u = unit(
        "%x = placeholder() {dtype=f32, shape=[3]} : f32[3]
%x2 = placeholder() {dtype=f32, shape=[3]} : f32[3]
%exp1 = exp(%x) : f32[3]
%exp2 = exp(%x) : f32[3]
%s1 = add(%exp1, %x) : f32[3]
%s2 = add(%exp2, %x) : f32[3]
%zero = constant() {value=f32[] [0.0]} : f32[]
%neg_zero = constant() {value=f32[] [-0.0]} : f32[]
%nan1 = constant() {value=f32[] [NaN]} : f32[]
%nan2 = constant() {value=f32[] [NaN]} : f32[]
%r1 = random_uniform() {low=0.0, high=1.0, dtype=f32, shape=[3], seed=1} : f32[3]
%r2 = random_uniform() {low=0.0, high=1.0, dtype=f32, shape=[3], seed=1} : f32[3]
%init = constant() {value=f32[3] [0.0, 0.0, 0.0]} : f32[3]
%v = variable(%init) {trainable=true} : f32[3]
%set = assign(%v, %s1) : f32[3]
%read1 = read(%v) ^(%set) : f32[3]
%read2 = read(%v) ^(%set) : f32[3]
%exp_after = exp(%x) ^(%set) : f32[3]
%sum = add(%s1, %s2) : f32[3]
%zeros = add(%zero, %neg_zero) : f32[]
%nans = add(%nan1, %nan2) : f32[]
%randoms = add(%r1, %r2) : f32[3]
%reads = add(%read1, %read2) : f32[3]
",
        &[
            "sum",
            "s2",
            "zeros",
            "nans",
            "randoms",
            "reads",
            "exp_after",
            "x2",
        ],
    );
    insta::assert_snapshot!(run_pass(&CommonSubexpressionElimination, u));
}

#[test]
fn dce_keeps_what_outputs_need() {
    // Dead: `unused`, `unused_exp` and the assign nobody runs. Live: the variable's
    // initializer (kept with the variable), control inputs of outputs.
    let u = unit(
        "%x = placeholder() {dtype=f32, shape=[2]} : f32[2]
%unused = placeholder() {dtype=f32, shape=[2]} : f32[2]
%unused_exp = exp(%unused) : f32[2]
%init = random_normal() {mean=0.0, stddev=1.0, dtype=f32, shape=[2], seed=3} : f32[2]
%w = variable(%init) {trainable=true} : f32[2]
%y = mul(%x, %w) : f32[2]
%dead_set = assign(%w, %x) : f32[2]
%step = assign(%w, %y) : f32[2]
%train = no_op() ^(%step) : bool[]
",
        &["y", "train"],
    );
    insta::assert_snapshot!(run_pass(&DeadCodeElimination, u));
}

/// A small model whose constant parts fold and whose repeated parts merge.
const MODEL: &str = "%x = placeholder() {dtype=f32, shape=[4, 3]} : f32[4,3]
%w_init = constant() {value=f32[3,2] [0.5, -0.5, 1.0, 2.0, -1.0, 0.25]} : f32[3,2]
%w = variable(%w_init) {trainable=true} : f32[3,2]
%scale = constant() {value=f32[] [2.0]} : f32[]
%two_scale = mul(%scale, %scale) : f32[]
%h = matmul(%x, %w) {transpose_a=false, transpose_b=false} : f32[4,2]
%h1 = mul(%h, %two_scale) : f32[4,2]
%h2 = mul(%h, %two_scale) : f32[4,2]
%hh = add(%h1, %h2) : f32[4,2]
%probs = softmax(%hh) {axis=1} : f32[4,2]
%dead = exp(%x) : f32[4,3]
";

#[test]
fn default_pipeline_end_to_end() {
    let u = unit(MODEL, &["probs"]);
    let pipeline = default_pipeline();
    assert_eq!(
        pipeline.names(),
        ["canonicalize", "constant_folding", "cse", "dce"]
    );
    let mut s = format!("{}{}", u.def, describe_outputs(&u));
    let after = pipeline.run(u).unwrap();
    write!(
        s,
        "\n// after the default pipeline\n{}{}",
        after.def,
        describe_outputs(&after)
    )
    .unwrap();
    insta::assert_snapshot!(s);
}

// ---------------------------------------------------------------------------------------
// Lowering: fused kernels
// ---------------------------------------------------------------------------------------

/// The default pipeline, then lowering (every placeholder fed, in id order); the steps,
/// kernels in full.
fn lowered(text: &str, outputs: &[&str]) -> String {
    let u = default_pipeline().run(unit(text, outputs)).unwrap();
    let feeds: Vec<(String, TensorType)> = u
        .def
        .nodes()
        .iter()
        .filter(|n| matches!(n.op, Op::Placeholder { .. }))
        .map(|n| (n.name.clone(), n.ty.clone()))
        .collect();
    let l = lower::lower(&u, &feeds).unwrap();
    let mut s = l.to_string();
    let fetched: Vec<String> = l
        .fetches
        .iter()
        .map(|(b, t)| format!("buf{}: {t}", b.0))
        .collect();
    writeln!(s, "fetches: {}", fetched.join(", ")).unwrap();
    s
}

#[test]
fn kernels_dense_bias_relu() {
    insta::assert_snapshot!(lowered(
        "%x = placeholder() {dtype=f32, shape=[8, 3]} : f32[8,3]
%w_init = constant() {value=f32[3,4] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]} : f32[3,4]
%w = variable(%w_init) {trainable=true} : f32[3,4]
%b = constant() {value=f32[4] [0.5, -0.5, 0.25, 0.0]} : f32[4]
%xw = matmul(%x, %w) {transpose_a=false, transpose_b=false} : f32[8,4]
%pre = add(%xw, %b) : f32[8,4]
%y = relu(%pre) : f32[8,4]
",
        &["y"],
    ));
}

#[test]
fn kernels_softmax() {
    insta::assert_snapshot!(lowered(
        "%x = placeholder() {dtype=f32, shape=[4, 16]} : f32[4,16]
%p = softmax(%x) {axis=1} : f32[4,16]
",
        &["p"],
    ));
}

#[test]
fn kernels_reduction_with_fused_producers() {
    // transpose → exp → scale fuse into the reduction; the mean's division after it.
    insta::assert_snapshot!(lowered(
        "%x = placeholder() {dtype=f32, shape=[3, 5]} : f32[3,5]
%t = transpose(%x) {perm=[1, 0]} : f32[5,3]
%e = exp(%t) : f32[5,3]
%two = constant() {value=f32[] [2.0]} : f32[]
%s = mul(%e, %two) : f32[5,3]
%m = reduce_mean(%s) {axes=[1], keepdims=false} : f32[5]
",
        &["m"],
    ));
}

#[test]
fn kernels_slice_assign() {
    // v[1:3, ::2] := x * 10, then the variable's new value.
    insta::assert_snapshot!(lowered(
        "%init = constant() {value=f32[4,4] [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0]} : f32[4,4]
%v = variable(%init) {trainable=false} : f32[4,4]
%x = placeholder() {dtype=f32, shape=[2, 2]} : f32[2,2]
%ten = constant() {value=f32[] [10.0]} : f32[]
%value = mul(%x, %ten) : f32[2,2]
%set = assign_slice(%v, %value) {dims=[(1, 1, 2), (0, 2, 2)]} : f32[4,4]
",
        &["set"],
    ));
}

// ---------------------------------------------------------------------------------------
// The pipeline: verifier between passes, dumps
// ---------------------------------------------------------------------------------------

/// A broken pass: points the outputs past the end of the graph.
struct Breaks;

impl Pass for Breaks {
    fn name(&self) -> &'static str {
        "breaks"
    }
    fn run(&self, unit: Unit) -> Result<Unit> {
        let past_end = NodeId(unit.def.len() + 5);
        Ok(Unit {
            outputs: vec![past_end],
            ..unit
        })
    }
}

/// Records that it ran.
struct Records(Rc<Cell<bool>>);

impl Pass for Records {
    fn name(&self) -> &'static str {
        "records"
    }
    fn run(&self, unit: Unit) -> Result<Unit> {
        self.0.set(true);
        Ok(unit)
    }
}

#[test]
fn pipeline_verifies_between_passes() {
    let ran = Rc::new(Cell::new(false));
    let p = Pipeline::new()
        .verify_between(true)
        .with(Breaks)
        .with(Records(ran.clone()));
    let err = p.run(unit(MODEL, &["probs"])).unwrap_err();
    assert!(
        matches!(&err, GraphError::Invalid(m) if m.contains("after pass `breaks`")),
        "{err}"
    );
    assert!(!ran.get(), "the pass after the broken one must not run");

    // With verification off the broken unit goes through.
    let ran = Rc::new(Cell::new(false));
    let p = Pipeline::new()
        .verify_between(false)
        .with(Breaks)
        .with(Records(ran.clone()));
    assert!(p.run(unit(MODEL, &["probs"])).is_ok());
    assert!(ran.get());

    // The default pipeline verifies in tests (debug assertions) and accepts valid input.
    assert!(default_pipeline().run(unit(MODEL, &["probs"])).is_ok());
}

/// Run as a child process by `flumen_dump_prints_ir_after_the_named_pass`.
#[test]
fn dump_child() {
    if std::env::var_os("FILETESTS_DUMP_CHILD").is_none() {
        return;
    }
    let p = default_pipeline().dump_after(&["canonicalize"]);
    p.run(unit(MODEL, &["probs"])).unwrap();
}

#[test]
fn flumen_dump_prints_ir_after_the_named_pass() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "dump_child", "--nocapture", "--test-threads=1"])
        .env("FILETESTS_DUMP_CHILD", "1")
        .env("FLUMEN_DUMP", "cse")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // `FLUMEN_DUMP=cse` and `dump_after(["canonicalize"])`; nothing after the others.
    assert!(
        err.contains("// IR after pass `cse`\n# flumen graph v1\n"),
        "{err}"
    );
    assert!(err.contains("// IR after pass `canonicalize`\n"), "{err}");
    assert!(!err.contains("after pass `dce`"), "{err}");
    assert!(!err.contains("after pass `constant_folding`"), "{err}");
    // What is printed is the text IR of the graph after the pass: it parses.
    let start = err.find("// IR after pass `cse`\n").unwrap();
    let text = err[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("//") && !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let def: GraphDef = text.parse().unwrap();
    assert!(def.find("probs").is_some());
}
