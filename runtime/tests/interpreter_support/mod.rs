//! Helpers shared by the interpreter tests: build values, evaluate one op the way the
//! executor does (output type from the op's shape rule) and compare results exactly.
#![allow(dead_code)]

use flumen_frontend::op::{Op, TensorType};
use flumen_frontend::{Element, Value};
use flumen_runtime::{EvalContext, eval_op};

/// A value of `shape` from row-major `data`.
pub fn arr<T: Element>(shape: &[usize], data: Vec<T>) -> Value {
    Value::from_vec(shape, data).expect("test data fills its shape")
}

/// A rank-1 value.
pub fn vec1<T: Element>(data: Vec<T>) -> Value {
    Value::from(data)
}

/// The output type the op's shape rule gives for `inputs`.
pub fn out_type(op: &Op, inputs: &[Value]) -> TensorType {
    let types: Vec<TensorType> = inputs
        .iter()
        .map(|v| TensorType::new(v.dtype(), v.shape()))
        .collect();
    op.infer(&types)
        .unwrap_or_else(|e| panic!("{} rejects the test inputs: {e}", op.name()))
}

/// Evaluate `op` on `inputs` at execution `counter`.
pub fn try_eval_at(op: &Op, inputs: &[Value], counter: u64) -> Result<Value, String> {
    let out = out_type(op, inputs);
    let refs: Vec<&Value> = inputs.iter().collect();
    let value = eval_op(op, &refs, &out, EvalContext { counter })?;
    assert_eq!(value.dtype(), out.dtype, "{}: output dtype", op.name());
    assert_eq!(
        value.shape(),
        out.shape.as_slice(),
        "{}: output shape",
        op.name()
    );
    Ok(value)
}

/// Evaluate `op` on `inputs` (counter 0).
pub fn try_eval(op: &Op, inputs: &[Value]) -> Result<Value, String> {
    try_eval_at(op, inputs, 0)
}

/// Evaluate `op` on `inputs`, which must succeed.
pub fn eval(op: &Op, inputs: &[Value]) -> Value {
    try_eval(op, inputs).unwrap_or_else(|e| panic!("{} failed: {e}", op.name()))
}

/// Assert `got` has dtype `T`, `shape` and exactly the elements `data`: floats compare
/// bitwise (−0.0 differs from 0.0) except that any NaN matches any NaN.
#[track_caller]
pub fn assert_value<T: Element>(got: &Value, shape: &[usize], data: Vec<T>) {
    let expected = arr(shape, data);
    let same = if got.dtype().is_float() && got.dtype() == expected.dtype() {
        got.shape() == expected.shape()
            && got
                .to_f64_vec()
                .iter()
                .zip(expected.to_f64_vec())
                .all(|(g, e)| (g.is_nan() && e.is_nan()) || g.to_bits() == e.to_bits())
    } else {
        got.bit_eq(&expected)
    };
    assert!(same, "got {got:?}\nexpected {expected:?}");
}

/// Assert a float result matches `data` within a relative tolerance.
#[track_caller]
pub fn assert_close(got: &Value, shape: &[usize], data: &[f64], rel: f64) {
    assert_eq!(got.shape(), shape, "shape of {got:?}");
    let values = got.to_f64_vec();
    assert_eq!(values.len(), data.len());
    for (i, (&g, &e)) in values.iter().zip(data).enumerate() {
        let ok = (g.is_nan() && e.is_nan()) || g == e || (g - e).abs() <= rel * e.abs().max(1e-300);
        assert!(ok, "element {i}: got {g}, expected {e} (all: {values:?})");
    }
}

/// `0, 1, 2, ...` as a value of `shape` and element type `T`.
pub fn iota<T: Element>(shape: &[usize]) -> Value {
    let n: usize = shape.iter().product();
    arr(shape, (0..n).map(|i| T::from_i64(i as i64)).collect())
}

/// Evaluate a one-input op on `x`, which must succeed.
pub fn eval1(op: &Op, x: &Value) -> Value {
    eval(op, std::slice::from_ref(x))
}

/// A small xorshift generator, so the cases are reproducible (tests add their own draws in
/// `impl Rng` blocks of their own).
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }
    /// A shape of `rank` axes of length `0..=max`.
    pub fn shape(&mut self, rank: usize, max: usize) -> Vec<usize> {
        (0..rank).map(|_| self.range(0, max + 1)).collect()
    }
}
