//! Checkpoints: `Session::save_checkpoint` / `Session::restore` round trips (every dtype,
//! bit for bit, into a new session) and each kind of bad input giving an error that names
//! the file and the variable.

use flumen::{Backend, DType, Graph, GraphError, Session, Tensor, Value};
use ndarray::{ArrayD, IxDyn, arr0, arr1, arr2};
use std::path::PathBuf;

/// A fresh path in the temp directory for this test (removed first if it exists).
fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flumen-checkpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// The message of an I/O error about `path`, or a panic naming what came instead.
fn io_message(err: GraphError, path: &std::path::Path) -> String {
    match err {
        GraphError::Io { path: p, msg } => {
            assert_eq!(p, path.display().to_string(), "the error names the file");
            msg
        }
        other => panic!(
            "expected an I/O error about {}, got {other:?}",
            path.display()
        ),
    }
}

/// A graph with a variable of each dtype (including a scalar, an empty tensor and float
/// bit patterns that only a bitwise copy preserves), update ops that change them, and an
/// output depending on all of them.
struct AllDtypes {
    graph: Graph,
    update: Tensor,
    output: Tensor,
}

fn all_dtypes_graph() -> AllDtypes {
    let g = Graph::new();
    let f32v = g
        .variable(
            "f32v",
            arr1(&[1.5f32, -0.0, f32::MIN_POSITIVE / 2.0, 3.0e38]),
        )
        .unwrap();
    let f64v = g
        .variable("scope/f64v", arr2(&[[0.1f64, -2.0], [1e-310, 7.25]]))
        .unwrap();
    let i32v = g
        .variable("i32v", arr1(&[i32::MIN, -1, 0, i32::MAX]))
        .unwrap();
    let i64v = g.variable("i64v", arr0(i64::MIN + 3)).unwrap();
    let u8v = g.variable("u8v", arr1(&[0u8, 1, 254, 255])).unwrap();
    let boolv = g.variable("boolv", arr1(&[true, false, true])).unwrap();
    let empty = g
        .variable("empty", ArrayD::<f32>::zeros(IxDyn(&[0, 3])))
        .unwrap();
    let init = g
        .random_normal(&[3, 2], 0.0, 1.0, DType::F32, Some(5))
        .unwrap();
    let random = g.variable("random", &init).unwrap();

    let updates = [
        f32v.assign((&f32v * 1.25).unwrap()).unwrap(),
        f64v.assign((&f64v / 3.0).unwrap()).unwrap(),
        i32v.assign((&i32v + 7i64).unwrap()).unwrap(),
        i64v.assign((&i64v * 3i64).unwrap()).unwrap(),
        u8v.assign((&u8v + 3i64).unwrap()).unwrap(),
        boolv.assign(boolv.logical_not().unwrap()).unwrap(),
        random.assign(random.exp().unwrap()).unwrap(),
    ];
    let refs: Vec<&Tensor> = updates.iter().collect();
    let update = g.group("update", &refs).unwrap();
    let output = {
        let parts = [
            f32v.cast(DType::F64).unwrap().sum_all().unwrap(),
            f64v.sum_all().unwrap(),
            i32v.cast(DType::F64).unwrap().sum_all().unwrap(),
            i64v.cast(DType::F64).unwrap(),
            u8v.cast(DType::F64).unwrap().sum_all().unwrap(),
            boolv.cast(DType::F64).unwrap().sum_all().unwrap(),
            empty.cast(DType::F64).unwrap().sum_all().unwrap(),
            random.cast(DType::F64).unwrap().sum_all().unwrap(),
        ];
        let refs: Vec<&Tensor> = parts.iter().collect();
        Tensor::stack(&refs, 0).unwrap()
    };
    AllDtypes {
        graph: g,
        update,
        output,
    }
}

