//! The text IR: exact round trips of random graphs, specific parse errors (line, column,
//! message), a parser that never panics, model files, and a snapshot of a small network.

use flumen_frontend::op::attrs::{AttrValue, attrs};
use flumen_frontend::op::{Distribution, Op};
use flumen_frontend::testing::{STEP_KINDS, arb_graph, graph_from_steps};
use flumen_frontend::{DType, Graph, GraphDef, GraphError, Scalar, Value};
use ndarray::array;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use std::collections::BTreeSet;

fn parse(text: &str) -> GraphDef {
    text.parse()
        .unwrap_or_else(|e| panic!("{e}\n--- text ---\n{text}"))
}

/// The line, column and message of the parse error `text` must give.
fn parse_err(text: &str) -> (usize, usize, String) {
    match text.parse::<GraphDef>() {
        Err(GraphError::Parse { line, column, msg }) => (line, column, msg),
        other => panic!("expected a parse error for {text:?}, got {other:?}"),
    }
}

fn assert_err(text: &str, line: usize, column: usize, parts: &[&str]) {
    let (l, c, msg) = parse_err(text);
    assert_eq!((l, c), (line, column), "position of `{msg}` in {text:?}");
    for p in parts {
        assert!(msg.contains(p), "message `{msg}` should mention `{p}`");
    }
}

proptest! {
    #![proptest_config(Config { cases: 300, ..Config::default() })]

    #[test]
    fn random_graphs_round_trip(g in arb_graph(24)) {
        let text = g.to_string();
        let back: GraphDef = text.parse().map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&back, &g);
        prop_assert_eq!(back.to_string(), text);
    }
}

/// The generator covers the op table: over a few hundred graphs every op family appears.
#[test]
fn generator_covers_many_ops() {
    let mut runner = TestRunner::deterministic();
    let strategy = arb_graph(24);
    let mut seen = BTreeSet::new();
    let (mut zero_size, mut nan, mut controls) = (false, false, false);
    for _ in 0..300 {
        let g = strategy.new_tree(&mut runner).unwrap().current();
        for n in g.nodes() {
            seen.insert(n.op.name());
            zero_size |= n.ty.shape.contains(&0);
            controls |= !n.control_inputs.is_empty() && !matches!(n.op, Op::NoOp);
            if let Op::Constant(v) = &n.op {
                nan |= v.to_f64_vec().iter().any(|x| x.is_nan());
            }
        }
    }
    let wanted = [
        "placeholder",
        "constant",
        "variable",
        "read",
        "assign",
        "assign_slice",
        "random_normal",
        "truncated_normal",
        "random_uniform",
        "random_int",
        "categorical",
        "exp",
        "relu",
        "logical_not",
        "add",
        "mul",
        "less",
        "logical_and",
        "select",
        "cast",
        "reduce_sum",
        "reduce_mean",
        "reduce_max",
        "argmax",
        "argmin",
        "cumsum",
        "matmul",
        "reshape",
        "transpose",
        "broadcast_to",
        "slice",
        "concat",
        "pad",
        "tile",
        "roll",
        "gather",
        "scatter_add",
        "top_k",
        "argsort",
        "softmax",
        "no_op",
    ];
    let missing: Vec<_> = wanted.iter().filter(|w| !seen.contains(*w)).collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
    assert!(zero_size && nan && controls);
}

#[test]
fn generator_is_deterministic() {
    let steps: Vec<(u8, u64)> = (0..60).map(|i| (i % STEP_KINDS, i as u64 * 7919)).collect();
    let a = graph_from_steps(&steps, 40);
    assert_eq!(a, graph_from_steps(&steps, 40));
    assert!(a.len() <= 40 && a.len() > 10, "{} nodes", a.len());
    assert_eq!(graph_from_steps(&steps, 5).len(), 5);
}

