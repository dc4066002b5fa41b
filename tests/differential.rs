//! Differential tests: the compiled backend against the reference interpreter
//! ([`Backend::Interpreter`]), on random well-typed graphs and on a table that covers every
//! op and composite.
//!
//! # How a graph is checked
//! Comparing a compiled value with the interpreter's only at the end of a random graph is
//! either too strict or too loose: an approximation that is allowed in one op (an f32 `exp`
//! within 2 ulp, a sum in another order) can be amplified without bound by the ops after it
//! (`floor`, a comparison, a cancellation). So [`check_graph`] checks every op *locally*,
//! against the interpreter evaluated on the compiled backend's own inputs, and checks
//! fusion separately, where no tolerance is needed:
//!
//! 1. Most constants become placeholders fed with their values (so that constant folding
//!    does not take the computation away from the compiled code), then composites are
//!    expanded with the `canonicalize` pass (the graph `G`). Every other placeholder is fed
//!    a random value ([`feed_value`]: one feed in four has NaNs, infinities, `-0.0`,
//!    subnormals, extreme integers; or [`special_value`], always special). A fetch set `S`
//!    is drawn among the original graph's nodes: every node, the last one, or a random
//!    subset, mostly sinks (so that fusion happens).
//! 2. `G` runs on both backends fetching `S` plus `P`, the float `reduce_sum`,
//!    `reduce_mean` and `reduce_prod` nodes that `S` needs (reductions are always
//!    materialised, so fetching them does not change fusion). Both must succeed, or both
//!    fail.
//! 3. `G'` is `G` with each reduction of `P` replaced by a placeholder fed the compiled
//!    value. `G'` runs compiled fetching *every* node that ran (nothing is fused).
//! 4. Checks:
//!    - **fusion**: every value of `S` equals the unfused value of `G'` bit for bit. Fusion
//!      changes where values live, never how a scalar is computed (no FMA contraction,
//!      one routine for vector and scalar lanes), and the only order-dependent ops, the
//!      reductions in `P`, got the same inputs;
//!    - **reductions**: each compiled reduction of `P` matches the interpreter's reduction
//!      of its (compiled) input within the reassociation bound below;
//!    - **every op**: each node of `G'` matches the interpreter's `eval_op` on the compiled
//!      values of its inputs, within the op's tolerance below; state ops against a
//!      replay of the assigns (variables, `read`, `assign`, `assign_slice`), random ops
//!      against the interpreter with the same Philox counter;
//!    - **end to end**: every fetched value that no approximate op influences (tracked
//!      through data inputs and through variables written by assigns) equals the
//!      interpreter's bit for bit, as do such variables after the run;
//!    - **composites**: when the original graph has composites, it runs on both backends
//!      too, and must give the same bits as `G` on each backend (the compiled backend
//!      canonicalises the same way; the interpreter builds the same expansion).
//!
//! # Tolerances
//! Integers and bools are exact everywhere (wrapping arithmetic). Floats are compared in
//! units of the reference value's ulp (`ulp(y)`, the spacing of the dtype at `|y|`) and
//! `u` = 2⁻²⁴ (f32) or 2⁻⁵³ (f64), the unit roundoff. A NaN matches any NaN (payloads and
//! signs of NaNs are not compared); otherwise zero signs count.
//!
//! | op | tolerance | why |
//! |---|---|---|
//! | f32 and f64 `+ − × ÷`, `sqrt`, `rsqrt`, `square`, `reciprocal`, `pow`, `mod`, `abs`, `neg`, `sign`, `relu`, `floor`, `ceil`, `round`, `maximum`, `minimum`, comparisons, casts, `select`, layout ops | exact | the interpreter computes f32 in f64 and rounds once, which for these ops is the correctly rounded f32 result the compiled code computes (or both call the same f64 routine) |
//! | f64 transcendentals | exact | both call the same C/`libm` routines |
//! | f32 `exp`, `log`, `erf` | 2 ulp | codegen's polynomials (bounds from `compiler/src/codegen/math.rs`) |
//! | f32 `log1p`, `tanh`, `sigmoid` | 3 ulp | 〃 |
//! | f32 `softplus` | 4 ulp | 〃 |
//! | f32 `sin`, `cos` | 2 ulp + 2⁻⁴⁶·\|x\| | 〃 (argument reduction error grows with \|x\|) |
//! | f32 `gelu` | 8 ulp + 2⁻⁵²·\|x\| | 〃 |
//! | float `reduce_sum` of n elements | n·u·Σ\|xᵢ\| + ulp(y) (f64: 2n·u·Σ\|xᵢ\| + ulp) | the compiled code adds in another order (vector accumulators) in the dtype; the interpreter adds in f64 and rounds once. Any order's error is ≤ (n−1)·u·Σ\|xᵢ\| |
//! | float `reduce_mean` | the sum's bound / n + 2 ulp(y) | one more rounding (the division) |
//! | float `reduce_prod` | n·u·\|y\| + ulp(y) (f64: 2n·u·\|y\| + ulp) | a product of n factors has relative error ≤ (n−1)·u in any order |
//! | float `matmul` (contraction k) | (k+1)·u·Σₗ\|aᵢₗ·bₗⱼ\| + ulp(y) + k·(smallest subnormal) (f64: twice the relative part) | a dot product in any order, products possibly rounded or fused; products may underflow |
//! | `cumsum`, `scatter_add` (floats) | exact | the compiled backend runs them through the interpreter fallback today; give them the sum's bound when they get kernels |
//!
//! Where a bound does not apply the element is not compared, and only there: a sum whose
//! Σ\|xᵢ\| over finite elements exceeds the dtype's maximum (an intermediate may overflow
//! in one order and not in another), a product whose partial products could leave the
//! normal range, a dot product whose Σ\|aᵢₗ·bₗⱼ\| (times 1 + (k+1)·u) exceeds the maximum or
//! is not finite. NaN inputs still require a NaN result there (f64 dot products excepted: the
//! f64 reference may itself overflow), as do infinities of both signs in a sum (a NaN from
//! an overflowing partial sum meeting an infinity depends on the order, so it is not
//! required), and sums with infinite elements but a small finite part are exact.
//! A result within its tolerance of the dtype's maximum may round to infinity.
//!
//! # Tests
//! - `random_graphs_fused`, `random_graphs_every_node`: graphs from
//!   `flumen_frontend::testing::arb_graph_ext` (every op family, composites, elementwise
//!   chains, dense layers, reductions of views, chains of layout ops), a subset fetched or
//!   every node fetched; `random_graphs_general`: larger graphs from `arb_graph` (state,
//!   random ops, groups).
//! - `every_op_compiled_matches_interpreter`: a table with one or more graphs for every op
//!   variant, elementwise op, reduction, distribution and composite over the dtypes each
//!   accepts (exhaustive matches make a new op fail until it has a case), plus hand-written
//!   state and fusion graphs, with ordinary and special feeds, unfused and fused.
//! - `regression_*`: the bugs these tests found, each with its minimal graph.
//!
//! # Runs and soak
//! CI runs [`CASES`] cases of each of the three random tests (10,200 graphs; about 60 s of
//! CPU, so 30 s on two cores, in the test profile) with fixed seeds. For a longer soak, raise
//! the case count and let proptest pick the seeds:
//!
//! ```text
//! PROPTEST_CASES=100000 PROPTEST_RNG_SEED=$RANDOM cargo test --test differential
//! ```
//!
//! (`--release` runs faster once built, without the verifiers that debug builds run.) A
//! failure prints the graph in the text IR, the feeds, the feed seed and the fetch mode;
//! proptest shrinks it by dropping generator steps. Replay it with the `replay` test (see
//! there), then turn it into a `regression_*` test with the graph written out.

