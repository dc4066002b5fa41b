//! The bugs the differential tests found, each with its minimal graph, and a replay helper.

use super::*;

// ---------------------------------------------------------------------------------------
// Regressions (bugs the differential tests found) and a replay helper
// ---------------------------------------------------------------------------------------

/// Check a text-IR graph (the header is added) in every fetch mode with several seeds.
pub(crate) fn check_text(text: &str) {
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
pub(crate) fn regression_f32_trig_lanes_are_independent() {
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
pub(crate) fn regression_constant_folding_keeps_inherited_control_inputs() {
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
pub(crate) fn regression_matmul_epilogue_with_fewer_than_four_rows() {
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
pub(crate) fn replay() {
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
