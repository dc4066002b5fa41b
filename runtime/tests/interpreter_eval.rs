//! Interpreter tests for `eval_op` itself: trivial ops, the ops the executor owns, and
//! calls that break the op's shape rule (errors, never panics).

mod interpreter_support;

use flumen_frontend::op::{BinaryOp, Op, SliceSpec, TensorType};
use flumen_frontend::{DType, Value};
use flumen_runtime::{EvalContext, eval_op};
use interpreter_support::*;

#[test]
fn constant_returns_its_value_and_no_op_returns_true() {
    let c = arr(&[2], vec![1.5f32, f32::NAN]);
    assert!(eval(&Op::Constant(c.clone()), &[]).bit_eq(&c));
    assert_value(&eval(&Op::NoOp, &[]), &[], vec![true]);
}

#[test]
fn state_ops_and_placeholders_are_left_to_the_executor() {
    let v = vec1(vec![1.0f64]);
    let t = TensorType::new(DType::F64, vec![1]);
    let cases: [(Op, Vec<&Value>); 5] = [
        (
            Op::Placeholder {
                dtype: DType::F64,
                shape: vec![1],
            },
            vec![],
        ),
        (Op::Variable { trainable: true }, vec![&v]),
        (Op::Read, vec![&v]),
        (Op::Assign, vec![&v, &v]),
        (Op::AssignSlice(SliceSpec::full(&[1])), vec![&v, &v]),
    ];
    for (op, inputs) in cases {
        let err = eval_op(&op, &inputs, &t, EvalContext::default()).unwrap_err();
        assert!(err.contains("executor"), "{}: {err}", op.name());
    }
}

#[test]
fn a_wrong_declared_output_type_is_an_error() {
    let x = vec1(vec![1i32, 2]);
    let wrong = TensorType::new(DType::I32, vec![3]);
    let err = eval_op(
        &Op::Binary(BinaryOp::Add),
        &[&x, &x],
        &wrong,
        EvalContext::default(),
    )
    .unwrap_err();
    assert!(err.contains("i32[3]") && err.contains("i32[2]"), "{err}");
}

#[test]
fn a_wrong_number_of_inputs_is_an_error() {
    let x = vec1(vec![1i32, 2]);
    let t = TensorType::new(DType::I32, vec![2]);
    let err = eval_op(
        &Op::Binary(BinaryOp::Add),
        &[&x],
        &t,
        EvalContext::default(),
    )
    .unwrap_err();
    assert!(err.contains("inputs"), "{err}");
}

#[test]
fn inputs_that_break_the_shape_rule_are_errors() {
    let t = TensorType::new(DType::F32, vec![2]);
    let x = vec1(vec![1.0f32, 2.0]);
    let bad: [(Op, Vec<&Value>); 4] = [
        (Op::Reshape(vec![3]), vec![&x]),
        (Op::Transpose(vec![1]), vec![&x]),
        (Op::Roll { shift: 1, axis: 1 }, vec![&x]),
        (
            Op::Gather {
                axis: 0,
                batch_dims: 0,
            },
            vec![&x, &x],
        ),
    ];
    for (op, inputs) in bad {
        assert!(
            eval_op(&op, &inputs, &t, EvalContext::default()).is_err(),
            "{}",
            op.name()
        );
    }
}
