//! Interpreter tests for layout ops: reshape, transpose, broadcast_to, slice (negative
//! steps, empty), concat, pad, tile and roll (every sign of shift), and inputs whose arrays
//! are not in row-major memory order.

mod interpreter_support;

use flumen_frontend::op::{Op, SliceDim, SliceSpec};
use flumen_frontend::{Scalar, Value};
use interpreter_support::*;
use ndarray::ShapeBuilder;

#[test]
fn reshape_keeps_row_major_order() {
    let x = iota::<i32>(&[2, 3]);
    assert_value(
        &eval1(&Op::Reshape(vec![3, 2]), &x),
        &[3, 2],
        vec![0i32, 1, 2, 3, 4, 5],
    );
    assert_value(
        &eval(&Op::Reshape(vec![6]), &[x]),
        &[6],
        vec![0i32, 1, 2, 3, 4, 5],
    );
    assert_value(
        &eval(&Op::Reshape(vec![]), &[vec1(vec![7u8])]),
        &[],
        vec![7u8],
    );
    assert_value(
        &eval(&Op::Reshape(vec![3, 0]), &[arr::<f32>(&[0, 2], vec![])]),
        &[3, 0],
        Vec::<f32>::new(),
    );
}

#[test]
fn transpose_permutes_axes() {
    let x = iota::<i64>(&[2, 3]);
    assert_value(
        &eval(&Op::Transpose(vec![1, 0]), &[x]),
        &[3, 2],
        vec![0i64, 3, 1, 4, 2, 5],
    );
    // x[i, j, k] = 6i + 3j + k with shape [2, 2, 3]; out axis 0 = in axis 2, 1 = 0, 2 = 1.
    let x = iota::<i64>(&[2, 2, 3]);
    let got = eval(&Op::Transpose(vec![2, 0, 1]), &[x]);
    // out[k, i, j] = 6i + 3j + k
    assert_value(
        &got,
        &[3, 2, 2],
        vec![0i64, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11],
    );
}

#[test]
fn broadcast_to_repeats_length_one_axes() {
    let x = arr(&[2, 1], vec![1.0f32, 2.0]);
    assert_value(
        &eval(&Op::BroadcastTo(vec![3, 2, 2]), &[x]),
        &[3, 2, 2],
        vec![
            1.0f32, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0,
        ],
    );
    assert_value(
        &eval(&Op::BroadcastTo(vec![0, 3]), &[Value::scalar(true)]),
        &[0, 3],
        Vec::<bool>::new(),
    );
}

fn spec(dims: &[(usize, i64, usize)]) -> SliceSpec {
    SliceSpec {
        dims: dims
            .iter()
            .map(|&(start, step, len)| SliceDim { start, step, len })
            .collect(),
    }
}

#[test]
fn slice_with_positive_and_negative_steps() {
    let x = iota::<i32>(&[3, 4]);
    // rows 2, 1, 0 (x[::-1]); columns 3, 1 (x[:, 3::-2])
    assert_value(
        &eval1(&Op::Slice(spec(&[(2, -1, 3), (3, -2, 2)])), &x),
        &[3, 2],
        vec![11i32, 9, 7, 5, 3, 1],
    );
    // row 1; columns 0, 2
    assert_value(
        &eval1(&Op::Slice(spec(&[(1, 1, 1), (0, 2, 2)])), &x),
        &[1, 2],
        vec![4i32, 6],
    );
    // an empty selection along one axis
    assert_value(
        &eval(&Op::Slice(spec(&[(0, 1, 0), (0, 1, 4)])), &[x]),
        &[0, 4],
        Vec::<i32>::new(),
    );
}

#[test]
fn slice_matches_python_normalisation() {
    // x[-1:0:-2] on 0..7 selects 6, 4, 2.
    let dim = SliceSpec::normalize_axis(7, Some(-1), Some(0), -2).expect("valid slice");
    let got = eval(
        &Op::Slice(SliceSpec { dims: vec![dim] }),
        &[iota::<i64>(&[7])],
    );
    assert_value(&got, &[3], vec![6i64, 4, 2]);
}

#[test]
fn concat_along_each_axis() {
    let a = arr(&[2, 2], vec![1u8, 2, 3, 4]);
    let b = arr(&[2, 1], vec![5u8, 6]);
    assert_value(
        &eval(&Op::Concat { axis: 1 }, &[a.clone(), b]),
        &[2, 3],
        vec![1u8, 2, 5, 3, 4, 6],
    );
    let c = arr(&[1, 2], vec![7u8, 8]);
    let empty = arr::<u8>(&[0, 2], vec![]);
    assert_value(
        &eval(&Op::Concat { axis: 0 }, &[a.clone(), empty.clone(), c]),
        &[3, 2],
        vec![1u8, 2, 3, 4, 7, 8],
    );
    assert!(eval1(&Op::Concat { axis: 0 }, &a).bit_eq(&a));
    assert_value(
        &eval(&Op::Concat { axis: 0 }, &[empty.clone(), empty]),
        &[0, 2],
        Vec::<u8>::new(),
    );
}

