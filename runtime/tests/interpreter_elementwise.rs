//! Interpreter tests for elementwise ops: unary, binary (every dtype, broadcasting corner
//! cases, integer wrapping, division and modulo rules), select and cast.

mod interpreter_support;

use flumen_frontend::op::{BinaryOp, Op, UnaryOp};
use flumen_frontend::{DType, Value};
use interpreter_support::*;

fn binary(op: BinaryOp, a: Value, b: Value) -> Value {
    eval(&Op::Binary(op), &[a, b])
}

fn unary(op: UnaryOp, x: Value) -> Value {
    eval(&Op::Unary(op), &[x])
}

#[test]
fn add_on_every_numeric_dtype() {
    assert_value(
        &binary(
            BinaryOp::Add,
            vec1(vec![1.5f32, -2.0]),
            vec1(vec![0.25f32, 2.0]),
        ),
        &[2],
        vec![1.75f32, 0.0],
    );
    assert_value(
        &binary(
            BinaryOp::Add,
            vec1(vec![1.5f64, 1e300]),
            vec1(vec![0.25f64, 1e300]),
        ),
        &[2],
        vec![1.75f64, 2e300],
    );
    assert_value(
        &binary(BinaryOp::Add, vec1(vec![i32::MAX, -5]), vec1(vec![1i32, 3])),
        &[2],
        vec![i32::MIN, -2],
    );
    assert_value(
        &binary(
            BinaryOp::Add,
            vec1(vec![i64::MAX, 1 << 40]),
            vec1(vec![1i64, 1 << 40]),
        ),
        &[2],
        vec![i64::MIN, 1 << 41],
    );
    assert_value(
        &binary(BinaryOp::Add, vec1(vec![250u8, 1]), vec1(vec![10u8, 2])),
        &[2],
        vec![4u8, 3],
    );
}

#[test]
fn f32_arithmetic_is_computed_in_f64_and_rounded_once() {
    // 16777216 + 1 is not representable in f32; the f64 sum rounds (ties to even) back down.
    assert_value(
        &binary(BinaryOp::Add, vec1(vec![16_777_216f32]), vec1(vec![1f32])),
        &[1],
        vec![16_777_216f32],
    );
    let x = 0.1f32;
    let got = binary(BinaryOp::Mul, vec1(vec![x]), vec1(vec![3f32]));
    assert_value(&got, &[1], vec![(x as f64 * 3.0) as f32]);
}

#[test]
fn sub_mul_wrap_for_integers() {
    assert_value(
        &binary(BinaryOp::Sub, vec1(vec![3u8]), vec1(vec![5u8])),
        &[1],
        vec![254u8],
    );
    assert_value(
        &binary(BinaryOp::Mul, vec1(vec![16u8]), vec1(vec![17u8])),
        &[1],
        vec![16u8],
    );
    assert_value(
        &binary(BinaryOp::Mul, vec1(vec![1i32 << 30]), vec1(vec![4i32])),
        &[1],
        vec![0i32],
    );
    assert_value(
        &binary(BinaryOp::Sub, vec1(vec![i64::MIN]), vec1(vec![1i64])),
        &[1],
        vec![i64::MAX],
    );
}

#[test]
fn scalar_broadcasts_against_matrix() {
    let m = arr(&[2, 3], vec![1i32, 2, 3, 4, 5, 6]);
    assert_value(
        &binary(BinaryOp::Mul, m.clone(), Value::scalar(10i32)),
        &[2, 3],
        vec![10i32, 20, 30, 40, 50, 60],
    );
    // Scalar on the left of a non-commutative op.
    assert_value(
        &binary(BinaryOp::Sub, Value::scalar(10i32), m),
        &[2, 3],
        vec![9i32, 8, 7, 6, 5, 4],
    );
}

#[test]
fn column_and_row_broadcast_to_a_matrix() {
    let col = arr(&[3, 1], vec![0i64, 10, 20]);
    let row = arr(&[1, 4], vec![1i64, 2, 3, 4]);
    assert_value(
        &binary(BinaryOp::Add, col, row),
        &[3, 4],
        vec![1i64, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24],
    );
}