#[test]
fn example_from_the_docs_parses() {
    let text = "\
# flumen graph v1
%x = placeholder() {dtype=f32, shape=[2, 2]} : f32[2,2]
%W/initial_value = constant() {value=f32[2,2] [1.0, 2.0, 3.0, 4.0]} : f32[2,2]
%W = variable(%W/initial_value) {trainable=true} : f32[2,2]
%layer1/matmul = matmul(%x, %W) {transpose_a=false, transpose_b=false} : f32[2,2]
%assign = assign(%W, %layer1/matmul) : f32[2,2]
%train = no_op() ^(%assign) : bool[]
";
    let g = parse(text);
    assert_eq!(g.len(), 6);
    assert_eq!(g.to_string(), text);
    let train = g.node(g.find("train").unwrap());
    assert_eq!(train.control_inputs, vec![g.find("assign").unwrap()]);
}

#[test]
fn comments_blank_lines_and_empty_lists_are_accepted() {
    let g = parse(
        "\n  # a comment\r\n%x = placeholder() {dtype=i64, shape=[]} : i64[]   # trailing\n\n\
         %g = no_op() {} ^() : bool[]\n",
    );
    assert_eq!(g.len(), 2);
    assert_eq!(parse("").len(), 0);
    assert_eq!(parse(&GraphDef::new().to_string()), GraphDef::new());
}

/// Seeds are u64 stored as i64; every bit survives.
#[test]
fn seeds_round_trip() {
    let mut g = GraphDef::new();
    for (i, seed) in [0, u64::MAX, 1 << 63, 12345].into_iter().enumerate() {
        let op = Op::Random {
            dist: Distribution::UniformInt {
                low: i64::MIN,
                high: i64::MAX,
            },
            dtype: DType::I64,
            shape: vec![2],
            seed,
        };
        g.add(op, &[], &[], format!("r{i}"), None).unwrap();
    }
    let text = g.to_string();
    assert!(text.contains("seed=-1}"), "{text}");
    assert_eq!(parse(&text), g);
}

/// Float attributes and elements keep their bits, NaN payloads and signs included.
#[test]
fn special_floats_round_trip_bit_exactly() {
    let odd32 = f32::from_bits(0x7fc0_0001);
    let odd64 = f64::from_bits(0xfff8_0000_0000_0007);
    let g = Graph::new();
    let c = g
        .constant(array![
            odd32,
            -f32::NAN,
            f32::NAN,
            -0.0,
            f32::INFINITY,
            1e-45
        ])
        .unwrap();
    g.constant(array![
        odd64,
        f64::NAN,
        -0.0,
        f64::NEG_INFINITY,
        5e-324,
        0.1
    ])
    .unwrap();
    c.pad(&[(1, 0)], Scalar::Float(odd64)).unwrap();
    c.pad(&[(0, 1)], Scalar::Float(-0.0)).unwrap();
    let def = g.def();
    let text = def.to_string();
    assert!(
        text.contains("nan:0x7fc00001, nan:0xffc00000, NaN, -0.0, inf, 1e-45"),
        "{text}"
    );
    assert!(text.contains("value=nan:0xfff8000000000007}"), "{text}");
    let back = parse(&text);
    assert_eq!(back.to_string(), text);
    // `Op`'s derived `PartialEq` says NaN != NaN for float attributes; compare their bits.
    for (a, b) in def.nodes().iter().zip(back.nodes()) {
        for ((ka, va), (kb, vb)) in attrs(&a.op).into_iter().zip(attrs(&b.op)) {
            assert_eq!(ka, kb);
            match (va, vb) {
                (AttrValue::Float(x), AttrValue::Float(y)) => assert_eq!(x.to_bits(), y.to_bits()),
                (AttrValue::Tensor(x), AttrValue::Tensor(y)) => assert!(x.bit_eq(&y)),
                (x, y) => assert_eq!(x, y),
            }
        }
    }
}