use flumen::compiler::Pass;
use flumen::compiler::passes::{Canonicalize, MAX_FOLDED_ELEMENTS, is_foldable_op};
use flumen::op::{
    ArgReduceOp, BinaryOp, Composite, Distribution, Op, ReduceOp, SliceDim, SliceSpec, TensorType,
    UnaryOp,
};
use flumen::runtime::interpreter::{assign_slice, executor};
use flumen::runtime::{EvalContext, SessionState, eval_op};
use flumen::{Backend, DType, Graph, GraphDef, NodeId, Scalar, Session, Tensor, Value};
use flumen_frontend::testing::{arb_graph, arb_graph_ext, feed_value, special_value};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------------------
// Running a graph
// ---------------------------------------------------------------------------------------

/// Values of the fetches and the variables after one run of a fresh session.
type RunResult = Result<(Vec<Value>, BTreeMap<String, Value>), String>;

/// Run `fetches` of `def` once in a fresh session on `backend`, feeding each placeholder
/// named in `feeds` (placeholders not in `def` are ignored).
fn session_run(
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
fn canonical(def: &GraphDef) -> Result<GraphDef, String> {
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
enum Fetch {
    /// Every node (nothing is fused).
    All,
    /// A random subset drawn from this seed (fusion happens).
    Subset(u64),
    /// The last node only.
    Last,
}

/// How placeholders are fed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Feeds {
    /// [`feed_value`]: mostly ordinary values, special ones in one feed of four.
    Random,
    /// [`special_value`]: NaNs, infinities, `-0.0`, subnormals and extreme integers in every
    /// feed.
    Special,
}

/// SplitMix64, for the test's own choices.
struct Mix(u64);

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
// Comparing values
// ---------------------------------------------------------------------------------------

/// How one element is compared.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tol {
    /// Same bits (any NaN matches any NaN).
    Exact,
    /// Within this absolute difference (NaN only matches NaN; infinities exactly, or a
    /// finite value within the tolerance of the dtype's maximum).
    Abs(f64),
    /// Only: a NaN reference needs a NaN.
    NanOnly,
    /// Not compared.
    Skip,
}

fn max_of(dtype: DType) -> f64 {
    if dtype == DType::F32 {
        f32::MAX as f64
    } else {
        f64::MAX
    }
}

/// The spacing of `dtype`'s values at `|x|` (at the maximum for infinities).
fn ulp(x: f64, dtype: DType) -> f64 {
    if dtype == DType::F32 {
        let a = (x as f32).abs();
        let a = if a.is_finite() && a < f32::MAX {
            a
        } else {
            f32::from_bits(f32::MAX.to_bits() - 1)
        };
        (f32::from_bits(a.to_bits() + 1) - a) as f64
    } else {
        let a = x.abs();
        let a = if a.is_finite() && a < f64::MAX {
            a
        } else {
            f64::from_bits(f64::MAX.to_bits() - 1)
        };
        f64::from_bits(a.to_bits() + 1) - a
    }
}

/// The unit roundoff of a float dtype.
fn unit_roundoff(dtype: DType) -> f64 {
    if dtype == DType::F32 {
        f32::EPSILON as f64 / 2.0
    } else {
        f64::EPSILON / 2.0
    }
}

/// Whether one float element passes.
fn float_ok(got: f64, want: f64, tol: Tol, dtype: DType) -> bool {
    match tol {
        Tol::Skip => true,
        Tol::NanOnly => !want.is_nan() || got.is_nan(),
        Tol::Exact => {
            (got.is_nan() && want.is_nan())
                || (got == want && got.is_sign_negative() == want.is_sign_negative())
        }
        Tol::Abs(t) => {
            if want.is_nan() || got.is_nan() {
                return want.is_nan() && got.is_nan();
            }
            let max = max_of(dtype);
            if want.is_infinite() || got.is_infinite() {
                // A result within tolerance of the maximum may round to infinity.
                let finite = if want.is_infinite() { got } else { want };
                return got == want || (got.signum() == want.signum() && finite.abs() + t >= max);
            }
            (got - want).abs() <= t
        }
    }
}

/// Row-major multi-index of element `i` of `shape` (for messages).
fn index_of(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        if shape[k] > 0 {
            idx[k] = i % shape[k];
            i /= shape[k];
        }
    }
    idx
}

/// Compare `got` with the reference `want` element by element (`tol` per element; exact
/// for non-float dtypes).
fn compare(got: &Value, want: &Value, tol: &dyn Fn(usize) -> Tol) -> Result<(), String> {
    if got.dtype() != want.dtype() || got.shape() != want.shape() {
        return Err(format!(
            "type {}{:?}, expected {}{:?}",
            got.dtype(),
            got.shape(),
            want.dtype(),
            want.shape()
        ));
    }
    let dtype = want.dtype();
    if !dtype.is_float() {
        if got.bit_eq(want) {
            return Ok(());
        }
        let (g, w) = (got.cast(DType::I64), want.cast(DType::I64));
        let (g, w) = (g.as_i64().expect("i64"), w.as_i64().expect("i64"));
        let (i, (a, b)) = g
            .iter()
            .zip(w.iter())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .expect("values differ somewhere");
        return Err(format!(
            "element {:?}: got {a}, expected {b}",
            index_of(i, want.shape())
        ));
    }
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let t = tol(i);
        if !float_ok(a, b, t, dtype) {
            return Err(format!(
                "element {:?}: got {a:e} ({a:?}), expected {b:e} ({b:?}), tolerance {t:?}",
                index_of(i, want.shape())
            ));
        }
    }
    Ok(())
}

