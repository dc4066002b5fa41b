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

mod check;
mod regressions;
mod table;
mod tolerance;

use check::*;
use table::*;
use tolerance::*;

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
