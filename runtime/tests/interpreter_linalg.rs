//! Interpreter tests for matmul: every dtype, transposes, batch broadcasting and
//! zero-size dimensions.

mod interpreter_support;

use flumen_frontend::Value;
use flumen_frontend::op::Op;
use interpreter_support::*;

fn matmul(a: Value, b: Value, transpose_a: bool, transpose_b: bool) -> Value {
    eval(
        &Op::MatMul {
            transpose_a,
            transpose_b,
        },
        &[a, b],
    )
}

#[test]
fn matrix_product_on_every_numeric_dtype() {
    // [[1 2 3] [4 5 6]] · [[7 8] [9 10] [11 12]] = [[58 64] [139 154]]
    let a = [1i64, 2, 3, 4, 5, 6];
    let b = [7i64, 8, 9, 10, 11, 12];
    let product = [58i64, 64, 139, 154];
    macro_rules! check {
        ($t:ty) => {
            let got = matmul(
                arr(&[2, 3], a.iter().map(|&x| x as $t).collect()),
                arr(&[3, 2], b.iter().map(|&x| x as $t).collect()),
                false,
                false,
            );
            assert_value(
                &got,
                &[2, 2],
                product.iter().map(|&x| x as $t).collect::<Vec<$t>>(),
            );
        };
    }
    check!(f32);
    check!(f64);
    check!(i32);
    check!(i64);
    // u8 wraps: 139 and 154 fit, so make a product that does not.
    check!(u8);
    let got = matmul(
        arr(&[1, 2], vec![16u8, 1]),
        arr(&[2, 1], vec![16u8, 5]),
        false,
        false,
    );
    assert_value(&got, &[1, 1], vec![5u8]);
    let got = matmul(
        arr(&[1, 2], vec![i32::MAX, 1]),
        arr(&[2, 1], vec![2i32, 2]),
        false,
        false,
    );
    assert_value(&got, &[1, 1], vec![0i32]);
}

#[test]
fn transposed_operands() {
    let a = arr(&[2, 3], vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // aᵀ·a = [[17 22 27] [22 29 36] [27 36 45]]
    assert_value(
        &matmul(a.clone(), a.clone(), true, false),
        &[3, 3],
        vec![17.0f64, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0, 45.0],
    );
    // a·aᵀ = [[14 32] [32 77]]
    assert_value(
        &matmul(a.clone(), a.clone(), false, true),
        &[2, 2],
        vec![14.0f64, 32.0, 32.0, 77.0],
    );
    // aᵀ·bᵀ with b = [[1 0] [0 1] [1 1]] (3×2): (b·a)ᵀ
    let b = arr(&[3, 2], vec![1.0f64, 0.0, 0.0, 1.0, 1.0, 1.0]);
    // b·a = [[1 2 3] [4 5 6] [5 7 9]], transposed: [[1 4 5] [2 5 7] [3 6 9]]
    assert_value(
        &matmul(a, b, true, true),
        &[3, 3],
        vec![1.0f64, 4.0, 5.0, 2.0, 5.0, 7.0, 3.0, 6.0, 9.0],
    );
}

#[test]
fn batch_axes_broadcast() {
    // a: [2, 1, 1, 2] (two row vectors), b: [3, 2, 1] (three column vectors)
    let a = arr(&[2, 1, 1, 2], vec![1i32, 2, 10, 20]);
    let b = arr(&[3, 2, 1], vec![1i32, 0, 0, 1, 1, 1]);
    // out[i, j] = a_i · b_j
    assert_value(
        &matmul(a, b, false, false),
        &[2, 3, 1, 1],
        vec![1i32, 2, 3, 10, 20, 30],
    );
    // A rank-2 operand against a batch.
    let batch = arr(&[2, 2, 2], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let identity = arr(&[2, 2], vec![0.0f32, 1.0, 1.0, 0.0]);
    assert_value(
        &matmul(batch.clone(), identity.clone(), false, false),
        &[2, 2, 2],
        vec![2.0f32, 1.0, 4.0, 3.0, 6.0, 5.0, 8.0, 7.0],
    );
    assert_value(
        &matmul(identity, batch, false, true),
        &[2, 2, 2],
        vec![2.0f32, 4.0, 1.0, 3.0, 6.0, 8.0, 5.0, 7.0],
    );
}

#[test]
fn zero_size_dimensions() {
    let got = matmul(
        arr::<f32>(&[0, 3], vec![]),
        iota::<f32>(&[3, 2]),
        false,
        false,
    );
    assert_value(&got, &[0, 2], Vec::<f32>::new());
    // An empty inner dimension gives zeros.
    let got = matmul(
        arr::<f64>(&[2, 0], vec![]),
        arr::<f64>(&[0, 3], vec![]),
        false,
        false,
    );
    assert_value(&got, &[2, 3], vec![0.0f64; 6]);
    let got = matmul(
        arr::<i64>(&[2, 0], vec![]),
        arr::<i64>(&[0, 3], vec![]),
        false,
        false,
    );
    assert_value(&got, &[2, 3], vec![0i64; 6]);
    let got = matmul(
        arr::<f32>(&[0, 2, 2], vec![]),
        iota::<f32>(&[2, 2]),
        false,
        false,
    );
    assert_value(&got, &[0, 2, 2], Vec::<f32>::new());
}

#[test]
fn f32_products_accumulate_in_f64() {
    let got = matmul(
        arr(&[1, 3], vec![1e8f32, 1.0, -1e8]),
        arr(&[3, 1], vec![1f32, 1.0, 1.0]),
        false,
        false,
    );
    assert_value(&got, &[1, 1], vec![1f32]);
}