fn exact(_: usize) -> Tol {
    Tol::Exact
}

// ---------------------------------------------------------------------------------------
// Tolerances per op
// ---------------------------------------------------------------------------------------

/// The error bound (ulps, and a multiple of |x|) of an f32 transcendental, or `None` for
/// the ops compiled code computes exactly.
fn f32_unary_bound(u: UnaryOp) -> Option<(f64, f64)> {
    use UnaryOp::*;
    Some(match u {
        Exp | Log | Erf => (2.0, 0.0),
        Log1p | Tanh | Sigmoid => (3.0, 0.0),
        Softplus => (4.0, 0.0),
        Sin | Cos => (2.0, 2f64.powi(-46)),
        Gelu => (8.0, 2f64.powi(-52)),
        Neg | Abs | Sign | Sqrt | Rsqrt | Square | Reciprocal | Relu | Floor | Ceil | Round
        | LogicalNot | Identity | StopGradient => return None,
    })
}

/// Whether the compiled value of `node` may differ from the interpreter's on the same
/// inputs (an approximate or order-dependent op).
fn is_approx(def: &GraphDef, id: NodeId) -> bool {
    let node = def.node(id);
    match &node.op {
        Op::Unary(u) => node.ty.dtype == DType::F32 && f32_unary_bound(*u).is_some(),
        Op::Reduce { .. } => is_reassociating(def, id),
        Op::MatMul { .. } => node.ty.dtype.is_float(),
        _ => false,
    }
}

/// Float sums, means and products: their compiled value depends on the evaluation order,
/// which depends on how producers are fused into the reduction.
fn is_reassociating(def: &GraphDef, id: NodeId) -> bool {
    let node = def.node(id);
    matches!(
        node.op,
        Op::Reduce {
            op: ReduceOp::Sum | ReduceOp::Mean | ReduceOp::Prod,
            ..
        }
    ) && node.ty.dtype.is_float()
}

/// The groups of input elements each output element of a reduction over `axes` reduces
/// (in the interpreter's order), as f64.
fn reduce_groups(x: &Value, axes: &[usize]) -> Vec<Vec<f64>> {
    let shape = x.shape().to_vec();
    let a = ndarray::ArrayD::from_shape_vec(shape.clone(), x.to_f64_vec()).expect("shape");
    let kept: Vec<usize> = (0..shape.len()).filter(|k| !axes.contains(k)).collect();
    let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let group: usize = axes.iter().map(|&k| shape[k]).product();
    let outer: usize = kept.iter().map(|&k| shape[k]).product();
    let flat: Vec<f64> = a.view().permuted_axes(perm).iter().copied().collect();
    (0..outer)
        .map(|o| flat[o * group..(o + 1) * group].to_vec())
        .collect()
}

/// Per-element tolerances of a float reduction `op` of `x` whose reference is `want`.
fn reduce_tolerance(op: ReduceOp, x: &Value, axes: &[usize], want: &Value) -> Vec<Tol> {
    let dtype = want.dtype();
    let u = unit_roundoff(dtype);
    // The interpreter is exact to within its final rounding for f32 (it accumulates in
    // f64); for f64 both sides carry an order-dependent error.
    let sides = if dtype == DType::F32 { 1.0 } else { 2.0 };
    let max = max_of(dtype);
    let w = want.to_f64_vec();
    reduce_groups(x, axes)
        .iter()
        .zip(&w)
        .map(|(g, &y)| {
            let n = g.len() as f64;
            if g.iter().any(|v| v.is_nan()) {
                return Tol::NanOnly;
            }
            match op {
                ReduceOp::Sum | ReduceOp::Mean => {
                    let finite: f64 = g.iter().filter(|v| v.is_finite()).map(|v| v.abs()).sum();
                    if finite * (1.0 + n * u) > max {
                        // Partial sums may overflow in one order and not in another, so a
                        // NaN (∞ − ∞) can appear in either side's order alone; only
                        // infinities of both signs in the input force one.
                        let both_infinities =
                            g.contains(&f64::INFINITY) && g.contains(&f64::NEG_INFINITY);
                        if both_infinities {
                            Tol::NanOnly
                        } else {
                            Tol::Skip
                        }
                    } else if g.iter().any(|v| v.is_infinite()) {
                        Tol::Exact
                    } else if op == ReduceOp::Sum {
                        Tol::Abs(sides * n * u * finite + ulp(y, dtype))
                    } else {
                        Tol::Abs(sides * u * finite + 2.0 * ulp(y, dtype))
                    }
                }
                ReduceOp::Prod => {
                    // Partial products in any order lie between the product of the factors
                    // below 1 and the product of those above 1 (in magnitude).
                    let log2 = |v: &f64| v.abs().log2();
                    let big: f64 = g.iter().filter(|v| v.abs() > 1.0).map(log2).sum();
                    let small: f64 = g
                        .iter()
                        .filter(|v| v.abs() < 1.0 && **v != 0.0)
                        .map(log2)
                        .sum();
                    let (lo, hi) = if dtype == DType::F32 {
                        (-125.0, 127.0)
                    } else {
                        (-1021.0, 1023.0)
                    };
                    if big >= hi || small <= lo {
                        Tol::NanOnly
                    } else if g.iter().any(|v| *v == 0.0 || v.is_infinite()) {
                        Tol::Exact
                    } else {
                        Tol::Abs(sides * n * u * y.abs() + ulp(y, dtype))
                    }
                }
                ReduceOp::Max | ReduceOp::Min => Tol::Exact,
            }
        })
        .collect()
}

