//! Model files (`flumen::model_dir`) and the `flumen compile` command: a model directory
//! round-trips; loading rejects unknown ops, bad attributes, graph/weight mismatches and
//! truncated or corrupt data with errors naming the problem, without panicking or running
//! anything; `specialize_feeds` re-types inputs; the CLI exports a model whose library
//! matches the JIT on the re-typed graph.

mod aot_util;

use aot_util::{Lib, assert_bits, scratch};
use flumen::model_dir::{GRAPH_FILE, VARIABLES_FILE, load_model, save_model, specialize_feeds};
use flumen::nn::Initializer;
use flumen::{DType, Graph, Session, TensorType, Value};
use std::path::Path;
use std::process::Command;

/// A small dense network `relu(x·W + b)` with a seeded random initialiser.
fn dense(batch: usize, out: usize) -> (Graph, flumen::Tensor, flumen::Tensor) {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[batch, 4]).unwrap();
    let w0 = Initializer::Normal {
        mean: 0.0,
        stddev: 1.0,
    }
    .build(&g, &[4, out], DType::F32, Some(3))
    .unwrap();
    let w = g.variable("W", &w0).unwrap();
    let b = g
        .variable("b", ndarray::Array1::from_elem(out, 0.5f32))
        .unwrap();
    let y = (x.matmul(&w).unwrap() + &b).unwrap().relu().unwrap();
    g.rename(&y, "y").unwrap();
    (g, x, y)
}