#[test]
fn round_trip_every_dtype_bit_for_bit_into_a_new_session() {
    for backend in [Backend::Compiled, Backend::Interpreter] {
        let m = all_dtypes_graph();
        let mut trained = Session::with_backend(&m.graph, backend);
        for _ in 0..2 {
            trained.run(&[], &[&m.update]).unwrap();
        }
        let path = temp_path(&format!("all_dtypes_{backend:?}.safetensors"));
        trained.save_checkpoint(&path).unwrap();
        let expected = trained.run(&[], &[&m.output]).unwrap();

        let mut restored = Session::with_backend(&m.graph, backend);
        restored.restore(&path).unwrap();
        assert_eq!(restored.variables().len(), 8);
        for (name, value) in trained.variables() {
            let got = &restored.variables()[name];
            assert!(
                got.bit_eq(value),
                "{backend:?} {name}: {got:?} != {value:?}"
            );
        }
        let got = restored.run(&[], &[&m.output]).unwrap();
        assert!(got[0].bit_eq(&expected[0]), "{backend:?}");

        // Both sessions continue identically.
        trained.run(&[], &[&m.update]).unwrap();
        restored.run(&[], &[&m.update]).unwrap();
        let a = trained.run(&[], &[&m.output]).unwrap();
        let b = restored.run(&[], &[&m.output]).unwrap();
        assert!(a[0].bit_eq(&b[0]), "{backend:?}");
    }
}

#[test]
fn the_file_is_plain_safetensors_with_one_tensor_per_variable() {
    let m = all_dtypes_graph();
    let path = temp_path("plain.safetensors");
    Session::new(&m.graph).save_checkpoint(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(
        names,
        [
            "boolv",
            "empty",
            "f32v",
            "i32v",
            "i64v",
            "random",
            "scope/f64v",
            "u8v"
        ]
    );
    use safetensors::Dtype;
    let dtype = |n: &str| file.tensor(n).unwrap().dtype();
    assert_eq!(dtype("f32v"), Dtype::F32);
    assert_eq!(dtype("scope/f64v"), Dtype::F64);
    assert_eq!(dtype("i32v"), Dtype::I32);
    assert_eq!(dtype("i64v"), Dtype::I64);
    assert_eq!(dtype("u8v"), Dtype::U8);
    assert_eq!(dtype("boolv"), Dtype::BOOL);
    let boolv = file.tensor("boolv").unwrap();
    assert_eq!(boolv.data(), &[1, 0, 1]);
    assert_eq!(file.tensor("i64v").unwrap().shape(), &[] as &[usize]);
    assert_eq!(file.tensor("empty").unwrap().shape(), &[0, 3]);
    assert_eq!(
        file.tensor("i32v").unwrap().data()[..4],
        i32::MIN.to_le_bytes()
    );
}

#[test]
fn restore_overwrites_variables_already_in_use() {
    let g = Graph::new();
    let w = g.variable("w", arr1(&[1.0f32, 2.0])).unwrap();
    let bump = w.assign((&w + 1.0).unwrap()).unwrap();
    let mut sess = Session::new(&g);
    let path = temp_path("overwrite.safetensors");
    sess.save_checkpoint(&path).unwrap();
    sess.run(&[], &[&bump]).unwrap();
    assert_eq!(
        sess.variable(&w).unwrap(),
        Value::from(arr1(&[2.0f32, 3.0]))
    );
    sess.restore(&path).unwrap();
    assert_eq!(
        sess.variable(&w).unwrap(),
        Value::from(arr1(&[1.0f32, 2.0]))
    );
}

#[test]
fn missing_file_names_the_file() {
    let g = Graph::new();
    g.variable("w", arr1(&[1.0f32])).unwrap();
    let path = temp_path("does_not_exist.safetensors");
    let msg = io_message(Session::new(&g).restore(&path).unwrap_err(), &path);
    assert!(msg.starts_with("reading: "), "{msg}");
}

#[test]
fn save_into_a_missing_directory_names_the_file() {
    let g = Graph::new();
    g.variable("w", arr1(&[1.0f32])).unwrap();
    let path = temp_path("no_such_dir").join("w.safetensors");
    let msg = io_message(Session::new(&g).save_checkpoint(&path).unwrap_err(), &path);
    assert!(msg.starts_with("writing: "), "{msg}");
}

#[test]
fn truncated_and_corrupt_files_are_rejected() {
    let m = all_dtypes_graph();
    let path = temp_path("good.safetensors");
    Session::new(&m.graph).save_checkpoint(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;

    let mut corrupt_json = good.clone();
    corrupt_json[8] = b'[';
    let mut bad_utf8 = good.clone();
    bad_utf8[9] = 0xff;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "header too small"),
        ("four bytes", good[..4].to_vec(), "header too small"),
        (
            "header cut",
            good[..8 + header_len / 2].to_vec(),
            "invalid header length",
        ),
        (
            "data cut",
            good[..good.len() - 3].to_vec(),
            "not fully covered",
        ),
        (
            "one byte more",
            [&good[..], &[0]].concat(),
            "not fully covered",
        ),
        ("corrupt json", corrupt_json, "invalid JSON in header"),
        ("bad utf-8", bad_utf8, "invalid UTF-8 in header"),
        (
            "text",
            b"this is not a checkpoint at all".to_vec(),
            "header too large",
        ),
    ];
    for (what, bytes, expected) in cases {
        let path = temp_path(&format!("bad-{}.safetensors", what.replace(' ', "_")));
        std::fs::write(&path, &bytes).unwrap();
        let mut sess = Session::new(&m.graph);
        let msg = io_message(sess.restore(&path).unwrap_err(), &path);
        assert!(
            msg.starts_with("not a valid safetensors checkpoint: ") && msg.contains(expected),
            "{what}: {msg}"
        );
        assert!(sess.variables().is_empty(), "{what}: nothing restored");
    }
}

