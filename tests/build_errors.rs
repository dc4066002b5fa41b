//! Every invalid build and bad feed returns an error naming the op or placeholder and the
//! shapes or dtypes involved — checked on the error's kind and message, never just on
//! failure.

use flumen::{BuildError, DType, Graph, GraphError, Session, Value, s};
use ndarray::{Array2, arr1};

fn build_kind(e: &GraphError) -> &BuildError {
    e.build_kind()
        .unwrap_or_else(|| panic!("expected a build error, got {e}"))
}

#[test]
fn mixed_dtypes_suggest_a_cast() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[3]).unwrap();
    let i = g.placeholder("i", DType::I32, &[3]).unwrap();
    let err = (&x + &i).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(build_kind(&err), BuildError::DTypeMismatch { dtypes, .. } if dtypes == &[DType::F32, DType::I32])
    );
    assert!(msg.starts_with("add `add`"), "{msg}");
    assert!(msg.contains("f32 and i32") && msg.contains("cast"), "{msg}");
    // The error points at this file (the user's line), not at Flumen's internals.
    assert!(msg.contains("tests/build_errors.rs"), "{msg}");
    // matmul refuses mixed dtypes too.
    let w = g.placeholder("w", DType::I32, &[3, 2]).unwrap();
    let x2 = x.reshape(&[1, 3]).unwrap();
    let err = x2.matmul(&w).unwrap_err();
    assert!(err.to_string().starts_with("matmul"), "{err}");
    assert!(err.to_string().contains("f32 and i32"), "{err}");
}

#[test]
fn shape_mismatch_names_both_shapes() {
    let g = Graph::new();
    let a = g.placeholder("a", DType::F32, &[2, 3]).unwrap();
    let b = g.placeholder("b", DType::F32, &[4, 3]).unwrap();
    let err = (&a * &b).unwrap_err();
    assert!(
        matches!(build_kind(&err), BuildError::ShapeMismatch { shapes, .. } if shapes == &[vec![2, 3], vec![4, 3]])
    );
    let msg = err.to_string();
    assert!(
        msg.contains("mul")
            && msg.contains("[2, 3]")
            && msg.contains("[4, 3]")
            && msg.contains("broadcast"),
        "{msg}"
    );

    let err = a.matmul(&b).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("matmul") && msg.contains("inner dimensions") && msg.contains("3 vs 4"),
        "{msg}"
    );

    let err = a.reshape(&[5]).unwrap_err();
    assert!(
        err.to_string().contains("reshape") && err.to_string().contains("[2, 3]"),
        "{err}"
    );
}

#[test]
fn scalar_literal_takes_the_tensor_dtype() {
    let g = Graph::new();
    let i = g.placeholder("i", DType::I32, &[2]).unwrap();
    assert_eq!((&i + 2).unwrap().dtype(), DType::I32);
    assert_eq!((&i * 3.0).unwrap().dtype(), DType::I32); // 3.0 is exactly an integer
    let err = (&i + 2.5).unwrap_err();
    assert!(matches!(build_kind(&err), BuildError::DTypeMismatch { .. }));
    assert!(
        err.to_string().contains("2.5") && err.to_string().contains("i32"),
        "{err}"
    );
    let f = g.placeholder("f", DType::F64, &[2]).unwrap();
    assert_eq!((2.0 - &f).unwrap().dtype(), DType::F64);
}

#[test]
fn axis_out_of_range() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2, 3]).unwrap();
    for bad in [2i64, -3, 7] {
        let err = x.sum(&[bad], false).unwrap_err();
        assert!(
            matches!(build_kind(&err), BuildError::AxisOutOfRange { axis, rank: 2, .. } if *axis == bad),
            "{err}"
        );
        assert!(
            err.to_string().contains("reduce_sum") && err.to_string().contains("rank 2"),
            "{err}"
        );
    }
    assert_eq!(x.sum(&[-1], false).unwrap().shape(), &[2]);
    let err = x.argmax(5).unwrap_err();
    assert!(err.to_string().contains("argmax"), "{err}");
    let err = flumen::Tensor::concat(&[&x, &x], 2).unwrap_err();
    assert!(
        matches!(build_kind(&err), BuildError::AxisOutOfRange { .. }),
        "{err}"
    );
}