/// Per-element tolerances of a float matmul whose reference is `want`.
fn matmul_tolerance(op: &Op, a: &Value, b: &Value, want: &Value) -> Result<Vec<Tol>, String> {
    let Op::MatMul { transpose_a, .. } = op else {
        unreachable!("matmul_tolerance on {}", op.name())
    };
    let dtype = want.dtype();
    let abs64 = |v: &Value| {
        let a = v.cast(DType::F64).into_array::<f64>().expect("f64");
        Value::from(a.mapv(f64::abs))
    };
    // Σₗ |aᵢₗ·bₗⱼ| by the interpreter in f64 (exact products for f32 operands).
    let ty = TensorType::new(DType::F64, want.shape());
    let mag = eval_op(op, &[&abs64(a), &abs64(b)], &ty, EvalContext::default())?.to_f64_vec();
    let ra = a.shape().len();
    let k = a.shape()[if *transpose_a { ra - 2 } else { ra - 1 }] as f64;
    let u = unit_roundoff(dtype);
    let sides = if dtype == DType::F32 { 1.0 } else { 2.0 };
    let tiny = if dtype == DType::F32 {
        f32::from_bits(1) as f64
    } else {
        f64::from_bits(1)
    };
    let max = max_of(dtype);
    Ok(mag
        .iter()
        .zip(want.to_f64_vec())
        .map(|(&m, y)| {
            // `m` may be NaN or infinite (non-finite operands): no bound then either.
            let bounded = (m * (1.0 + (k + 1.0) * u)).partial_cmp(&max);
            if !matches!(
                bounded,
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            ) {
                if dtype == DType::F32 {
                    Tol::NanOnly
                } else {
                    Tol::Skip
                }
            } else {
                Tol::Abs(sides * (k + 1.0) * u * m + ulp(y, dtype) + k * tiny)
            }
        })
        .collect())
}

/// The tolerance of each element of `op`'s compiled value against the interpreter's
/// `want` on the same `inputs`.
fn op_tolerance(op: &Op, inputs: &[&Value], want: &Value) -> Result<Vec<Tol>, String> {
    let n = want.len();
    let dtype = want.dtype();
    Ok(match op {
        Op::Unary(u) if dtype == DType::F32 => match f32_unary_bound(*u) {
            Some((ulps, rel_x)) => {
                let x = inputs[0].to_f64_vec();
                want.to_f64_vec()
                    .iter()
                    .zip(&x)
                    .map(|(&y, &x)| {
                        // Infinite arguments have exact results (the |x| term is for
                        // argument reduction, which they skip).
                        let arg = if x.is_finite() { rel_x * x.abs() } else { 0.0 };
                        Tol::Abs(ulps * ulp(y, dtype) + arg)
                    })
                    .collect()
            }
            None => vec![Tol::Exact; n],
        },
        Op::Reduce { op: r, axes, .. } if dtype.is_float() => {
            reduce_tolerance(*r, inputs[0], axes, want)
        }
        Op::MatMul { .. } if dtype.is_float() => matmul_tolerance(op, inputs[0], inputs[1], want)?,
        _ => vec![Tol::Exact; n],
    })
}

// ---------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------