/// Save a checkpoint of a graph built by `make_saved`, try to restore it into a session on
/// the graph built by `make_target`, and return the error message (checking that the
/// failed restore left the target session untouched).
fn restore_error(make_saved: impl Fn(&Graph), make_target: impl Fn(&Graph), file: &str) -> String {
    let saved = Graph::new();
    make_saved(&saved);
    let path = temp_path(file);
    Session::new(&saved).save_checkpoint(&path).unwrap();
    let target = Graph::new();
    make_target(&target);
    let mut sess = Session::new(&target);
    sess.initialize().unwrap();
    let before = sess.variables().clone();
    let msg = io_message(sess.restore(&path).unwrap_err(), &path);
    assert_eq!(
        sess.variables(),
        &before,
        "a failed restore changes nothing"
    );
    assert!(msg.starts_with("cannot restore the checkpoint: "), "{msg}");
    msg
}

#[test]
fn unknown_variable_names_are_rejected() {
    let msg = restore_error(
        |g| {
            g.variable("w", arr1(&[1.0f32])).unwrap();
            g.variable("extra", arr1(&[2.0f32])).unwrap();
        },
        |g| {
            g.variable("w", arr1(&[1.0f32])).unwrap();
        },
        "unknown.safetensors",
    );
    assert!(
        msg.contains(
            "unknown variable `extra`: the checkpoint holds it but `extra` is not a node \
             of the graph"
        ),
        "{msg}"
    );

    // A tensor named after a node that is not a variable.
    let msg = restore_error(
        |g| {
            g.variable("w", arr1(&[1.0f32])).unwrap();
            g.variable("x", arr1(&[2.0f32])).unwrap();
        },
        |g| {
            g.variable("w", arr1(&[1.0f32])).unwrap();
            g.placeholder("x", DType::F32, &[1]).unwrap();
        },
        "not_a_variable.safetensors",
    );
    assert!(
        msg.contains("unknown variable `x`: the checkpoint holds it but `x` is a placeholder node, not a variable"),
        "{msg}"
    );
}