/// `[]` is an empty list of whatever kind the op expects (pairs for `pad`, triples for
/// `slice`): ops on scalars round-trip.
#[test]
fn empty_lists_of_tuples_round_trip() {
    let g = Graph::new();
    let x = g.scalar(1.5, DType::F32).unwrap();
    x.pad(&[], 0.0).unwrap();
    x.tile(&[]).unwrap();
    let v = g.variable("v", Value::scalar(2i32)).unwrap();
    v.slice_assign(ndarray::s![], 3i64).unwrap();
    let def = g.def();
    let text = def.to_string();
    assert!(
        text.contains("{paddings=[], value=0.0}") && text.contains("{dims=[]}"),
        "{text}"
    );
    assert_eq!(parse(&text), def);
}

#[test]
fn save_and_load() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[3]).unwrap();
    x.mul(2.0).unwrap();
    let path = std::env::temp_dir().join(format!("flumen-text-{}.flm", std::process::id()));
    g.save(&path).unwrap();
    let back = Graph::load(&path).unwrap();
    assert_eq!(back.def(), g.def());
    assert_eq!(GraphDef::load(&path).unwrap(), g.def());
    std::fs::remove_file(&path).unwrap();
    match GraphDef::load(&path) {
        Err(GraphError::Io { path: p, .. }) => assert!(p.contains("flumen-text-"), "{p}"),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    let dir = std::env::temp_dir()
        .join("flumen-no-such-dir")
        .join("g.flm");
    assert!(matches!(g.save(&dir), Err(GraphError::Io { .. })));
}

const X: &str = "%x = placeholder() {dtype=f32, shape=[2, 3]} : f32[2,3]\n";

#[test]
fn error_unknown_op() {
    assert_err(
        "%y = frobnicate() : f32[]",
        1,
        6,
        &["unknown op `frobnicate`"],
    );
}

#[test]
fn error_unknown_reference() {
    assert_err(
        &format!("{X}%y = relu(%x) : f32[2,3]\n%z = add(%y, %foo) : f32[2,3]"),
        3,
        14,
        &["unknown node reference `%foo`"],
    );
    // A node cannot refer to itself or to a later line.
    assert_err("%a = relu(%a) : f32[]", 1, 11, &["`%a`"]);
}

#[test]
fn error_attributes() {
    assert_err(
        "%x = placeholder() {dtype=f32} : f32[2]",
        1,
        6,
        &["placeholder needs attribute `shape`"],
    );
    assert_err(
        "%x = placeholder() {dtype=f32, shape=[2], color=1} : f32[2]",
        1,
        43,
        &["placeholder has no attribute `color`"],
    );
    assert_err(
        "%x = placeholder() {dtype=f32, shape=true} : f32[2]",
        1,
        32,
        &["attribute `shape` must be a list of integers"],
    );
    assert_err(
        "%x = placeholder() {dtype=f32, dtype=f64, shape=[]} : f32[]",
        1,
        32,
        &["duplicate attribute `dtype`"],
    );
    assert_err(
        "%x = placeholder() {dtype=f16, shape=[]} : f32[]",
        1,
        27,
        &["expected an attribute value", "`f16`"],
    );
}

#[test]
fn error_duplicate_name() {
    assert_err(
        &format!("# header\n{X}\n%x = relu(%x) : f32[2,3]"),
        4,
        1,
        &["duplicate node name `%x`", "first defined on line 2"],
    );
}

#[test]
fn error_type_mismatch() {
    assert_err(
        "%x = placeholder() {dtype=f32, shape=[2, 3]} : f32[3,2]",
        1,
        48,
        &["`%x`", "declared f32[3,2]", "infers f32[2,3]"],
    );
    assert_err(
        &format!("{X}%y = relu(%x) : f64[2,3]"),
        2,
        17,
        &["f64[2,3]", "f32[2,3]"],
    );
}

#[test]
fn error_shape_rule() {
    assert_err(
        &format!("{X}%y = matmul(%x, %x) {{transpose_a=false, transpose_b=false}} : f32[2,2]"),
        2,
        6,
        &["matmul `y`", "inner dimensions"],
    );
    assert_err(
        &format!("{X}%y = add(%x) : f32[2,3]"),
        2,
        6,
        &["wrong number of inputs: got 1, expected 2"],
    );
    assert_err(
        &format!("{X}%y = relu(%x, %x) : f32[2,3]"),
        2,
        6,
        &["got 2, expected 1"],
    );
    assert_err(
        &format!("{X}%y = assign(%x, %x) : f32[2,3]"),
        2,
        6,
        &["must be a variable"],
    );
}