#[test]
fn bad_slice_bounds() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[4, 5]).unwrap();
    let err = x.slice(s![5, ..]).unwrap_err();
    assert!(
        matches!(build_kind(&err), BuildError::BadSlice { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("index 5 is out of range for length 4"),
        "{err}"
    );
    let err = x.slice(s![.., 1..9]).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    // `s![..;0]` panics inside ndarray itself; a hand-built zero step is our error.
    let zero_step = [ndarray::SliceInfoElem::Slice {
        start: 0,
        end: None,
        step: 0,
    }];
    let err = x.slice(zero_step).unwrap_err();
    assert!(err.to_string().contains("step must be nonzero"), "{err}");
    let err = x.slice(s![1, 2, 3]).unwrap_err();
    assert!(
        err.to_string()
            .contains("3 axes indexed but the tensor has rank 2"),
        "{err}"
    );
    assert_eq!(x.slice(s![1..3, ..;2]).unwrap().shape(), &[2, 3]);
    assert_eq!(x.slice(s![-1, ..;-1]).unwrap().shape(), &[5]);
}

#[test]
fn wrong_arity_and_foreign_graph() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2]).unwrap();
    let err = g
        .add_op(
            flumen::Op::Binary(flumen::op::BinaryOp::Add),
            &[&x],
            &[],
            None,
        )
        .unwrap_err();
    assert!(
        matches!(build_kind(&err), BuildError::Arity { got: 1, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("wrong number of inputs: got 1, expected 2"),
        "{err}"
    );

    let other = Graph::new();
    let y = other.placeholder("y", DType::F32, &[2]).unwrap();
    let err = (&x + &y).unwrap_err();
    assert!(
        matches!(build_kind(&err), BuildError::ForeignGraph(_)),
        "{err}"
    );
    assert!(err.to_string().contains("another graph"), "{err}");
}

#[test]
fn names_are_unique_and_scoped() {
    let g = Graph::new();
    {
        let _s = g.scope("layer1");
        let w = g.variable("W", Array2::<f32>::zeros((2, 2))).unwrap();
        assert_eq!(w.name(), "layer1/W");
        let err = g.variable("W", Array2::<f32>::zeros((2, 2))).unwrap_err();
        assert!(
            err.to_string().contains("`layer1/W` is already taken"),
            "{err}"
        );
        let sum = (&w + &w).unwrap();
        assert_eq!(sum.name(), "layer1/add");
        assert_eq!((&w + &w).unwrap().name(), "layer1/add_1");
    }
    let x = g.placeholder("x", DType::F32, &[1]).unwrap();
    assert_eq!(x.name(), "x");
    let err = g.placeholder("bad name", DType::F32, &[1]).unwrap_err();
    assert!(err.to_string().contains("invalid node name"), "{err}");
}

#[test]
fn assign_checks_variable_and_value() {
    let g = Graph::new();
    let v = g.variable("v", arr1(&[1.0f32, 2.0])).unwrap();
    let x = g.placeholder("x", DType::F32, &[2]).unwrap();
    let err = x.assign(1.0).unwrap_err();
    assert!(err.to_string().contains("not a variable"), "{err}");
    let wrong = g.placeholder("w3", DType::F32, &[3]).unwrap();
    let err = v.assign(&wrong).unwrap_err();
    assert!(
        err.to_string().contains("assign") && err.to_string().contains("[3]"),
        "{err}"
    );
    let ints = g.placeholder("ints", DType::I32, &[2]).unwrap();
    let err = v.assign(&ints).unwrap_err();
    assert!(err.to_string().contains("f32 and i32"), "{err}");
}

#[test]
fn bad_feeds_name_the_placeholder() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[2, 2]).unwrap();
    let y = (&x * 2.0).unwrap();
    let mut sess = Session::new(&g);

    let err = sess.run(&[], &[&y]).unwrap_err();
    assert!(
        matches!(&err, GraphError::Feed { placeholder, .. } if placeholder == "x"),
        "{err}"
    );
    assert!(
        err.to_string().contains("must be fed a f32[2,2] value"),
        "{err}"
    );

    let err = sess
        .run(&[(&x, Value::from(Array2::<f64>::zeros((2, 2))))], &[&y])
        .unwrap_err();
    assert!(
        err.to_string().starts_with("feed `x`")
            && err.to_string().contains("f64")
            && err.to_string().contains("f32"),
        "{err}"
    );

    let err = sess
        .run(&[(&x, Value::from(Array2::<f32>::zeros((3, 2))))], &[&y])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("fed shape [3, 2] but the placeholder has shape [2, 2]"),
        "{err}"
    );

    let err = sess
        .run(&[(&y, Value::from(Array2::<f32>::zeros((2, 2))))], &[&y])
        .unwrap_err();
    assert!(
        err.to_string().contains("only placeholders can be fed"),
        "{err}"
    );

    let other = Graph::new();
    let z = other.placeholder("z", DType::F32, &[1]).unwrap();
    let err = sess.run(&[], &[&z]).unwrap_err();
    assert!(
        matches!(&err, GraphError::Fetch { node, .. } if node == "z"),
        "{err}"
    );
    assert!(err.to_string().contains("another graph"), "{err}");
}
