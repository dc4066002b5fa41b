//! Interpreter tests for reductions: reduce_* over several axes with and without keepdims,
//! empty reductions, NaN propagation, accumulation precision, argmax/argmin and cumsum.

mod interpreter_support;

use flumen_frontend::op::{ArgReduceOp, Op, ReduceOp};
use flumen_frontend::{DType, Value};
use interpreter_support::*;

fn reduce(op: ReduceOp, x: Value, axes: &[usize], keepdims: bool) -> Value {
    eval(
        &Op::Reduce {
            op,
            axes: axes.to_vec(),
            keepdims,
        },
        &[x],
    )
}

#[test]
fn sum_over_one_axis() {
    let x = arr(&[2, 3], vec![1i32, 2, 3, 4, 5, 6]);
    assert_value(
        &reduce(ReduceOp::Sum, x.clone(), &[0], false),
        &[3],
        vec![5i32, 7, 9],
    );
    assert_value(
        &reduce(ReduceOp::Sum, x.clone(), &[1], false),
        &[2],
        vec![6i32, 15],
    );
    assert_value(
        &reduce(ReduceOp::Sum, x, &[1], true),
        &[2, 1],
        vec![6i32, 15],
    );
}

#[test]
fn reduce_over_several_axes_with_keepdims() {
    // x[i, j, k] = 12i + 4j + k
    let x = iota::<f64>(&[2, 3, 4]);
    // Over axes 0 and 2: for each j, sum over i, k of (12i + 4j + k) = 8·4j + 4·12 + 2·6.
    assert_value(
        &reduce(ReduceOp::Sum, x.clone(), &[0, 2], true),
        &[1, 3, 1],
        vec![60.0f64, 92.0, 124.0],
    );
    assert_value(
        &reduce(ReduceOp::Mean, x.clone(), &[0, 2], false),
        &[3],
        vec![7.5f64, 11.5, 15.5],
    );
    assert_value(
        &reduce(ReduceOp::Max, x.clone(), &[1, 2], false),
        &[2],
        vec![11.0f64, 23.0],
    );
    assert_value(
        &reduce(ReduceOp::Min, x.clone(), &[0, 1], true),
        &[1, 1, 4],
        vec![0.0f64, 1.0, 2.0, 3.0],
    );
    assert_value(
        &reduce(ReduceOp::Sum, x.clone(), &[0, 1, 2], false),
        &[],
        vec![276.0f64],
    );
    assert_value(
        &reduce(ReduceOp::Sum, x.clone(), &[0, 1, 2], true),
        &[1, 1, 1],
        vec![276.0f64],
    );
    // Reducing no axes is the identity.
    assert!(reduce(ReduceOp::Sum, x.clone(), &[], false).bit_eq(&x));
}

#[test]
fn prod_max_min_on_integers() {
    let x = arr(&[2, 3], vec![2i64, -3, 4, 5, 0, -6]);
    assert_value(
        &reduce(ReduceOp::Prod, x.clone(), &[1], false),
        &[2],
        vec![-24i64, 0],
    );
    assert_value(
        &reduce(ReduceOp::Max, x.clone(), &[0], false),
        &[3],
        vec![5i64, 0, 4],
    );
    assert_value(
        &reduce(ReduceOp::Min, x, &[0], false),
        &[3],
        vec![2i64, -3, -6],
    );
    assert_value(
        &reduce(ReduceOp::Max, vec1(vec![3u8, 250, 7]), &[0], false),
        &[],
        vec![250u8],
    );
}

#[test]
fn integer_sums_and_products_wrap() {
    assert_value(
        &reduce(ReduceOp::Sum, vec1(vec![i32::MAX, 1]), &[0], false),
        &[],
        vec![i32::MIN],
    );
    assert_value(
        &reduce(ReduceOp::Sum, vec1(vec![200u8, 100]), &[0], false),
        &[],
        vec![44u8],
    );
    assert_value(
        &reduce(ReduceOp::Prod, vec1(vec![16u8, 16, 3]), &[0], false),
        &[],
        vec![0u8],
    );
    assert_value(
        &reduce(ReduceOp::Prod, vec1(vec![1i64 << 32, 1 << 32]), &[0], false),
        &[],
        vec![0i64],
    );
}