#[test]
fn error_bad_numbers() {
    assert_err(
        "%x = placeholder() {dtype=f32, shape=[2.5]} : f32[2]",
        1,
        39,
        &["bad number `2.5`"],
    );
    assert_err(
        "%r = random_normal() {mean=0.0, stddev=1.0, dtype=f32, shape=[], seed=99999999999999999999} : f32[]",
        1,
        71,
        &["bad number `99999999999999999999`", "too large"],
    );
    assert_err(
        "%r = random_normal() {mean=1.5.5, stddev=1.0, dtype=f32, shape=[], seed=0} : f32[]",
        1,
        28,
        &["bad f64 number `1.5.5`"],
    );
    assert_err(
        "%c = constant() {value=i32[2] [1, 3000000000]} : i32[2]",
        1,
        35,
        &["bad i32 element `3000000000`"],
    );
    assert_err(
        "%c = constant() {value=f32[1] [nan:0x3f800000]} : f32[1]",
        1,
        32,
        &["not the bit pattern of an f32 NaN"],
    );
    assert_err(
        "%x = no_op() : bool[-1]",
        1,
        21,
        &["bad dimension `-1`: must be >= 0"],
    );
    assert_err(
        "%c = constant() {value=u8[-2] []} : u8[0]",
        1,
        27,
        &["bad dimension `-2`"],
    );
}

#[test]
fn error_tensor_literal_size() {
    assert_err(
        "%c = constant() {value=f32[2,2] [1.0, 2.0, 3.0]} : f32[2,2]",
        1,
        33,
        &["shape [2, 2] needs 4 elements, found 3"],
    );
    assert_err(
        "%c = constant() {value=bool[1] [yes]} : bool[1]",
        1,
        33,
        &["bad bool `yes`"],
    );
}

#[test]
fn error_truncated_and_malformed_lines() {
    let line = "%x = placeholder() {dtype=f32";
    assert_err(line, 1, line.len() + 1, &["truncated line", "`,` or `}`"]);
    assert_err(
        "%x = placeholder() {dtype=f32, shape=[]}",
        1,
        41,
        &["truncated line", "`:`"],
    );
    assert_err("%x =", 1, 5, &["truncated line", "op name"]);
    assert_err(
        "x = no_op() : bool[]",
        1,
        1,
        &["expected a node definition", "found `x`"],
    );
    assert_err(
        "%x = no_op() : bool[] extra",
        1,
        23,
        &["unexpected `extra`"],
    );
    assert_err(
        "%x = no_op() : bool[] ; ",
        1,
        23,
        &["unexpected character ';'"],
    );
    assert_err(
        "%x = no_op(%) : bool[]",
        1,
        12,
        &["expected a node name after `%`"],
    );
    assert_err(
        "%a//b = no_op() : bool[]",
        1,
        1,
        &["invalid node name `%a//b`"],
    );
    assert_err(
        "%p = pad() {paddings=[(1, 2), (3)], value=0} : f32[]",
        1,
        23,
        &["all pairs or all triples"],
    );
}

/// Sizes whose shape-rule arithmetic would overflow are rejected, not panicked on.
#[test]
fn huge_sizes_are_errors() {
    let big = "2147483647";
    let cases = [
        format!(
            "%x = placeholder() {{dtype=u8, shape=[{big}, {big}, {big}]}} : u8[{big},{big},{big}]"
        ),
        format!(
            "%x = placeholder() {{dtype=u8, shape=[{big}]}} : u8[{big}]\n\
             %y = reshape(%x) {{shape=[{big}, {big}, {big}, 0]}} : u8[0]"
        ),
        "%x = placeholder() {dtype=u8, shape=[4294967296]} : u8[4294967296]".to_string(),
        format!(
            "%x = placeholder() {{dtype=u8, shape=[{big}]}} : u8[{big}]\n\
             %y = slice(%x) {{dims=[(1, -{big}, {big})]}} : u8[{big}]"
        ),
        format!(
            "%x = placeholder() {{dtype=u8, shape=[{big}]}} : u8[{big}]\n\
             %y = tile(%x) {{multiples=[{big}]}} : u8[1]\n\
             %z = pad(%x) {{paddings=[({big}, {big})], value=0}} : u8[1]\n\
             %w = concat(%x, %x, %x, %x) {{axis=0}} : u8[1]"
        ),
    ];
    for text in &cases {
        parse_err(text);
    }
}

