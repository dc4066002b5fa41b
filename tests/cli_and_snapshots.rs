//! The basics graph as text IR and DOT (insta snapshots), and `flumen dump` on a saved
//! graph: the text parses back to an equal graph and Graphviz accepts the DOT.

use flumen::{DType, Graph, GraphDef, s};
use ndarray::arr0;
use std::process::Command;

/// The vector graph of the TF basics tutorial with both assignments.
fn basics_graph() -> Graph {
    let g = Graph::new();
    let b = g
        .variable("b", ndarray::Array1::from_iter(0..10i32))
        .unwrap();
    let c = g.variable("c", arr0(1.0f32)).unwrap();
    let d = (b.cast(DType::F32).unwrap() + &c)
        .unwrap()
        .named("d")
        .unwrap();
    let e = (&c + 2.0).unwrap().named("e").unwrap();
    (&d * &e).unwrap().named("a").unwrap();
    b.slice_assign(s![1], 10).unwrap();
    let tens = g.constant(ndarray::arr1(&[10i32, 10, 10])).unwrap();
    b.slice_assign(s![6..9], &tens).unwrap();
    b.slice(s![2..5]).unwrap().named("f").unwrap();
    g
}

#[test]
fn basics_text_ir_snapshot() {
    let text = basics_graph().def().to_string();
    insta::assert_snapshot!(text);
    assert_eq!(text.parse::<GraphDef>().unwrap(), basics_graph().def());
}

#[test]
fn basics_dot_snapshot() {
    insta::assert_snapshot!(basics_graph().def().to_dot());
}

#[test]
fn dump_cli_round_trips_and_emits_valid_dot() {
    let dir = std::env::temp_dir().join(format!("flumen-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("basics.flumen");
    basics_graph().save(&model).unwrap();
    let flumen = env!("CARGO_BIN_EXE_flumen");

    let out = Command::new(flumen)
        .args(["dump"])
        .arg(&model)
        .args(["--format", "text"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: GraphDef = String::from_utf8(out.stdout).unwrap().parse().unwrap();
    assert_eq!(parsed, basics_graph().def());

    let dot_path = dir.join("basics.dot");
    let out = Command::new(flumen)
        .arg("dump")
        .arg(&model)
        .args(["--format", "dot", "-o"])
        .arg(&dot_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dot = std::fs::read_to_string(&dot_path).unwrap();
    assert!(dot.starts_with("digraph"));
    match Command::new("dot").arg("-Tsvg").arg(&dot_path).output() {
        Ok(r) => {
            assert!(
                r.status.success(),
                "graphviz rejected the DOT: {}",
                String::from_utf8_lossy(&r.stderr)
            );
            assert!(String::from_utf8_lossy(&r.stdout).contains("<svg"));
        }
        Err(_) => eprintln!(
            "skipping the Graphviz check: `dot` is not installed (apt-get install graphviz)"
        ),
    }

    // A missing or malformed model is a clear error, not a panic.
    let out = Command::new(flumen)
        .arg("dump")
        .arg(dir.join("missing.flumen"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.flumen"));
    std::fs::write(dir.join("bad.flumen"), "%x = frobnicate() : f32[1]\n").unwrap();
    let out = Command::new(flumen)
        .arg("dump")
        .arg(dir.join("bad.flumen"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 1") && err.contains("unknown op `frobnicate`"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
