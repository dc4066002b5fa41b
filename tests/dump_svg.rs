//! `flumen dump` pictures: SVG through Graphviz at the source, optimized and compiled
//! stages (scopes as clusters, shapes on edges, gradients and variables styled apart, the
//! compiled view's outlines matching the compiler's own report), format inference from
//! `-o`, and clear errors for bad fetches and a missing Graphviz. The SVG checks skip with a
//! message when `dot` is not installed (`apt-get install graphviz`).

use flumen::nn::Reduction;
use flumen::train::{Adam, Optimizer};
use flumen::{DType, Graph, GraphDef, NodeId};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flumen-dump-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A dense layer with a bias and ReLU under `dense/`, a softmax cross-entropy under `loss/`,
/// its gradients and one Adam step; returns the graph and the names of the loss and the
/// train op.
fn model() -> (Graph, String, String) {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[8, 4]).unwrap();
    let y = g.placeholder("y", DType::I64, &[8]).unwrap();
    let logits = {
        let _s = g.scope("dense");
        let w = g
            .variable("W", ndarray::Array2::<f32>::from_elem((4, 3), 0.1))
            .unwrap();
        let b = g.variable("b", ndarray::arr1(&[0.0f32, 0.1, 0.2])).unwrap();
        (x.matmul(&w).unwrap() + &b).unwrap().relu().unwrap()
    };
    let loss = {
        let _s = g.scope("loss");
        let one_hot = y.one_hot(3, DType::F32).unwrap();
        logits
            .softmax_cross_entropy(&one_hot, None, Reduction::SumOverBatchSize)
            .unwrap()
    };
    let train = Adam::default().minimize(&loss, None).unwrap();
    let (l, t) = (loss.name(), train.name());
    (g, l, t)
}