/// A 2-layer dense network with scopes, variables, an update and a train group.
fn dense_net() -> Graph {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2, 3]).unwrap();
    let h = {
        let _s = g.scope("layer1");
        let w = g
            .variable("W", array![[0.5f32, -1.0], [0.25, 2.0], [1.0, 0.0]])
            .unwrap();
        let b = g.variable("b", array![0.0f32, 0.1]).unwrap();
        (x.matmul(&w).unwrap() + &b).unwrap().relu().unwrap()
    };
    let (y, w2) = {
        let _s = g.scope("layer2");
        let w = g.variable("W", array![[1.0f32], [-0.5]]).unwrap();
        let b = g.variable("b", array![0.0f32]).unwrap();
        ((h.matmul(&w).unwrap() + &b).unwrap(), w)
    };
    let loss = y.square().unwrap().mean_all().unwrap();
    let step = g
        .variable_with("global_step", Value::scalar(0i64), false)
        .unwrap();
    let inc = step.assign_add(1i64).unwrap();
    let decay = {
        let _s = g.scope("layer2");
        w2.assign(w2.mul(0.5).unwrap()).unwrap()
    };
    let _c = g.control_dependencies(&[&loss]).unwrap();
    g.group("train", &[&inc, &decay]).unwrap();
    g
}

#[test]
fn dense_net_snapshot() {
    let g = dense_net();
    let text = g.def().to_string();
    insta::assert_snapshot!("dense_net_text", text);
    assert_eq!(parse(&text), g.def());
}

proptest! {
    #![proptest_config(Config { cases: 200, ..Config::default() })]

    /// Arbitrary strings: the parser returns, whatever the input.
    #[test]
    fn parser_never_panics_on_random_strings(s in any::<String>()) {
        let _ = s.parse::<GraphDef>();
    }

    /// Strings over the format's own alphabet, which get deeper into the grammar.
    #[test]
    fn parser_never_panics_on_token_soup(
        s in "(%[a-z/]{0,3}|[=(){}\\[\\],^:#\n ]|f32|i64|bool|placeholder|constant|add|reshape|dtype|shape|value|-?[0-9]{1,12}|nan:0x[0-9a-f]{0,9}|inf|NaN|1e-7){0,40}"
    ) {
        let _ = s.parse::<GraphDef>();
    }

    /// Valid graph text with random edits.
    #[test]
    fn parser_never_panics_on_mutated_graphs(
        g in arb_graph(12),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0..6u8, any::<prop::sample::Index>()), 1..5),
    ) {
        let mut text: Vec<char> = g.to_string().chars().collect();
        for (at, kind, pick) in edits {
            mutate(&mut text, at, kind, pick);
        }
        let text: String = text.into_iter().collect();
        let _ = text.parse::<GraphDef>();
    }
}

/// Snippets spliced into valid text: syntax, huge and edge-case numbers, odd characters.
const SNIPPETS: &[&str] = &[
    "%",
    "%x",
    "%W/initial_value",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "^(",
    ",",
    "=",
    ":",
    "\n",
    "#",
    " ",
    "0",
    "-1",
    "2147483647",
    "2147483648",
    "4294967296",
    "99999999999999999999",
    "-9223372036854775808",
    "1e309",
    "-0.0",
    "inf",
    "NaN",
    "nan:0x",
    "nan:0xffffffffff",
    "nan:0x7fc00001",
    "f32[3] [1.0]",
    "bool[]",
    "[(1, 2)]",
    "[(0, -2147483647, 2147483647)]",
    "[]",
    "[2147483647, 2147483647, 2147483647]",
    "é",
    "\u{0}",
    "\r",
    "true",
];