#[test]
fn pad_with_a_value_of_the_dtype() {
    let x = arr(&[1, 2], vec![1.0f32, 2.0]);
    let op = Op::Pad {
        paddings: vec![(1, 0), (1, 2)],
        value: Scalar::Float(9.5),
    };
    assert_value(
        &eval(&op, &[x]),
        &[2, 5],
        vec![9.5f32, 9.5, 9.5, 9.5, 9.5, 9.5, 1.0, 2.0, 9.5, 9.5],
    );
    let op = Op::Pad {
        paddings: vec![(2, 1)],
        value: Scalar::Int(-1),
    };
    assert_value(
        &eval(&op, &[vec1(vec![5i64])]),
        &[4],
        vec![-1i64, -1, 5, -1],
    );
    let op = Op::Pad {
        paddings: vec![(0, 1)],
        value: Scalar::Bool(true),
    };
    assert_value(&eval(&op, &[vec1(vec![false])]), &[2], vec![false, true]);
    // Padding an empty axis.
    let op = Op::Pad {
        paddings: vec![(1, 1), (0, 0)],
        value: Scalar::Int(3),
    };
    assert_value(
        &eval(&op, &[arr::<u8>(&[0, 2], vec![])]),
        &[2, 2],
        vec![3u8; 4],
    );
}

#[test]
fn tile_repeats_along_each_axis() {
    let x = arr(&[1, 2], vec![1i32, 2]);
    assert_value(
        &eval1(&Op::Tile(vec![2, 3]), &x),
        &[2, 6],
        vec![1i32, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2],
    );
    assert_value(
        &eval(&Op::Tile(vec![0, 1]), &[x]),
        &[0, 2],
        Vec::<i32>::new(),
    );
}

fn roll(x: Value, shift: i64, axis: usize) -> Value {
    eval(&Op::Roll { shift, axis }, &[x])
}

#[test]
fn roll_with_every_sign_of_shift() {
    let x = vec1(vec![0i32, 1, 2, 3, 4]);
    // out[(i + shift) mod n] = in[i]
    assert_value(&roll(x.clone(), 2, 0), &[5], vec![3i32, 4, 0, 1, 2]);
    assert_value(&roll(x.clone(), -2, 0), &[5], vec![2i32, 3, 4, 0, 1]);
    assert_value(&roll(x.clone(), 0, 0), &[5], vec![0i32, 1, 2, 3, 4]);
    assert_value(&roll(x.clone(), 7, 0), &[5], vec![3i32, 4, 0, 1, 2]);
    assert_value(&roll(x.clone(), -12, 0), &[5], vec![2i32, 3, 4, 0, 1]);
    assert_value(&roll(x.clone(), i64::MIN, 0), &[5], vec![3i32, 4, 0, 1, 2]);
    assert_value(&roll(x, i64::MAX, 0), &[5], vec![3i32, 4, 0, 1, 2]);
}

#[test]
fn roll_along_one_axis_of_a_matrix_and_over_empty_axes() {
    let x = iota::<f64>(&[2, 3]);
    assert_value(
        &roll(x.clone(), 1, 1),
        &[2, 3],
        vec![2.0f64, 0.0, 1.0, 5.0, 3.0, 4.0],
    );
    assert_value(
        &roll(x, -1, 0),
        &[2, 3],
        vec![3.0f64, 4.0, 5.0, 0.0, 1.0, 2.0],
    );
    assert_value(
        &roll(arr::<f64>(&[0, 3], vec![]), 5, 0),
        &[0, 3],
        Vec::<f64>::new(),
    );
}

/// A [2, 3] value 0..6 stored column-major.
fn column_major() -> Value {
    let a = ndarray::Array::from_shape_vec((2, 3).f(), vec![0i32, 3, 1, 4, 2, 5]).expect("fits");
    Value::from(a.into_dyn())
}

#[test]
fn column_major_inputs_are_read_in_logical_order() {
    let x = column_major();
    assert_value(
        &eval1(&Op::Reshape(vec![6]), &x),
        &[6],
        vec![0i32, 1, 2, 3, 4, 5],
    );
    assert_value(
        &eval1(&Op::Slice(spec(&[(1, -1, 2), (0, 2, 2)])), &x),
        &[2, 2],
        vec![3i32, 5, 0, 2],
    );
    assert_value(
        &eval1(
            &Op::Reduce {
                op: flumen_frontend::op::ReduceOp::Sum,
                axes: vec![1],
                keepdims: false,
            },
            &x,
        ),
        &[2],
        vec![3i32, 12],
    );
    let transposed = eval(&Op::Transpose(vec![1, 0]), &[x]);
    assert_value(&transposed, &[3, 2], vec![0i32, 3, 1, 4, 2, 5]);
    let standard = match &transposed {
        Value::I32(a) => a.is_standard_layout(),
        _ => false,
    };
    assert!(standard, "outputs are in standard layout");
}