#[test]
fn lower_rank_operand_aligns_with_trailing_axes() {
    let m = arr(&[2, 1, 3], vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let v = arr(&[2, 3], vec![10.0f64, 20.0, 30.0, 40.0, 50.0, 60.0]);
    assert_value(
        &binary(BinaryOp::Add, m, v),
        &[2, 2, 3],
        vec![
            11.0f64, 22.0, 33.0, 41.0, 52.0, 63.0, 14.0, 25.0, 36.0, 44.0, 55.0, 66.0,
        ],
    );
}

#[test]
fn zero_size_dimensions_broadcast() {
    let empty = arr::<f32>(&[0, 3], vec![]);
    assert_value(
        &binary(BinaryOp::Add, empty.clone(), vec1(vec![1f32, 2.0, 3.0])),
        &[0, 3],
        Vec::<f32>::new(),
    );
    // A length-1 axis broadcasts to length 0.
    assert_value(
        &binary(BinaryOp::Mul, empty, arr(&[1, 1], vec![2f32])),
        &[0, 3],
        Vec::<f32>::new(),
    );
    assert_value(
        &binary(
            BinaryOp::Less,
            arr::<i32>(&[2, 0], vec![]),
            arr(&[2, 1], vec![1i32, 2]),
        ),
        &[2, 0],
        Vec::<bool>::new(),
    );
}

#[test]
fn integer_division_truncates_and_division_by_zero_gives_zero() {
    assert_value(
        &binary(
            BinaryOp::Div,
            vec1(vec![7i32, -7, 7, -7, 5, i32::MIN]),
            vec1(vec![2i32, 2, -2, -2, 0, -1]),
        ),
        &[6],
        vec![3i32, -3, -3, 3, 0, i32::MIN],
    );
    assert_value(
        &binary(BinaryOp::Div, vec1(vec![200u8, 9]), vec1(vec![0u8, 4])),
        &[2],
        vec![0u8, 2],
    );
    assert_value(
        &binary(BinaryOp::Div, vec1(vec![i64::MAX]), vec1(vec![0i64])),
        &[1],
        vec![0i64],
    );
}

#[test]
fn float_division_by_zero_follows_ieee() {
    let got = binary(
        BinaryOp::Div,
        vec1(vec![1f32, -1.0, 0.0]),
        vec1(vec![0f32, 0.0, 0.0]),
    );
    assert_value(&got, &[3], vec![f32::INFINITY, f32::NEG_INFINITY, f32::NAN]);
}

#[test]
fn modulo_takes_the_sign_of_the_divisor() {
    assert_value(
        &binary(
            BinaryOp::Mod,
            vec1(vec![7i32, -7, 7, -7, 6, 5]),
            vec1(vec![3i32, 3, -3, -3, 3, 0]),
        ),
        &[6],
        vec![1i32, 2, -2, -1, 0, 0],
    );
    assert_value(
        &binary(
            BinaryOp::Mod,
            vec1(vec![-7.5f64, 7.5, 6.0]),
            vec1(vec![2.0f64, -2.0, 3.0]),
        ),
        &[3],
        vec![0.5f64, -0.5, 0.0],
    );
    assert_value(
        &binary(BinaryOp::Mod, vec1(vec![250u8]), vec1(vec![7u8])),
        &[1],
        vec![5u8],
    );
}

#[test]
fn integer_pow_with_negative_exponents() {
    assert_value(
        &binary(
            BinaryOp::Pow,
            vec1(vec![3i64, 2, 1, -1, -1, 0, 2]),
            vec1(vec![4i64, -1, -5, -3, -2, 0, 62]),
        ),
        &[7],
        vec![81i64, 0, 1, -1, 1, 1, 1 << 62],
    );
    assert_value(
        &binary(BinaryOp::Pow, vec1(vec![2u8]), vec1(vec![9u8])),
        &[1],
        vec![0u8],
    );
    assert_value(
        &binary(BinaryOp::Pow, vec1(vec![2f32]), vec1(vec![-2f32])),
        &[1],
        vec![0.25f32],
    );
}

#[test]
fn maximum_and_minimum_propagate_nan_and_order_signed_zeros() {
    let a = vec1(vec![1.0f64, f64::NAN, 2.0, -0.0, 0.0]);
    let b = vec1(vec![3.0f64, 1.0, f64::NAN, 0.0, -0.0]);
    assert_value(
        &binary(BinaryOp::Maximum, a.clone(), b.clone()),
        &[5],
        vec![3.0f64, f64::NAN, f64::NAN, 0.0, 0.0],
    );
    assert_value(
        &binary(BinaryOp::Minimum, a, b),
        &[5],
        vec![1.0f64, f64::NAN, f64::NAN, -0.0, -0.0],
    );
    assert_value(
        &binary(
            BinaryOp::Maximum,
            vec1(vec![-3i32, 7]),
            vec1(vec![2i32, -9]),
        ),
        &[2],
        vec![2i32, 7],
    );
}

#[test]
fn comparisons_output_bool_on_every_dtype() {
    use BinaryOp::*;
    let cases: [(BinaryOp, [bool; 3]); 6] = [
        (Equal, [false, true, false]),
        (NotEqual, [true, false, true]),
        (Less, [true, false, false]),
        (LessEqual, [true, true, false]),
        (Greater, [false, false, true]),
        (GreaterEqual, [false, true, true]),
    ];
    for (op, expected) in cases {
        let inputs: [(Value, Value); 6] = [
            (vec1(vec![1f32, 2.0, 3.0]), vec1(vec![2f32, 2.0, 2.0])),
            (vec1(vec![1f64, 2.0, 3.0]), vec1(vec![2f64, 2.0, 2.0])),
            (vec1(vec![-1i32, 2, 3]), vec1(vec![2i32, 2, 2])),
            (vec1(vec![-1i64, 2, 3]), vec1(vec![2i64, 2, 2])),
            (vec1(vec![1u8, 2, 255]), vec1(vec![2u8, 2, 2])),
            (vec1(vec![false, true, true]), vec1(vec![true, true, false])),
        ];
        for (a, b) in inputs {
            let dtype = a.dtype();
            let got = binary(op, a, b);
            assert!(
                got.bit_eq(&vec1(expected.to_vec())),
                "{op:?} on {dtype}: {got:?}"
            );
        }
    }
}

#[test]
fn comparisons_are_exact_for_large_i64_and_false_for_nan() {
    let big = 1i64 << 62;
    assert_value(
        &binary(
            BinaryOp::Less,
            vec1(vec![big, big + 1]),
            vec1(vec![big + 1, big]),
        ),
        &[2],
        vec![true, false],
    );
    assert_value(
        &binary(BinaryOp::Equal, vec1(vec![big]), vec1(vec![big + 1])),
        &[1],
        vec![false],
    );
    let nan = vec1(vec![f32::NAN; 3]);
    let x = vec1(vec![f32::NAN, 0.0, 1.0]);
    assert_value(
        &binary(BinaryOp::Equal, nan.clone(), x.clone()),
        &[3],
        vec![false; 3],
    );
    assert_value(
        &binary(BinaryOp::NotEqual, nan.clone(), x.clone()),
        &[3],
        vec![true; 3],
    );
    assert_value(
        &binary(BinaryOp::GreaterEqual, nan, x),
        &[3],
        vec![false; 3],
    );
}

#[test]
fn logical_ops_broadcast() {
    let col = arr(&[2, 1], vec![false, true]);
    let row = arr(&[1, 2], vec![false, true]);
    assert_value(
        &binary(BinaryOp::LogicalAnd, col.clone(), row.clone()),
        &[2, 2],
        vec![false, false, false, true],
    );
    assert_value(
        &binary(BinaryOp::LogicalOr, col, row),
        &[2, 2],
        vec![false, true, true, true],
    );
    assert_value(
        &unary(UnaryOp::LogicalNot, vec1(vec![true, false])),
        &[2],
        vec![false, true],
    );
}

#[test]
fn integer_unary_ops_wrap() {
    let x = vec1(vec![i32::MIN, -3, 0, 5]);
    assert_value(
        &unary(UnaryOp::Neg, x.clone()),
        &[4],
        vec![i32::MIN, 3, 0, -5],
    );
    assert_value(
        &unary(UnaryOp::Abs, x.clone()),
        &[4],
        vec![i32::MIN, 3, 0, 5],
    );
    assert_value(
        &unary(UnaryOp::Sign, x.clone()),
        &[4],
        vec![-1i32, -1, 0, 1],
    );
    assert_value(&unary(UnaryOp::Relu, x.clone()), &[4], vec![0i32, 0, 0, 5]);
    assert_value(&unary(UnaryOp::Square, x), &[4], vec![0i32, 9, 0, 25]);
    assert_value(
        &unary(UnaryOp::Neg, vec1(vec![0u8, 1, 200])),
        &[3],
        vec![0u8, 255, 56],
    );
    assert_value(&unary(UnaryOp::Square, vec1(vec![16u8])), &[1], vec![0u8]);
}

#[test]
fn float_unary_ops() {
    let x = vec1(vec![-1.5f64, -0.0, 0.5, 2.5, f64::NAN]);
    assert_value(
        &unary(UnaryOp::Sign, x.clone()),
        &[5],
        vec![-1.0f64, -0.0, 1.0, 1.0, f64::NAN],
    );
    assert_value(
        &unary(UnaryOp::Relu, x.clone()),
        &[5],
        vec![0.0f64, -0.0, 0.5, 2.5, f64::NAN],
    );
    assert_value(
        &unary(UnaryOp::Round, x.clone()),
        &[5],
        vec![-2.0f64, -0.0, 0.0, 2.0, f64::NAN],
    );
    assert_value(
        &unary(UnaryOp::Floor, x.clone()),
        &[5],
        vec![-2.0f64, -0.0, 0.0, 2.0, f64::NAN],
    );
    assert_value(
        &unary(UnaryOp::Ceil, x.clone()),
        &[5],
        vec![-1.0f64, -0.0, 1.0, 3.0, f64::NAN],
    );
    assert_value(
        &unary(UnaryOp::Abs, x),
        &[5],
        vec![1.5f64, 0.0, 0.5, 2.5, f64::NAN],
    );
    assert_value(
        &unary(UnaryOp::Round, vec1(vec![1.5f32, -2.5, 3.5])),
        &[3],
        vec![2.0f32, -2.0, 4.0],
    );
    let y = vec1(vec![0.0f64, 1.0, 4.0]);
    assert_value(
        &unary(UnaryOp::Sqrt, y.clone()),
        &[3],
        vec![0.0f64, 1.0, 2.0],
    );
    assert_value(
        &unary(UnaryOp::Rsqrt, y.clone()),
        &[3],
        vec![f64::INFINITY, 1.0, 0.5],
    );
    assert_value(
        &unary(UnaryOp::Reciprocal, y.clone()),
        &[3],
        vec![f64::INFINITY, 1.0, 0.25],
    );
    assert_value(
        &unary(UnaryOp::Log, y.clone()),
        &[3],
        vec![f64::NEG_INFINITY, 0.0, 4f64.ln()],
    );
    assert_value(
        &unary(UnaryOp::Exp, y.clone()),
        &[3],
        vec![1.0f64, 1f64.exp(), 4f64.exp()],
    );
    assert_value(
        &unary(UnaryOp::Sigmoid, y.clone()),
        &[3],
        vec![
            0.5f64,
            1.0 / (1.0 + (-1f64).exp()),
            1.0 / (1.0 + (-4f64).exp()),
        ],
    );
    assert_value(
        &unary(UnaryOp::Tanh, y.clone()),
        &[3],
        vec![0.0f64, 1f64.tanh(), 4f64.tanh()],
    );
    assert_value(&unary(UnaryOp::Square, y), &[3], vec![0.0f64, 1.0, 16.0]);
    assert_close(
        &unary(UnaryOp::Softplus, vec1(vec![0.0f64, 1000.0, -1000.0])),
        &[3],
        &[2f64.ln(), 1000.0, 0.0],
        1e-15,
    );
    assert_close(
        &unary(UnaryOp::Gelu, vec1(vec![0.0f64, 1.0, -1.0])),
        &[3],
        &[0.0, 0.841_344_746_068_542_9, -0.158_655_253_931_457_05],
        1e-12,
    );
    assert_close(
        &unary(UnaryOp::Erf, vec1(vec![0.5f64])),
        &[1],
        &[0.520_499_877_813_046_5],
        1e-14,
    );
    assert_close(
        &unary(UnaryOp::Log1p, vec1(vec![1e-20f64])),
        &[1],
        &[1e-20],
        1e-15,
    );
    assert_close(
        &unary(UnaryOp::Sin, vec1(vec![std::f64::consts::FRAC_PI_2])),
        &[1],
        &[1.0],
        1e-15,
    );
    assert_close(
        &unary(UnaryOp::Cos, vec1(vec![std::f64::consts::PI])),
        &[1],
        &[-1.0],
        1e-15,
    );
}

#[test]
fn f32_unary_rounds_the_f64_result_once() {
    let got = unary(UnaryOp::Sqrt, vec1(vec![2f32, 3.0]));
    assert_value(&got, &[2], vec![2f64.sqrt() as f32, 3f64.sqrt() as f32]);
    let got = unary(UnaryOp::Exp, vec1(vec![0.1f32]));
    assert_value(&got, &[1], vec![(0.1f32 as f64).exp() as f32]);
}

#[test]
fn identity_and_stop_gradient_pass_every_dtype_through() {
    for x in [
        vec1(vec![true, false]),
        vec1(vec![1u8, 2]),
        vec1(vec![f32::NAN, -0.0]),
    ] {
        assert!(unary(UnaryOp::Identity, x.clone()).bit_eq(&x));
        assert!(unary(UnaryOp::StopGradient, x.clone()).bit_eq(&x));
    }
}

#[test]
fn float_only_unary_on_an_integer_is_an_error() {
    let err = try_eval_unchecked(&Op::Unary(UnaryOp::Exp), &[vec1(vec![1i32])]);
    assert!(err.is_err());
}

/// Evaluate with a made-up output type (the op's rule rejects the inputs).
fn try_eval_unchecked(op: &Op, inputs: &[Value]) -> Result<Value, String> {
    let refs: Vec<&Value> = inputs.iter().collect();
    let out = flumen_frontend::op::TensorType::new(inputs[0].dtype(), inputs[0].shape());
    flumen_runtime::eval_op(op, &refs, &out, Default::default())
}

#[test]
fn mismatched_dtypes_are_an_error_not_a_panic() {
    let err = try_eval_unchecked(
        &Op::Binary(BinaryOp::Add),
        &[vec1(vec![1i32]), vec1(vec![1.0f32])],
    )
    .unwrap_err();
    assert!(err.contains("i32") && err.contains("f32"), "{err}");
    let err = try_eval_unchecked(
        &Op::Binary(BinaryOp::Add),
        &[vec1(vec![1i32, 2, 3]), vec1(vec![1i32, 2])],
    )
    .unwrap_err();
    assert!(err.contains("shape"), "{err}");
}

#[test]
fn select_broadcasts_condition_and_branches() {
    let cond = arr(&[2, 1], vec![true, false]);
    let a = Value::scalar(1.5f32);
    let b = arr(&[1, 3], vec![-1f32, -2.0, -3.0]);
    assert_value(
        &eval(&Op::Select, &[cond, a, b]),
        &[2, 3],
        vec![1.5f32, 1.5, 1.5, -1.0, -2.0, -3.0],
    );
    let cond = vec1(vec![false, true, false]);
    assert_value(
        &eval(
            &Op::Select,
            &[cond, vec1(vec![1u8, 2, 3]), Value::scalar(9u8)],
        ),
        &[3],
        vec![9u8, 2, 9],
    );
}

#[test]
fn cast_edge_cases() {
    let cast = |x: Value, to: DType| eval(&Op::Cast(to), &[x]);
    assert_value(
        &cast(
            vec1(vec![3.7f32, -3.7, f32::NAN, 1e10, -1e10, f32::INFINITY]),
            DType::I32,
        ),
        &[6],
        vec![3i32, -3, 0, i32::MAX, i32::MIN, i32::MAX],
    );
    assert_value(
        &cast(vec1(vec![-1i32, 256, 257]), DType::U8),
        &[3],
        vec![255u8, 0, 1],
    );
    assert_value(
        &cast(vec1(vec![-1.5f64, 300.0, f64::NAN]), DType::U8),
        &[3],
        vec![0u8, 255, 0],
    );
    assert_value(
        &cast(vec1(vec![(1i64 << 32) + 7]), DType::I32),
        &[1],
        vec![7i32],
    );
    assert_value(
        &cast(vec1(vec![0.0f64, 0.5, -0.0, f64::NAN]), DType::Bool),
        &[4],
        vec![false, true, false, true],
    );
    assert_value(
        &cast(vec1(vec![0u8, 2]), DType::Bool),
        &[2],
        vec![false, true],
    );
    assert_value(
        &cast(vec1(vec![true, false]), DType::F32),
        &[2],
        vec![1f32, 0.0],
    );
    assert_value(&cast(vec1(vec![255u8]), DType::I64), &[1], vec![255i64]);
    assert_value(
        &cast(vec1(vec![16_777_217i32]), DType::F32),
        &[1],
        vec![16_777_216f32],
    );
    assert_value(&cast(vec1(vec![0.1f64]), DType::F32), &[1], vec![0.1f32]);
    assert_value(
        &cast(arr::<f32>(&[0, 2], vec![]), DType::I64),
        &[0, 2],
        Vec::<i64>::new(),
    );
}