#[test]
fn missing_variables_are_rejected() {
    let msg = restore_error(
        |g| {
            g.variable("w", arr1(&[1.0f32])).unwrap();
        },
        |g| {
            g.variable("w", arr1(&[1.0f32])).unwrap();
            let _scope = g.scope("layer");
            g.variable("b", arr2(&[[1i64, 2], [3, 4]])).unwrap();
        },
        "missing.safetensors",
    );
    assert_eq!(
        msg,
        "cannot restore the checkpoint: missing variable `layer/b`: the graph expects \
         i64[2, 2] but the checkpoint has no tensor of that name"
    );
}

#[test]
fn dtype_mismatches_are_rejected() {
    let msg = restore_error(
        |g| {
            g.variable("w", arr1(&[1.0f32, 2.0])).unwrap();
        },
        |g| {
            g.variable("w", arr1(&[1.0f64, 2.0])).unwrap();
        },
        "dtype.safetensors",
    );
    assert_eq!(
        msg,
        "cannot restore the checkpoint: variable `w`: dtype mismatch: the checkpoint holds \
         F32[2] but the graph expects f64[2] (safetensors F64)"
    );

    // bool is BOOL, not U8.
    let msg = restore_error(
        |g| {
            g.variable("flags", arr1(&[1u8, 0])).unwrap();
        },
        |g| {
            g.variable("flags", arr1(&[true, false])).unwrap();
        },
        "bool_u8.safetensors",
    );
    assert!(
        msg.contains("variable `flags`: dtype mismatch: the checkpoint holds U8[2] but the graph expects bool[2] (safetensors BOOL)"),
        "{msg}"
    );
}

#[test]
fn shape_mismatches_are_rejected() {
    let msg = restore_error(
        |g| {
            g.variable("w", arr2(&[[1.0f32, 2.0], [3.0, 4.0]])).unwrap();
        },
        |g| {
            g.variable("w", arr1(&[1.0f32, 2.0, 3.0, 4.0])).unwrap();
        },
        "shape.safetensors",
    );
    assert_eq!(
        msg,
        "cannot restore the checkpoint: variable `w`: shape mismatch: the checkpoint holds \
         shape [2, 2] but the graph expects f32[4]"
    );
}

#[test]
fn every_problem_is_listed_up_to_ten() {
    let msg = restore_error(
        |g| {
            g.variable("a", arr1(&[1.0f32])).unwrap();
            g.variable("b", arr1(&[1.0f32])).unwrap();
        },
        |g| {
            g.variable("a", arr1(&[1i32])).unwrap();
            g.variable("c", arr1(&[1.0f32])).unwrap();
        },
        "several.safetensors",
    );
    assert!(msg.contains("unknown variable `b`"), "{msg}");
    assert!(msg.contains("variable `a`: dtype mismatch"), "{msg}");
    assert!(msg.contains("missing variable `c`"), "{msg}");

    let msg = restore_error(
        |_| {},
        |g| {
            for i in 0..13 {
                g.variable(&format!("v{i:02}"), arr1(&[0.0f32])).unwrap();
            }
        },
        "many.safetensors",
    );
    assert_eq!(msg.matches("missing variable").count(), 10, "{msg}");
    assert!(msg.ends_with("; and 3 more"), "{msg}");
}

#[test]
fn bool_bytes_other_than_0_and_1_are_rejected() {
    let path = temp_path("bad_bool.safetensors");
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::BOOL, vec![3], &[1, 0, 2])
        .unwrap();
    let bytes = safetensors::serialize([("flags", view)], None).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let g = Graph::new();
    g.variable("flags", arr1(&[false, false, false])).unwrap();
    let msg = io_message(Session::new(&g).restore(&path).unwrap_err(), &path);
    assert_eq!(
        msg,
        "cannot restore the checkpoint: variable `flags`: BOOL element 2 is the byte 2, \
         expected 0 or 1"
    );
}