fn flumen(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flumen"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "flumen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn err(out: Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn have_dot() -> bool {
    let found = Command::new("dot").arg("-V").output().is_ok();
    if !found {
        eprintln!(
            "skipping the SVG checks: Graphviz `dot` is not installed (apt-get install graphviz)"
        );
    }
    found
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `(label, nodes)` of each outline (`subgraph "cluster_:<n>"`) in DOT text.
fn outlines(dot: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut lines = dot.lines();
    while let Some(line) = lines.next() {
        if !line.trim_start().starts_with("subgraph \"cluster_:") || line.contains(":legend") {
            continue;
        }
        let label_line = lines.next().unwrap();
        let label = label_line.split('"').nth(1).unwrap().to_string();
        let mut nodes = Vec::new();
        for l in lines.by_ref() {
            let l = l.trim();
            if l == "}" {
                break;
            }
            nodes.push(l.split('"').nth(1).unwrap().to_string());
        }
        out.push((label, nodes));
    }
    out
}

#[test]
fn svg_shows_scopes_shapes_gradients_and_variables() {
    let dir = temp_dir("svg");
    let (g, _, _) = model();
    let model_path = dir.join("model.flumen");
    g.save(&model_path).unwrap();

    // DOT needs no Graphviz: scopes, shapes, gradient styling, legend.
    let dot = ok(flumen(&["dump", p(&model_path), "--format", "dot"], &[]));
    assert!(dot.contains("subgraph \"cluster_dense\""), "{dot}");
    assert!(dot.contains("subgraph \"cluster_gradients\""));
    assert!(
        dot.contains("label=\"f32[4,3]\""),
        "the weight's shape on its edges"
    );
    assert!(dot.contains("\"legend:variable\""));
    assert!(dot.contains("\"dense/W\" [label=\"W\\nvariable"));
    let gradient_nodes = dot
        .lines()
        .filter(|l| l.trim_start().starts_with("\"gradients/") && l.contains("#fed7aa"))
        .count();
    assert!(
        gradient_nodes > 3,
        "gradient ops are orange ({gradient_nodes})"
    );
    assert!(!dot.contains("\"dense/matmul\" [label=\"matmul\", shape=box, style=\"rounded,filled\", fillcolor=\"#fed7aa\""));

    if !have_dot() {
        return;
    }
    let svg_path = dir.join("model.svg");
    // The format follows the extension of -o.
    ok(flumen(&["dump", p(&model_path), "-o", p(&svg_path)], &[]));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    for needle in [
        "<title>cluster_dense</title>",
        "<title>cluster_loss</title>",
        "<title>cluster_gradients</title>",
        ">dense</text>",
        ">f32[4,3]</text>",
        ">f32[8,3]</text>",
        ">i64[8]</text>",
        "fill=\"#fde68a\"", // variables
        "fill=\"#fed7aa\"", // gradient ops
        "stroke=\"#c2410c\"",
    ] {
        assert!(svg.contains(needle), "the SVG lacks {needle}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn compiled_view_outlines_match_the_compile_report() {
    let dir = temp_dir("compiled");
    let (g, loss, train) = model();
    let model_path = dir.join("model.flumen");
    g.save(&model_path).unwrap();
    let fetch = format!("{loss},{train}");

    // The compiler's own report for the same fetches and feeds.
    let def = g.def();
    let id = |n: &str| def.find(n).unwrap();
    let feeds: Vec<NodeId> = vec![id("x"), id("y")];
    let (_, report) = flumen::compiler::compile(&def, &feeds, &[id(&loss), id(&train)]).unwrap();

    let dot = ok(flumen(
        &[
            "dump",
            p(&model_path),
            "--stage",
            "compiled",
            "--format",
            "dot",
            "--fetch",
            &fetch,
        ],
        &[],
    ));
    let caption = format!(
        "{} steps, {} fused kernels ({} distinct), {} GEMM epilogues, {} interpreter steps",
        report.steps,
        report.kernels,
        report.compiled_kernels,
        report.epilogues,
        report.interpreted.len()
    );
    assert!(dot.contains(&caption), "caption {caption} missing:\n{dot}");
    let boxes = outlines(&dot);
    let count = |what: &str| boxes.iter().filter(|(l, _)| l.contains(what)).count();
    assert_eq!(count("+ epilogue"), report.epilogues);
    assert_eq!(count("kernel ("), report.kernels - report.epilogues);
    assert_eq!(count("interpreter"), report.interpreted.len());
    assert!(
        count("GEMM") >= 2,
        "forward and backward products: {boxes:?}"
    );
    // Every GEMM box starts with its product; an epilogue adds the nodes fused after it.
    for (label, nodes) in boxes.iter().filter(|(l, _)| l.contains("GEMM")) {
        assert!(nodes[0].contains("matmul"), "{label}: {nodes:?}");
        assert_eq!(
            label.contains("epilogue"),
            nodes.len() > 1,
            "{label}: {nodes:?}"
        );
    }
    // The forward product takes the bias add as its epilogue.
    assert!(
        boxes
            .iter()
            .any(|(l, n)| l.contains("epilogue") && n == &["dense/matmul", "dense/add"]),
        "{boxes:?}"
    );
    // Fusion happened: some kernel holds several ops, and its inner edges are drawn blue.
    assert!(
        boxes
            .iter()
            .any(|(l, n)| l.contains("kernel") && n.len() >= 3)
    );
    assert!(dot.contains("color=\"#2563eb\", penwidth=2"));
    // No node is in two boxes.
    let mut all: Vec<&String> = boxes.iter().flat_map(|(_, n)| n).collect();
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total);

    // The text listing: one line per step, kernels with their IR.
    let text = ok(flumen(
        &[
            "dump",
            p(&model_path),
            "--stage",
            "compiled",
            "--fetch",
            &fetch,
        ],
        &[],
    ));
    assert_eq!(
        text.lines().filter(|l| l.starts_with("step ")).count(),
        report.steps
    );
    assert!(
        text.contains("gemm f32") && text.contains("with epilogue"),
        "{text}"
    );

    // The optimized stage is the pipeline's output: composites are expanded, and it parses.
    let optimized = ok(flumen(
        &[
            "dump",
            p(&model_path),
            "--stage",
            "optimized",
            "--fetch",
            &loss,
        ],
        &[],
    ));
    let opt: GraphDef = optimized.parse().unwrap();
    assert!(opt.len() < def.len(), "{} vs {}", opt.len(), def.len());
    assert!(!optimized.contains("softmax_cross_entropy("), "{optimized}");
    assert!(def.to_string().contains("softmax_cross_entropy("));

    if have_dot() {
        for stage in ["optimized", "compiled"] {
            let svg = ok(flumen(
                &["dump", p(&model_path), "--stage", stage, "--format", "svg"],
                &[],
            ));
            assert!(svg.contains("<svg") && svg.contains("<title>cluster_dense</title>"));
            assert!(svg.contains(&format!("({stage}")), "{stage}: caption");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_fetches_and_missing_graphviz_are_clear_errors() {
    let dir = temp_dir("errors");
    let (g, _, _) = model();
    let model_path = dir.join("model.flumen");
    g.save(&model_path).unwrap();
    let m = p(&model_path);

    let e = err(flumen(
        &["dump", m, "--stage", "compiled", "--fetch", "nosuch"],
        &[],
    ));
    assert!(
        e.contains("--fetch `nosuch`") && e.contains("no node"),
        "{e}"
    );
    let e = err(flumen(&["dump", m, "--fetch", "x"], &[]));
    assert!(e.contains("--stage optimized|compiled"), "{e}");
    let e = err(flumen(
        &["dump", m, "--format", "svg"],
        &[("FLUMEN_DOT", "/nonexistent/dot")],
    ));
    assert!(
        e.contains("/nonexistent/dot")
            && e.contains("package `graphviz`")
            && e.contains("--format dot"),
        "{e}"
    );
    // A Graphviz that fails is reported with its exit status.
    let e = err(flumen(
        &["dump", m, "--format", "svg"],
        &[("FLUMEN_DOT", "false")],
    ));
    assert!(e.contains("`false -Tsvg` failed"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
