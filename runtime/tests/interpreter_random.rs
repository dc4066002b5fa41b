//! Interpreter tests for random ops: the numbers are the frontend's Philox samples, the
//! same for the same (seed, counter) and different for another counter.

mod interpreter_support;

use flumen_frontend::op::random::sample_categorical;
use flumen_frontend::op::{Distribution, Op};
use flumen_frontend::{DType, Value};
use interpreter_support::*;

fn random(dist: Distribution, dtype: DType, shape: &[usize], seed: u64, counter: u64) -> Value {
    let op = Op::Random {
        dist,
        dtype,
        shape: shape.to_vec(),
        seed,
    };
    try_eval_at(&op, &[], counter).expect("random ops do not fail")
}

const NORMAL: Distribution = Distribution::Normal {
    mean: 1.0,
    stddev: 2.0,
};

#[test]
fn element_i_is_the_distributions_sample_i() {
    let got = random(NORMAL, DType::F64, &[2, 3], 42, 5);
    let expected: Vec<f64> = (0..6).map(|i| NORMAL.sample(42, 5, i)).collect();
    assert_value(&got, &[2, 3], expected.clone());
    let got = random(NORMAL, DType::F32, &[2, 3], 42, 5);
    assert_value(&got, &[2, 3], expected.iter().map(|&x| x as f32).collect());
}

#[test]
fn same_seed_and_counter_repeat_and_another_counter_differs() {
    for dist in [
        NORMAL,
        Distribution::TruncatedNormal {
            mean: 0.0,
            stddev: 1.0,
        },
        Distribution::Uniform {
            low: -1.0,
            high: 1.0,
        },
    ] {
        let a = random(dist, DType::F32, &[16], 7, 0);
        assert!(a.bit_eq(&random(dist, DType::F32, &[16], 7, 0)), "{dist:?}");
        let b = random(dist, DType::F32, &[16], 7, 1);
        assert!(!a.bit_eq(&b), "{dist:?}: counter 0 and 1 gave {a:?}");
        let c = random(dist, DType::F32, &[16], 8, 0);
        assert!(!a.bit_eq(&c), "{dist:?}: seeds 7 and 8 gave {a:?}");
    }
}

#[test]
fn uniform_and_truncated_normal_stay_in_range() {
    let u = random(
        Distribution::Uniform {
            low: 2.0,
            high: 3.0,
        },
        DType::F64,
        &[1000],
        1,
        0,
    );
    assert!(u.to_f64_vec().iter().all(|x| (2.0..3.0).contains(x)));
    let t = random(
        Distribution::TruncatedNormal {
            mean: 10.0,
            stddev: 1.0,
        },
        DType::F64,
        &[1000],
        1,
        0,
    );
    assert!(t.to_f64_vec().iter().all(|x| (8.0..=12.0).contains(x)));
}

#[test]
fn uniform_int_gives_exact_integers_of_the_dtype() {
    let dist = Distribution::UniformInt { low: -5, high: 5 };
    let expected: Vec<i64> = (0..20).map(|i| dist.sample(3, 2, i) as i64).collect();
    assert!(expected.iter().all(|x| (-5..5).contains(x)));
    assert_value(
        &random(dist, DType::I64, &[4, 5], 3, 2),
        &[4, 5],
        expected.clone(),
    );
    assert_value(
        &random(dist, DType::I32, &[20], 3, 2),
        &[20],
        expected.iter().map(|&x| x as i32).collect(),
    );
}

#[test]
fn empty_and_scalar_shapes() {
    assert_value(
        &random(NORMAL, DType::F32, &[0, 4], 1, 0),
        &[0, 4],
        Vec::<f32>::new(),
    );
    assert_value(
        &random(NORMAL, DType::F64, &[], 1, 0),
        &[],
        vec![NORMAL.sample(1, 0, 0)],
    );
}

fn categorical(logits: Value, num_samples: usize, dtype: DType, counter: u64) -> Value {
    let op = Op::Categorical {
        num_samples,
        dtype,
        seed: 11,
    };
    try_eval_at(&op, &[logits], counter).expect("valid logits")
}

#[test]
fn categorical_samples_only_classes_with_weight() {
    let inf = f32::INFINITY;
    let logits = arr(&[2, 3], vec![0.0f32, -inf, -inf, -inf, -inf, 5.0]);
    assert_value(
        &categorical(logits, 4, DType::I32, 0),
        &[2, 4],
        vec![0i32, 0, 0, 0, 2, 2, 2, 2],
    );
}

#[test]
fn categorical_sample_b_s_uses_index_b_times_num_samples_plus_s() {
    let rows = [[0.5f64, -1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0]];
    let logits = arr(&[2, 4], rows.iter().flatten().copied().collect());
    let (num_samples, counter) = (5, 3);
    let expected: Vec<i64> = (0..2)
        .flat_map(|b| {
            (0..num_samples).map(move |s| {
                sample_categorical(&rows[b], 11, counter, (b * num_samples + s) as u64) as i64
            })
        })
        .collect();
    assert_value(
        &categorical(logits.clone(), num_samples, DType::I64, counter),
        &[2, 5],
        expected,
    );
    // Same counter, same samples; another counter, other samples.
    let a = categorical(logits.clone(), 32, DType::I64, 0);
    assert!(a.bit_eq(&categorical(logits.clone(), 32, DType::I64, 0)));
    assert!(!a.bit_eq(&categorical(logits, 32, DType::I64, 1)));
}

#[test]
fn categorical_on_an_empty_batch_or_no_samples() {
    assert_value(
        &categorical(arr::<f64>(&[0, 3], vec![]), 2, DType::I64, 0),
        &[0, 2],
        Vec::<i64>::new(),
    );
    assert_value(
        &categorical(iota::<f32>(&[2, 3]), 0, DType::I32, 0),
        &[2, 0],
        Vec::<i32>::new(),
    );
}