fn err_text<T>(r: flumen::Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_model_directory_round_trips_without_running_anything() {
    let dir = scratch("roundtrip");
    let (g, _, _) = dense(2, 3);
    let mut sess = Session::new(&g);
    save_model(&dir, &mut sess).unwrap();
    let m = load_model(&dir).unwrap();
    assert_eq!(m.graph.def(), g.def());
    for (name, v) in sess.variables() {
        assert!(m.session.variables()[name].bit_eq(v), "{name}");
    }
    // Loading ran nothing: no random counter moved, no executable was compiled.
    assert!(m.session.state().counters.is_empty());
    // A `.flumen` file with a `.safetensors` sibling loads the same way.
    std::fs::copy(dir.join(GRAPH_FILE), dir.join("m.flumen")).unwrap();
    std::fs::copy(dir.join(VARIABLES_FILE), dir.join("m.safetensors")).unwrap();
    let m2 = load_model(dir.join("m.flumen")).unwrap();
    assert_eq!(m2.checkpoint, Some(dir.join("m.safetensors")));
}

#[test]
fn loading_rejects_bad_graphs_and_weights_with_named_errors() {
    let dir = scratch("bad");
    let (g, _, _) = dense(2, 3);
    let mut sess = Session::new(&g);
    save_model(&dir, &mut sess).unwrap();
    let text = std::fs::read_to_string(dir.join(GRAPH_FILE)).unwrap();
    let weights = std::fs::read(dir.join(VARIABLES_FILE)).unwrap();
    let write = |graph: &str, vars: &[u8]| {
        std::fs::write(dir.join(GRAPH_FILE), graph).unwrap();
        std::fs::write(dir.join(VARIABLES_FILE), vars).unwrap();
    };
    // Unknown op.
    write(&text.replace("= relu(", "= frobnicate("), &weights);
    let e = err_text(load_model(&dir));
    assert!(e.contains("frobnicate") && e.contains(GRAPH_FILE), "{e}");
    // Bad attribute.
    write(
        &text.replace("transpose_a=false", "transpose_a=7"),
        &weights,
    );
    let e = err_text(load_model(&dir));
    assert!(e.contains("transpose_a"), "{e}");
    // Weights of another shape: the graph says W is f32[4,3], the file holds f32[4,5].
    let (g5, _, _) = dense(2, 5);
    let mut s5 = Session::new(&g5);
    s5.save_checkpoint(dir.join("other.safetensors")).unwrap();
    write(
        &text,
        &std::fs::read(dir.join("other.safetensors")).unwrap(),
    );
    let e = err_text(load_model(&dir));
    assert!(e.contains("`W`") && e.contains("shape mismatch"), "{e}");
    // Truncated and corrupt checkpoints, at many cut points.
    for cut in [0, 1, 7, 8, 20, weights.len() / 2, weights.len() - 1] {
        write(&text, &weights[..cut]);
        let e = err_text(load_model(&dir));
        assert!(e.contains(VARIABLES_FILE), "cut {cut}: {e}");
    }
    let mut garbage = weights.clone();
    for b in garbage.iter_mut().skip(8).take(40) {
        *b = b'#';
    }
    write(&text, &garbage);
    assert!(err_text(load_model(&dir)).contains("safetensors"));
    // A truncated graph: every prefix either loads or is an error, never a panic.
    for cut in (0..text.len()).step_by(7) {
        write(&text[..cut], &weights);
        let _ = load_model(&dir);
    }
    // A directory without a checkpoint, and a path that does not exist.
    std::fs::remove_file(dir.join(VARIABLES_FILE)).unwrap();
    assert!(err_text(load_model(&dir)).contains(VARIABLES_FILE));
    assert!(err_text(load_model(dir.join("nope"))).contains("no such model"));
}

/// A safetensors file holding `tensors` (name, dtype, shape, little-endian bytes).
fn safetensors_file(
    tensors: &[(&str, safetensors::tensor::Dtype, Vec<usize>, Vec<u8>)],
) -> Vec<u8> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            let v = safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap();
            (n.to_string(), v)
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn loading_names_missing_extra_and_mistyped_weights_and_survives_corruption() {
    let dir = scratch("weights");
    let (g, _, _) = dense(2, 3);
    let mut sess = Session::new(&g);
    save_model(&dir, &mut sess).unwrap();
    let text = std::fs::read_to_string(dir.join(GRAPH_FILE)).unwrap();
    let weights = std::fs::read(dir.join(VARIABLES_FILE)).unwrap();
    let write = |graph: &[u8], vars: &[u8]| {
        std::fs::write(dir.join(GRAPH_FILE), graph).unwrap();
        std::fs::write(dir.join(VARIABLES_FILE), vars).unwrap();
    };
    let f32_bytes = |n: usize| vec![0u8; 4 * n];
    let w = (
        "W",
        safetensors::tensor::Dtype::F32,
        vec![4, 3],
        f32_bytes(12),
    );
    let b = ("b", safetensors::tensor::Dtype::F32, vec![3], f32_bytes(3));
    // A variable the checkpoint lacks.
    write(text.as_bytes(), &safetensors_file(std::slice::from_ref(&w)));
    let e = err_text(load_model(&dir));
    assert!(e.contains("missing variable `b`"), "{e}");
    // A tensor that is not a variable of the graph (a node of another kind, and no node).
    for extra in ["x", "nosuch"] {
        let z = (
            extra,
            safetensors::tensor::Dtype::F32,
            vec![1],
            f32_bytes(1),
        );
        write(
            text.as_bytes(),
            &safetensors_file(&[w.clone(), b.clone(), z]),
        );
        let e = err_text(load_model(&dir));
        assert!(e.contains(&format!("`{extra}`")), "{e}");
    }
    // The right shape in the wrong dtype.
    let w64 = (
        "W",
        safetensors::tensor::Dtype::F64,
        vec![4, 3],
        vec![0u8; 8 * 12],
    );
    write(text.as_bytes(), &safetensors_file(&[w64, b.clone()]));
    let e = err_text(load_model(&dir));
    assert!(e.contains("`W`") && e.contains("dtype mismatch"), "{e}");
    // A node whose declared type disagrees with its op's shape rule.
    let retyped: String = text
        .lines()
        .map(|l| {
            if l.contains("= relu(") {
                l.replace("f32[2,3]", "f32[2,4]")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(retyped, text.trim_end());
    write(retyped.as_bytes(), &weights);
    let e = err_text(load_model(&dir));
    assert!(
        e.contains(GRAPH_FILE) && e.contains("`%y`") && e.contains("f32[2,4]"),
        "{e}"
    );
    // Not UTF-8.
    write(&[0xff, 0xfe, 0x00, 0x25], &weights);
    err_text(load_model(&dir));
    // Seeded byte corruption of either file: an error or a valid model, never a panic.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..300 {
        let (mut gbytes, mut wbytes) = (text.clone().into_bytes(), weights.clone());
        let target = if round % 2 == 0 {
            &mut gbytes
        } else {
            &mut wbytes
        };
        for _ in 0..1 + next() % 4 {
            let i = (next() % target.len() as u64) as usize;
            target[i] = next() as u8;
        }
        write(&gbytes, &wbytes);
        if let Ok(m) = load_model(&dir) {
            // Whatever loaded is a consistent model: every variable has a value of its
            // declared type.
            for (name, v) in m.session.variables() {
                let node = m.graph.get(name).unwrap();
                assert_eq!(v.dtype(), node.dtype(), "{name}");
                assert_eq!(v.shape(), node.shape(), "{name}");
            }
        }
    }
}

#[test]
fn specialize_feeds_retypes_inputs_or_names_the_node_that_cannot_follow() {
    let (g, _, _) = dense(100, 3);
    let def = specialize_feeds(
        &g.def(),
        &[("x".into(), TensorType::new(DType::F32, [1, 4]))],
    )
    .unwrap();
    let y = def.find("y").unwrap();
    assert_eq!(def.node(y).ty, TensorType::new(DType::F32, [1, 3]));
    // Feature size 5 cannot multiply W [4, 3].
    let e = err_text(specialize_feeds(
        &g.def(),
        &[("x".into(), TensorType::new(DType::F32, [1, 5]))],
    ));
    assert!(e.contains("matmul"), "{e}");
    let e = err_text(specialize_feeds(
        &g.def(),
        &[("W".into(), TensorType::new(DType::F32, [1, 5]))],
    ));
    assert!(e.contains("not a placeholder"), "{e}");
}

fn flumen(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flumen"))
        .args(args)
        .env("FLUMEN_AOT_RUNTIME", aot_util::runtime_lib())
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn flumen_compile_exports_a_retyped_model_that_matches_the_jit() {
    let dir = scratch("cli");
    let (g, _, _) = dense(100, 3);
    let mut sess = Session::new(&g);
    save_model(dir.join("model"), &mut sess).unwrap();
    let out = flumen(
        &[
            "compile",
            "model",
            "--feed",
            "x:f32[2,4]",
            "--fetch",
            "y",
            "-o",
            "libdense.so",
            "--header",
            "dense.h",
        ],
        &dir,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("input 0: x f32[2,4]"), "{stdout}");
    let header = std::fs::read_to_string(dir.join("dense.h")).unwrap();
    assert!(
        header.contains("#define DENSE_INPUT_0_SHAPE {2, 4}"),
        "{header}"
    );
    assert!(header.contains("int dense_run(dense_state *s"), "{header}");
    // The JIT on the same re-typed graph and weights.
    let def = specialize_feeds(
        &g.def(),
        &[("x".into(), TensorType::new(DType::F32, [2, 4]))],
    )
    .unwrap();
    let g2 = Graph::from_def(def);
    let mut s2 = Session::new(&g2);
    for (name, v) in sess.variables() {
        s2.set_variable(&g2.get(name).unwrap(), v.clone()).unwrap();
    }
    let x = Value::from_vec(&[2, 4], (0..8).map(|i| i as f32 * 0.25 - 1.0).collect()).unwrap();
    let jit = s2
        .run(
            &[(&g2.get("x").unwrap(), x.clone())],
            &[&g2.get("y").unwrap()],
        )
        .unwrap();
    let f32s = |s: &[usize]| TensorType::new(DType::F32, s);
    let lib = Lib::load(
        &dir.join("libdense.so"),
        "dense",
        vec![f32s(&[2, 4])],
        vec![f32s(&[2, 3])],
        vec![f32s(&[4, 3]), f32s(&[3])],
    );
    assert_bits("cli library", &jit, &lib.state(1).run(&[x]).unwrap());
    // Bad arguments are errors with messages, not crashes.
    for (args, want) in [
        (
            &[
                "compile",
                "model",
                "--feed",
                "x:f33[2,4]",
                "--fetch",
                "y",
                "-o",
                "l.so",
            ][..],
            "unknown dtype",
        ),
        (
            &["compile", "model", "--fetch", "nosuch", "-o", "l.so"][..],
            "nosuch",
        ),
        (
            &[
                "compile",
                "model",
                "--feed",
                "x:f32[2,5]",
                "--fetch",
                "y",
                "-o",
                "l.so",
            ][..],
            "matmul",
        ),
        (
            &["compile", "missing", "--fetch", "y", "-o", "l.so"][..],
            "no such model",
        ),
    ] {
        let out = flumen(args, &dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(want),
            "{args:?}: {stderr}"
        );
    }
}