fn mutate(text: &mut Vec<char>, at: prop::sample::Index, kind: u8, pick: prop::sample::Index) {
    let pos = if text.is_empty() {
        0
    } else {
        at.index(text.len() + 1)
    };
    let snippet: Vec<char> = pick.get(SNIPPETS).chars().collect();
    let line_bounds = |text: &[char], pos: usize| {
        let start = text[..pos]
            .iter()
            .rposition(|&c| c == '\n')
            .map_or(0, |i| i + 1);
        let end = text[pos..]
            .iter()
            .position(|&c| c == '\n')
            .map_or(text.len(), |i| pos + i + 1);
        (start, end)
    };
    match kind {
        0 => {
            let end = (pos + 1 + pick.index(8)).min(text.len());
            text.drain(pos..end);
        }
        1 => {
            text.splice(pos..pos, snippet);
        }
        2 => {
            let end = (pos + 1).min(text.len());
            text.splice(pos..end, snippet);
        }
        3 => {
            let (s, e) = line_bounds(text, pos);
            let line: Vec<char> = text[s..e].to_vec();
            text.splice(e..e, line);
        }
        4 => {
            // Replace a run of digits with a large number.
            if let Some(d) = text[pos..].iter().position(|c| c.is_ascii_digit()) {
                let s = pos + d;
                let e = text[s..]
                    .iter()
                    .position(|c| !c.is_ascii_digit())
                    .map_or(text.len(), |i| s + i);
                text.splice(
                    s..e,
                    pick.get(&["2147483647", "4294967296", "0", "18446744073709551615"])
                        .chars(),
                );
            }
        }
        _ => text.truncate(pos),
    }
}

/// Render `dot` with Graphviz's `dot -Tsvg` and assert it succeeds; skipped (with a message)
/// when Graphviz is not installed.
fn check_with_graphviz(dot: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("skipping the Graphviz check: the `dot` binary is not installed");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dot.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dot -Tsvg failed: {stderr}\n{dot}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
}

#[test]
fn dense_net_dot_snapshot() {
    let dot = dense_net().def().to_dot();
    insta::assert_snapshot!("dense_net_dot", dot);
    // Scopes are clusters, data edges carry the producer's type, control edges are dashed.
    assert!(dot.contains("subgraph \"cluster_layer1\" {"), "{dot}");
    assert!(
        dot.contains("\"x\" -> \"layer1/matmul\" [label=\"f32[2,3]\"];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"assign\" -> \"train\" [style=dashed"),
        "{dot}"
    );
    check_with_graphviz(&dot);
}

#[test]
fn dot_nests_scopes_and_escapes() {
    let g = Graph::new();
    {
        let _a = g.scope("a");
        let _b = g.scope("b.c-d");
        g.placeholder("x", DType::Bool, &[0]).unwrap();
    }
    g.constant(Value::from(vec![1.0f64; 9])).unwrap();
    let dot = g.def().to_dot();
    let outer = dot.find("subgraph \"cluster_a\"").unwrap();
    let inner = dot.find("subgraph \"cluster_a/b.c-d\"").unwrap();
    assert!(outer < inner, "{dot}");
    assert!(dot.contains("label=\"b.c-d\""), "{dot}");
    assert!(
        dot.contains("\"a/b.c-d/x\" [label=\"x\\nplaceholder\\ndtype=bool\\nshape=[0]\""),
        "{dot}"
    );
    // A large constant shows its type, not its elements.
    assert!(dot.contains("value=f64[9]\""), "{dot}");
    check_with_graphviz(&dot);
}

proptest! {
    #![proptest_config(Config { cases: 16, ..Config::default() })]

    #[test]
    fn random_graphs_render_with_graphviz(g in arb_graph(24)) {
        check_with_graphviz(&g.to_dot());
    }
}