#[test]
fn f32_sums_accumulate_in_f64_and_round_once() {
    // In f32, 1e8 + 1 == 1e8 and the sum would be 0.
    let x = vec1(vec![1e8f32, 1.0, -1e8]);
    assert_value(
        &reduce(ReduceOp::Sum, x.clone(), &[0], false),
        &[],
        vec![1f32],
    );
    assert_value(
        &reduce(ReduceOp::Mean, x, &[0], false),
        &[],
        vec![(1.0f64 / 3.0) as f32],
    );
}

#[test]
fn empty_reductions_give_identities() {
    let ef = arr::<f32>(&[0, 3], vec![]);
    assert_value(
        &reduce(ReduceOp::Sum, ef.clone(), &[0], false),
        &[3],
        vec![0f32; 3],
    );
    assert_value(
        &reduce(ReduceOp::Prod, ef.clone(), &[0], false),
        &[3],
        vec![1f32; 3],
    );
    assert_value(
        &reduce(ReduceOp::Max, ef.clone(), &[0], false),
        &[3],
        vec![f32::NEG_INFINITY; 3],
    );
    assert_value(
        &reduce(ReduceOp::Min, ef.clone(), &[0], true),
        &[1, 3],
        vec![f32::INFINITY; 3],
    );
    let mean = reduce(ReduceOp::Mean, ef.clone(), &[0], false);
    assert!(mean.to_f64_vec().iter().all(|m| m.is_nan()), "{mean:?}");
    // Reducing the non-empty axis of an empty tensor leaves an empty result.
    assert_value(
        &reduce(ReduceOp::Sum, ef, &[1], false),
        &[0],
        Vec::<f32>::new(),
    );

    let ei = arr::<i32>(&[0], vec![]);
    assert_value(
        &reduce(ReduceOp::Max, ei.clone(), &[0], false),
        &[],
        vec![i32::MIN],
    );
    assert_value(
        &reduce(ReduceOp::Min, ei.clone(), &[0], false),
        &[],
        vec![i32::MAX],
    );
    assert_value(&reduce(ReduceOp::Sum, ei, &[0], false), &[], vec![0i32]);
    let eu = arr::<u8>(&[2, 0], vec![]);
    assert_value(
        &reduce(ReduceOp::Max, eu.clone(), &[1], false),
        &[2],
        vec![0u8, 0],
    );
    assert_value(
        &reduce(ReduceOp::Min, eu.clone(), &[1], false),
        &[2],
        vec![255u8, 255],
    );
    assert_value(&reduce(ReduceOp::Prod, eu, &[1], false), &[2], vec![1u8, 1]);
    let el = arr::<i64>(&[0], vec![]);
    assert_value(
        &reduce(ReduceOp::Max, el.clone(), &[0], false),
        &[],
        vec![i64::MIN],
    );
    assert_value(&reduce(ReduceOp::Min, el, &[0], false), &[], vec![i64::MAX]);
}

#[test]
fn max_and_min_propagate_nan() {
    let x = arr(&[2, 3], vec![1.0f64, f64::NAN, 3.0, 4.0, 5.0, 6.0]);
    assert_value(
        &reduce(ReduceOp::Max, x.clone(), &[1], false),
        &[2],
        vec![f64::NAN, 6.0],
    );
    assert_value(
        &reduce(ReduceOp::Min, x.clone(), &[1], false),
        &[2],
        vec![f64::NAN, 4.0],
    );
    assert_value(
        &reduce(ReduceOp::Max, x, &[0], false),
        &[3],
        vec![4.0f64, f64::NAN, 6.0],
    );
}

fn arg(op: ArgReduceOp, x: Value, axis: usize, dtype: DType) -> Value {
    eval(&Op::ArgReduce { op, axis, dtype }, &[x])
}

#[test]
fn argmax_and_argmin_pick_the_first_extreme() {
    let x = arr(&[2, 4], vec![1i32, 7, 7, 0, 5, 5, -2, 5]);
    assert_value(
        &arg(ArgReduceOp::ArgMax, x.clone(), 1, DType::I64),
        &[2],
        vec![1i64, 0],
    );
    assert_value(
        &arg(ArgReduceOp::ArgMin, x.clone(), 1, DType::I32),
        &[2],
        vec![3i32, 2],
    );
    assert_value(
        &arg(ArgReduceOp::ArgMax, x.clone(), 0, DType::I32),
        &[4],
        vec![1i32, 0, 0, 1],
    );
    assert_value(
        &arg(ArgReduceOp::ArgMin, x, 0, DType::I64),
        &[4],
        vec![0i64, 1, 1, 0],
    );
    assert_value(
        &arg(
            ArgReduceOp::ArgMax,
            vec1(vec![3u8, 255, 255]),
            0,
            DType::I32,
        ),
        &[],
        vec![1i32],
    );
}