/// Nodes the constant-folding pass turns into constants (its rule, minus evaluation
/// failures, which fail the run anyway).
fn folded(def: &GraphDef) -> Vec<bool> {
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
fn taint(def: &GraphDef, executed: &[bool], seed: impl Fn(NodeId) -> bool) -> Vec<bool> {
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
fn pin(def: &GraphDef, pins: &[NodeId]) -> Result<GraphDef, String> {
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
fn unfold_constants(
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
struct Covered {
    /// Values compared op by op.
    local: usize,
    /// Fetched values compared for fusion.
    fused: usize,
    /// Fetched values compared bitwise end to end.
    end_to_end: usize,
    /// Both backends ran the graph (rather than both failing).
    ran: bool,
}

/// Check `def0` with feeds drawn from `seed` (see the module docs). `Err` describes the
/// first disagreement.
fn check_graph(def0: &GraphDef, seed: u64, fetch: Fetch, feeds: Feeds) -> Result<Covered, String> {
    check_graph_inner(def0, seed, fetch, feeds).map_err(|e| {
        format!("{e}\nfeeds {feeds:?} with seed {seed:#x}, fetch {fetch:?}, graph:\n{def0}")
    })
}

fn check_graph_inner(
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

// ---------------------------------------------------------------------------------------
// Random graphs
// ---------------------------------------------------------------------------------------

/// Cases per random test in CI, unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 3400;

/// [`CASES`] cases (or `PROPTEST_CASES`) from a fixed seed (or `PROPTEST_RNG_SEED`), no
/// regression files (failures become regression tests below instead).
fn config(seed: u64) -> ProptestConfig {
    let defaults = ProptestConfig::default();
    let rng_seed = if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        RngSeed::Fixed(seed)
    } else {
        defaults.rng_seed
    };
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(CASES),
        rng_seed,
        failure_persistence: None,
        ..defaults
    }
}

proptest! {
    #![proptest_config(config(0xD1FF_0001))]

    /// Random graphs of every op family, a random subset fetched (fusion).
    #[test]
    fn random_graphs_fused(def in arb_graph_ext(16), seed in any::<u64>()) {
        let r = check_graph(&def, seed, Fetch::Subset(seed.rotate_left(17)), Feeds::Random);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

proptest! {
    #![proptest_config(config(0xD1FF_0002))]

    /// Random graphs of every op family, every node fetched (every op on its own).
    #[test]
    fn random_graphs_every_node(def in arb_graph_ext(16), seed in any::<u64>()) {
        let r = check_graph(&def, seed, Fetch::All, Feeds::Random);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

proptest! {
    #![proptest_config(config(0xD1FF_0003))]

    /// Larger graphs from the general generator (state, random ops, groups), fused.
    #[test]
    fn random_graphs_general(def in arb_graph(24), seed in any::<u64>()) {
        let r = check_graph(&def, seed, Fetch::Subset(seed), Feeds::Random);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

// ---------------------------------------------------------------------------------------
// Every op and composite, by hand
// ---------------------------------------------------------------------------------------

/// An input of a table case: a placeholder of this type, or a constant.
enum In {
    P(DType, Vec<usize>),
    C(Value),
}

fn p(dtype: DType, shape: &[usize]) -> In {
    In::P(dtype, shape.to_vec())
}

fn c<T: flumen::Element>(shape: &[usize], data: Vec<T>) -> In {
    In::C(Value::from_vec(shape, data).expect("shape fits"))
}

/// A graph with the inputs and `op` on them.
fn op_graph(op: Op, inputs: Vec<In>) -> GraphDef {
    let mut def = GraphDef::new();
    let mut ids = Vec::new();
    for (k, input) in inputs.into_iter().enumerate() {
        let o = match input {
            In::P(dtype, shape) => Op::Placeholder { dtype, shape },
            In::C(v) => Op::Constant(v),
        };
        ids.push(
            def.add(o, &[], &[], format!("in{k}"), None)
                .expect("inputs"),
        );
    }
    let name = op.name();
    def.add(op, &ids, &[], "op".into(), None)
        .unwrap_or_else(|e| panic!("table case {name}: {e}"));
    def
}

/// Index of `op`'s variant (exhaustive: a new variant must get an index and cases).
fn variant_index(op: &Op) -> usize {
    match op {
        Op::Constant(_) => 0,
        Op::Placeholder { .. } => 1,
        Op::Variable { .. } => 2,
        Op::Read => 3,
        Op::Assign => 4,
        Op::AssignSlice(_) => 5,
        Op::Random { .. } => 6,
        Op::Categorical { .. } => 7,
        Op::Unary(_) => 8,
        Op::Binary(_) => 9,
        Op::Select => 10,
        Op::Cast(_) => 11,
        Op::Reduce { .. } => 12,
        Op::ArgReduce { .. } => 13,
        Op::Cumsum { .. } => 14,
        Op::MatMul { .. } => 15,
        Op::Reshape(_) => 16,
        Op::Transpose(_) => 17,
        Op::BroadcastTo(_) => 18,
        Op::Slice(_) => 19,
        Op::Concat { .. } => 20,
        Op::Pad { .. } => 21,
        Op::Tile(_) => 22,
        Op::Roll { .. } => 23,
        Op::Gather { .. } => 24,
        Op::ScatterAdd { .. } => 25,
        Op::TopK { .. } => 26,
        Op::ArgSort { .. } => 27,
        Op::NoOp => 28,
        Op::Composite(_) => 29,
        Op::Solve => 30,
        Op::Expm => 31,
    }
}

/// Number of [`Op`] variants ([`variant_index`] is `0..OP_VARIANTS`).
const OP_VARIANTS: usize = 32;

/// Index of a composite (exhaustive, like [`variant_index`]).
fn composite_index(c: &Composite) -> usize {
    match c {
        Composite::Softmax { .. } => 0,
        Composite::LogSoftmax { .. } => 1,
        Composite::SoftmaxCrossEntropy => 2,
        Composite::SparseSoftmaxCrossEntropy => 3,
        Composite::BinaryCrossEntropy { .. } => 4,
        Composite::MeanSquaredError => 5,
        Composite::LayerNorm { .. } => 6,
        Composite::L2Normalize { .. } => 7,
        Composite::Dropout { .. } => 8,
    }
}

/// Number of composites.
const COMPOSITES: usize = 9;

/// Index of a distribution (exhaustive).
fn distribution_index(d: &Distribution) -> usize {
    match d {
        Distribution::Normal { .. } => 0,
        Distribution::TruncatedNormal { .. } => 1,
        Distribution::Uniform { .. } => 2,
        Distribution::UniformInt { .. } => 3,
    }
}

const NUMERIC: [DType; 5] = [DType::F32, DType::F64, DType::I32, DType::I64, DType::U8];
const FLOATS: [DType; 2] = [DType::F32, DType::F64];

/// The table: one or more graphs for every op, composite, elementwise op, reduction and
/// distribution, over the dtypes each accepts.
fn op_table() -> Vec<GraphDef> {
    let mut t: Vec<GraphDef> = Vec::new();
    let s = |d: &[usize]| d.to_vec();
    // Elementwise.
    for u in UnaryOp::ALL {
        for d in DType::ALL.into_iter().filter(|d| u.dtypes().accepts(*d)) {
            t.push(op_graph(Op::Unary(u), vec![p(d, &[3, 5])]));
        }
    }
    for b in BinaryOp::ALL {
        for d in DType::ALL.into_iter().filter(|d| b.dtypes().accepts(*d)) {
            t.push(op_graph(Op::Binary(b), vec![p(d, &[3, 4]), p(d, &[4])]));
            t.push(op_graph(Op::Binary(b), vec![p(d, &[]), p(d, &[2, 1, 3])]));
        }
    }
    for d in DType::ALL {
        t.push(op_graph(
            Op::Select,
            vec![p(DType::Bool, &[3, 1]), p(d, &[3, 4]), p(d, &[4])],
        ));
        for to in DType::ALL {
            t.push(op_graph(Op::Cast(to), vec![p(d, &[2, 5])]));
        }
    }
    // Reductions.
    for op in ReduceOp::ALL {
        let dtypes = if op == ReduceOp::Mean {
            &FLOATS[..]
        } else {
            &NUMERIC[..]
        };
        for &d in dtypes {
            for (axes, keepdims) in [(vec![1], false), (vec![0], true), (vec![0, 1], false)] {
                let r = Op::Reduce { op, axes, keepdims };
                t.push(op_graph(r, vec![p(d, &[3, 7])]));
            }
            let none = Op::Reduce {
                op,
                axes: vec![],
                keepdims: false,
            };
            t.push(op_graph(none, vec![p(d, &[2, 3])]));
            let empty = Op::Reduce {
                op,
                axes: vec![1],
                keepdims: false,
            };
            t.push(op_graph(empty, vec![p(d, &[2, 0])]));
        }
    }
    for op in [ArgReduceOp::ArgMax, ArgReduceOp::ArgMin] {
        for d in NUMERIC {
            for (axis, dtype) in [(0, DType::I32), (1, DType::I64)] {
                t.push(op_graph(
                    Op::ArgReduce { op, axis, dtype },
                    vec![p(d, &[3, 4])],
                ));
            }
        }
    }
    for d in NUMERIC {
        for (exclusive, reverse) in [(false, false), (true, false), (false, true), (true, true)] {
            let op = Op::Cumsum {
                axis: 1,
                exclusive,
                reverse,
            };
            t.push(op_graph(op, vec![p(d, &[2, 5])]));
        }
    }
    // Linear algebra.
    for d in NUMERIC {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let op = Op::MatMul {
                transpose_a: ta,
                transpose_b: tb,
            };
            let a = if ta { s(&[2, 4, 3]) } else { s(&[2, 3, 4]) };
            let b = if tb { s(&[5, 4]) } else { s(&[4, 5]) };
            t.push(op_graph(op.clone(), vec![p(d, &a), p(d, &b)]));
            t.push(op_graph(op, vec![p(d, &[1, 7, 7]), p(d, &[2, 7, 7])]));
        }
        let empty_k = Op::MatMul {
            transpose_a: false,
            transpose_b: false,
        };
        t.push(op_graph(empty_k, vec![p(d, &[3, 0]), p(d, &[0, 2])]));
    }
    // solve and expm run as interpreter steps on the compiled backend: exact agreement.
    for d in FLOATS {
        t.push(op_graph(Op::Solve, vec![p(d, &[2, 3, 3]), p(d, &[3, 2])]));
        t.push(op_graph(Op::Expm, vec![p(d, &[2, 3, 3])]));
    }
    // Layout and indexing.
    for d in [DType::F32, DType::I64, DType::Bool, DType::U8] {
        let x = || p(d, &[3, 4]);
        t.push(op_graph(Op::Reshape(s(&[2, 6])), vec![x()]));
        t.push(op_graph(Op::Reshape(s(&[1, 3, 1, 4])), vec![x()]));
        t.push(op_graph(Op::Transpose(s(&[1, 0])), vec![x()]));
        t.push(op_graph(Op::BroadcastTo(s(&[2, 3, 4])), vec![x()]));
        let spec = SliceSpec {
            dims: vec![
                SliceDim {
                    start: 2,
                    step: -1,
                    len: 2,
                },
                SliceDim {
                    start: 0,
                    step: 2,
                    len: 2,
                },
            ],
        };
        t.push(op_graph(Op::Slice(spec), vec![x()]));
        t.push(op_graph(
            Op::Concat { axis: 1 },
            vec![x(), p(d, &[3, 1]), p(d, &[3, 2])],
        ));
        let value = match d {
            DType::Bool => Scalar::Bool(true),
            DType::F32 => Scalar::Float(-1.5),
            _ => Scalar::Int(7),
        };
        let pad = Op::Pad {
            paddings: vec![(1, 0), (2, 1)],
            value,
        };
        t.push(op_graph(pad, vec![x()]));
        t.push(op_graph(Op::Tile(s(&[2, 1])), vec![x()]));
        t.push(op_graph(Op::Roll { shift: -5, axis: 1 }, vec![x()]));
        let idx = c(&[2, 2], vec![2i64, 0, 1, 1]);
        let gather = Op::Gather {
            axis: 0,
            batch_dims: 0,
        };
        t.push(op_graph(gather, vec![x(), idx]));
        let batched = Op::Gather {
            axis: 1,
            batch_dims: 1,
        };
        t.push(op_graph(
            batched,
            vec![x(), c(&[3, 2], vec![3i32, 0, 1, 1, 2, 3])],
        ));
    }
    for d in NUMERIC {
        let op = Op::ScatterAdd {
            axis: 0,
            batch_dims: 0,
            dim: 3,
        };
        t.push(op_graph(
            op,
            vec![p(d, &[4, 2]), c(&[4], vec![2i64, 0, 2, 1])],
        ));
        t.push(op_graph(Op::TopK { k: 2 }, vec![p(d, &[3, 5])]));
        let sort = Op::ArgSort {
            axis: 0,
            descending: d == DType::F32,
        };
        t.push(op_graph(sort, vec![p(d, &[4, 3])]));
    }
    // Random.
    for (dist, dtypes) in [
        (
            Distribution::Normal {
                mean: 1.0,
                stddev: 2.0,
            },
            &FLOATS[..],
        ),
        (
            Distribution::TruncatedNormal {
                mean: 0.0,
                stddev: 0.5,
            },
            &FLOATS[..],
        ),
        (
            Distribution::Uniform {
                low: -1.0,
                high: 3.0,
            },
            &FLOATS[..],
        ),
        (
            Distribution::UniformInt { low: -3, high: 9 },
            &[DType::I32, DType::I64][..],
        ),
    ] {
        for &dtype in dtypes {
            let op = Op::Random {
                dist,
                dtype,
                shape: s(&[3, 4]),
                seed: 11,
            };
            t.push(op_graph(op, vec![]));
        }
    }
    for d in FLOATS {
        let op = Op::Categorical {
            num_samples: 5,
            dtype: DType::I64,
            seed: 5,
        };
        t.push(op_graph(op, vec![p(d, &[2, 3])]));
    }
    // Composites.
    for d in FLOATS {
        let x = || p(d, &[3, 4]);
        let comps = [
            (Composite::Softmax { axis: 0 }, vec![x()]),
            (Composite::LogSoftmax { axis: 1 }, vec![x()]),
            (Composite::SoftmaxCrossEntropy, vec![x(), x()]),
            (
                Composite::SparseSoftmaxCrossEntropy,
                vec![x(), c(&[3], vec![3i64, 0, 1])],
            ),
            (Composite::BinaryCrossEntropy { eps: 1e-7 }, vec![x(), x()]),
            (Composite::MeanSquaredError, vec![x(), x()]),
            (
                Composite::LayerNorm {
                    eps: 1e-5,
                    affine: true,
                },
                vec![x(), p(d, &[4]), p(d, &[4])],
            ),
            (
                Composite::LayerNorm {
                    eps: 1e-3,
                    affine: false,
                },
                vec![x()],
            ),
            (
                Composite::L2Normalize {
                    axis: 1,
                    eps: 1e-12,
                },
                vec![x()],
            ),
            (Composite::Dropout { rate: 0.25 }, vec![x(), x()]),
        ];
        for (comp, inputs) in comps {
            t.push(op_graph(Op::Composite(comp), inputs));
        }
    }
    t.extend(state_graphs());
    t.extend(fusion_graphs());
    t
}

/// Graphs written as text (the header is added).
fn parse_all(graphs: &[&str]) -> Vec<GraphDef> {
    graphs
        .iter()
        .map(|text| {
            format!("# flumen graph v1\n{text}")
                .parse()
                .unwrap_or_else(|e| panic!("{e}\n{text}"))
        })
        .collect()
}

/// Layout ops composed inside one kernel: nested strided slices, a transpose of a slice,
/// a broadcast of a slice, unit-axis reshapes, a reduction of composed views and a slice
/// assignment of a composed view (each checked with the last node fetched, so all fuse).
fn fusion_graphs() -> Vec<GraphDef> {
    parse_all(&[
        "%x = placeholder() {dtype=f32, shape=[9, 4]} : f32[9,4]
%s1 = slice(%x) {dims=[(1, 2, 4), (3, -1, 4)]} : f32[4,4]
%s2 = slice(%s1) {dims=[(1, 2, 2), (2, -2, 2)]} : f32[2,2]
%y = neg(%s2) : f32[2,2]",
        "%x = placeholder() {dtype=i32, shape=[5, 6]} : i32[5,6]
%s = slice(%x) {dims=[(4, -2, 3), (1, 2, 3)]} : i32[3,3]
%t = transpose(%s) {perm=[1, 0]} : i32[3,3]
%s2 = slice(%t) {dims=[(2, -1, 2), (1, 1, 2)]} : i32[2,2]
%b = broadcast_to(%s2) {shape=[3, 2, 2]} : i32[3,2,2]
%r = reshape(%b) {shape=[3, 1, 2, 2]} : i32[3,1,2,2]
%y = abs(%r) : i32[3,1,2,2]",
        "%x = placeholder() {dtype=f64, shape=[4, 1, 6]} : f64[4,1,6]
%r = reshape(%x) {shape=[4, 6]} : f64[4,6]
%s = slice(%r) {dims=[(3, -1, 4), (1, 2, 3)]} : f64[4,3]
%t = transpose(%s) {perm=[1, 0]} : f64[3,4]
%s2 = slice(%t) {dims=[(2, -2, 2), (1, 1, 3)]} : f64[2,3]
%m = reduce_sum(%s2) {axes=[1], keepdims=false} : f64[2]",
        "%init = constant() {value=f32[4,4] [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0]} : f32[4,4]
%v = variable(%init) {trainable=false} : f32[4,4]
%x = placeholder() {dtype=f32, shape=[5, 5]} : f32[5,5]
%s = slice(%x) {dims=[(4, -2, 2), (0, 3, 2)]} : f32[2,2]
%t = transpose(%s) {perm=[1, 0]} : f32[2,2]
%e = exp(%t) : f32[2,2]
%set = assign_slice(%v, %e) {dims=[(3, -2, 2), (1, 2, 2)]} : f32[4,4]",
    ])
}

/// Variables, reads, assigns, slice assigns and groups, in graphs written as text.
fn state_graphs() -> Vec<GraphDef> {
    let graphs = [
        // A training-step shape: read the variable, assign, read after, group.
        "%init = constant() {value=f32[2,3] [1.0, -2.0, 3.5, 0.0, -0.0, 7.25]} : f32[2,3]
%v = variable(%init) {trainable=true} : f32[2,3]
%x = placeholder() {dtype=f32, shape=[2,3]} : f32[2,3]
%y = mul(%v, %x) : f32[2,3]
%set = assign(%v, %y) : f32[2,3]
%after = read(%v) ^(%set) : f32[2,3]
%sum = add(%after, %v) : f32[2,3]
%train = no_op() ^(%set) : bool[]",
        // Slice assigns (one with negative steps) and a read in between.
        "%init = constant() {value=i32[3,4] [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]} : i32[3,4]
%v = variable(%init) {trainable=false} : i32[3,4]
%x = placeholder() {dtype=i32, shape=[2,2]} : i32[2,2]
%set1 = assign_slice(%v, %x) {dims=[(2, -1, 2), (3, -2, 2)]} : i32[3,4]
%mid = read(%v) ^(%set1) : i32[3,4]
%two = constant() {value=i32[] [2]} : i32[]
%x2 = mul(%x, %two) : i32[2,2]
%set2 = assign_slice(%v, %x2) {dims=[(0, 1, 2), (1, 1, 2)]} : i32[3,4]
%end = read(%v) ^(%set2) : i32[3,4]",
        // A variable initialised by a random op, updated from a reduction.
        "%init = random_normal() {mean=0.0, stddev=1.0, dtype=f64, shape=[4], seed=9} : f64[4]
%v = variable(%init) {trainable=true} : f64[4]
%x = placeholder() {dtype=f64, shape=[4]} : f64[4]
%s = reduce_sum(%x) {axes=[0], keepdims=true} : f64[1]
%upd = sub(%v, %s) : f64[4]
%set = assign(%v, %upd) : f64[4]
%group = no_op() ^(%set) : bool[]",
    ];
    parse_all(&graphs)
}

/// Every op variant, elementwise op, reduction, distribution and composite against the
/// interpreter, with ordinary and special feeds, unfused and fused.
#[test]
fn every_op_compiled_matches_interpreter() {
    let table = op_table();
    let mut variants = [false; OP_VARIANTS];
    let mut composites = [false; COMPOSITES];
    let mut distributions = [false; 4];
    let mut names = std::collections::BTreeSet::new();
    for def in &table {
        for n in def.nodes() {
            variants[variant_index(&n.op)] = true;
            names.insert(n.op.name());
            match &n.op {
                Op::Composite(c) => composites[composite_index(c)] = true,
                Op::Random { dist, .. } => distributions[distribution_index(dist)] = true,
                _ => {}
            }
        }
        for (k, (fetch, feeds)) in [
            (Fetch::All, Feeds::Random),
            (Fetch::Last, Feeds::Random),
            (Fetch::All, Feeds::Special),
            (Fetch::Last, Feeds::Special),
        ]
        .into_iter()
        .enumerate()
        {
            let covered = check_graph(def, 0x7AB1E + k as u64, fetch, feeds)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(covered.ran, "a table case fails on both backends:\n{def}");
        }
    }
    let missing: Vec<usize> = (0..OP_VARIANTS).filter(|&v| !variants[v]).collect();
    assert!(
        missing.is_empty(),
        "op variants without a case: {missing:?}"
    );
    assert!(composites.iter().all(|&c| c), "composites without a case");
    assert!(
        distributions.iter().all(|&d| d),
        "distributions without a case"
    );
    for u in UnaryOp::ALL {
        assert!(names.contains(u.name()), "{}", u.name());
    }
    for b in BinaryOp::ALL {
        assert!(names.contains(b.name()), "{}", b.name());
    }
    for r in ReduceOp::ALL {
        assert!(names.contains(r.name()), "{}", r.name());
    }
}

// ---------------------------------------------------------------------------------------
// Regressions (bugs the differential tests found) and a replay helper
// ---------------------------------------------------------------------------------------

/// Check a text-IR graph (the header is added) in every fetch mode with several seeds.
fn check_text(text: &str) {
    let def = &parse_all(&[text])[0];
    for seed in 0..4 {
        for fetch in [Fetch::All, Fetch::Last, Fetch::Subset(seed)] {
            for feeds in [Feeds::Random, Feeds::Special] {
                let c = check_graph(def, seed, fetch, feeds).unwrap_or_else(|e| panic!("{e}"));
                assert!(c.ran, "fails on both backends:\n{def}");
            }
        }
    }
}

/// f32 `sin`/`cos` took the f64 library's value on every lane of a vector as soon as one
/// lane was large or infinite, so an element's result depended on its neighbours (and on
/// fusion, which changes how elements are grouped): `cos(0.7227286)` was 0.75000370 next to
/// an `inf` and 0.75000376 elsewhere. Found as "fusion changed `mod`" in
/// `mod(add(cos(x), c), inf)`. Fixed in `codegen/ops.rs` (`trig_f32` selects per lane).
#[test]
fn regression_f32_trig_lanes_are_independent() {
    let x = 0.722_728_6_f32;
    let run = |values: Vec<f32>, cos: bool| -> Vec<f32> {
        let g = Graph::new();
        let n = values.len();
        let p = g.placeholder("x", DType::F32, &[n]).unwrap();
        let y = if cos { p.cos() } else { p.sin() }.unwrap();
        let mut sess = Session::with_backend(&g, Backend::Compiled);
        let v = Value::from_vec(&[n], values).unwrap();
        let out = sess.run(&[(&p, v)], &[&y]).unwrap();
        out[0].as_f32().unwrap().iter().copied().collect()
    };
    for cos in [true, false] {
        let alone = run(vec![x; 8], cos)[0];
        for big in [f32::INFINITY, f32::NEG_INFINITY, 1e6, -3e5, f32::NAN] {
            for lane in 0..8 {
                let mut v = vec![x; 8];
                v[lane] = big;
                let out = run(v, cos);
                for (i, y) in out.iter().enumerate() {
                    if i != lane {
                        assert_eq!(
                            y.to_bits(),
                            alone.to_bits(),
                            "cos={cos}, {big} in lane {lane}"
                        );
                    }
                }
            }
        }
    }
    check_text(
        "%x = placeholder() {dtype=f32, shape=[3, 6]} : f32[3,6]
%c = cos(%x) : f32[3,6]
%tiny = constant() {value=f32[1] [1.469368e-39]} : f32[1]
%a = add(%c, %tiny) : f32[3,6]
%inf = constant() {value=f32[1,1] [inf]} : f32[1,1]
%m = mod(%a, %inf) : f32[3,6]
%s = sin(%m) : f32[3,6]",
    );
}

/// Constant folding dropped the control inputs of a folded node's inputs: fetching
/// `select(c, k, k2)` where `k` waits for an assign no longer ran the assign (the
/// interpreter did). Fixed in `passes/constant_folding.rs` (folded nodes inherit them).
#[test]
fn regression_constant_folding_keeps_inherited_control_inputs() {
    let text = "%init = constant() {value=f64[3] [1.0, 2.0, 3.0]} : f64[3]
%v = variable(%init) {trainable=true} : f64[3]
%seven = constant() {value=f64[3] [7.0, 7.0, 7.0]} : f64[3]
%set = assign(%v, %seven) : f64[3]
%k = constant() {value=i32[3] [0, 0, 0]} ^(%set) : i32[3]
%k2 = constant() {value=i32[1,3] [-10, -1, 0]} : i32[1,3]
%c = constant() {value=bool[3] [false, false, true]} : bool[3]
%y = select(%c, %k, %k2) : i32[1,3]";
    let def = &parse_all(&[text])[0];
    let y = def.find("y").unwrap();
    for backend in [Backend::Compiled, Backend::Interpreter] {
        let (out, vars) = session_run(def, &[], &[y], backend).unwrap();
        assert_eq!(out[0].to_f64_vec(), vec![-10.0, -1.0, 0.0]);
        assert_eq!(
            vars["v"].to_f64_vec(),
            vec![7.0; 3],
            "{backend:?}: the assign ran"
        );
    }
    check_text(text);
}

/// A matrix product with an epilogue (the bias add and activation after it) and fewer than
/// four rows panicked in `clamp(4, m)` (min > max). Fixed in `runtime/src/exec/matmul.rs`.
#[test]
fn regression_matmul_epilogue_with_fewer_than_four_rows() {
    for m in 1..=5 {
        check_text(&format!(
            "%x = placeholder() {{dtype=f64, shape=[{m}, 1]}} : f64[{m},1]
%w = constant() {{value=f64[1,3] [NaN, 0.1, 0.1]}} : f64[1,3]
%mm = matmul(%x, %w) {{transpose_a=false, transpose_b=false}} : f64[{m},3]
%b = constant() {{value=f64[3] [NaN, 1.0, -2.0]}} : f64[3]
%add = add(%mm, %b) : f64[{m},3]
%y = sigmoid(%add) : f64[{m},3]"
        ));
    }
}

/// Replay one failing check: `REPLAY_GRAPH` (a file with the printed graph),
/// `REPLAY_SEED` (the feed seed, hex as printed), `REPLAY_FETCH` (`all`, `last` or the
/// subset seed), `REPLAY_FEEDS` (`special`, default random):
///
/// ```text
/// REPLAY_GRAPH=g.txt REPLAY_SEED=0x3506f0114f037f74 REPLAY_FETCH=16150644966587656717 \
///     cargo test --test differential replay -- --ignored --nocapture
/// ```
#[test]
#[ignore = "a tool: replays a failure described by environment variables"]
fn replay() {
    let env = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("set {k}"));
    let text = std::fs::read_to_string(env("REPLAY_GRAPH")).expect("readable graph file");
    let def: GraphDef = text.parse().expect("a graph in the text IR");
    let seed =
        u64::from_str_radix(env("REPLAY_SEED").trim_start_matches("0x"), 16).expect("a hex seed");
    let fetch = match env("REPLAY_FETCH").as_str() {
        "all" => Fetch::All,
        "last" => Fetch::Last,
        s => Fetch::Subset(s.parse().expect("a subset seed")),
    };
    let feeds = match std::env::var("REPLAY_FEEDS").as_deref() {
        Ok("special") => Feeds::Special,
        _ => Feeds::Random,
    };
    match check_graph(&def, seed, fetch, feeds) {
        Ok(c) => eprintln!("passes: {c:?}"),
        Err(e) => panic!("{e}"),
    }
}