#[test]
fn argmax_and_argmin_treat_nan_as_the_extreme() {
    let x = vec1(vec![1.0f32, f32::NAN, 9.0, f32::NAN, -9.0]);
    assert_value(
        &arg(ArgReduceOp::ArgMax, x.clone(), 0, DType::I64),
        &[],
        vec![1i64],
    );
    assert_value(&arg(ArgReduceOp::ArgMin, x, 0, DType::I64), &[], vec![1i64]);
    let x = vec1(vec![f64::INFINITY, f64::NEG_INFINITY, 0.0]);
    assert_value(
        &arg(ArgReduceOp::ArgMax, x.clone(), 0, DType::I64),
        &[],
        vec![0i64],
    );
    assert_value(&arg(ArgReduceOp::ArgMin, x, 0, DType::I64), &[], vec![1i64]);
}

#[test]
fn argmax_is_exact_for_large_i64() {
    let big = 1i64 << 60;
    let x = vec1(vec![big, big + 1, big]);
    assert_value(
        &arg(ArgReduceOp::ArgMax, x.clone(), 0, DType::I64),
        &[],
        vec![1i64],
    );
    assert_value(&arg(ArgReduceOp::ArgMin, x, 0, DType::I64), &[], vec![0i64]);
}

#[test]
fn argmax_over_an_axis_keeps_empty_batch() {
    let x = arr::<f32>(&[0, 3], vec![]);
    assert_value(
        &arg(ArgReduceOp::ArgMax, x, 1, DType::I64),
        &[0],
        Vec::<i64>::new(),
    );
}

fn cumsum(x: Value, axis: usize, exclusive: bool, reverse: bool) -> Value {
    eval(
        &Op::Cumsum {
            axis,
            exclusive,
            reverse,
        },
        &[x],
    )
}

#[test]
fn cumsum_in_all_four_modes() {
    let x = vec1(vec![1i64, 2, 3, 4]);
    assert_value(
        &cumsum(x.clone(), 0, false, false),
        &[4],
        vec![1i64, 3, 6, 10],
    );
    assert_value(
        &cumsum(x.clone(), 0, true, false),
        &[4],
        vec![0i64, 1, 3, 6],
    );
    assert_value(
        &cumsum(x.clone(), 0, false, true),
        &[4],
        vec![10i64, 9, 7, 4],
    );
    assert_value(&cumsum(x, 0, true, true), &[4], vec![9i64, 7, 4, 0]);
}

#[test]
fn cumsum_along_each_axis_of_a_matrix() {
    let x = arr(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_value(
        &cumsum(x.clone(), 1, false, false),
        &[2, 3],
        vec![1.0f32, 3.0, 6.0, 4.0, 9.0, 15.0],
    );
    assert_value(
        &cumsum(x, 0, true, false),
        &[2, 3],
        vec![0.0f32, 0.0, 0.0, 1.0, 2.0, 3.0],
    );
}

#[test]
fn cumsum_wraps_integers_and_accumulates_f32_in_f64() {
    assert_value(
        &cumsum(vec1(vec![200u8, 100, 1]), 0, false, false),
        &[3],
        vec![200u8, 44, 45],
    );
    assert_value(
        &cumsum(vec1(vec![i32::MAX, 1, 1]), 0, false, false),
        &[3],
        vec![i32::MAX, i32::MIN, i32::MIN + 1],
    );
    // The running sum stays in f64: 1e8 + 1 − 1e8 is exactly 1.
    assert_value(
        &cumsum(vec1(vec![1e8f32, 1.0, -1e8]), 0, false, false),
        &[3],
        vec![1e8f32, 1e8, 1.0],
    );
    assert_value(
        &cumsum(arr::<f64>(&[0, 2], vec![]), 0, false, false),
        &[0, 2],
        Vec::<f64>::new(),
    );
}
