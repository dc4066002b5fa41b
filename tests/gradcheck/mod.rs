//! Finite-difference gradient checks shared by the gradient, composite and optimizer tests.
//!
//! [`check_gradient`] builds `y = build(g, xs)` on f64 placeholders, reduces it to the scalar
//! `L = Σ y ⊙ r` with fixed random weights `r` (so every entry of the Jacobian matters),
//! and compares `gradients(L, xs)` with central differences
//! `(L(x + h·e_k) − L(x − h·e_k)) / 2h`, `h = 1e-6`, element by element. The error measure
//! is `|analytic − numeric| / max(1, |analytic|, |numeric|)` (relative for large values,
//! absolute below 1) and must stay below `1e-6`. A `None` gradient counts as zeros.
#![allow(dead_code)]

use flumen::{DType, Graph, Result, Session, Tensor, Value};
use flumen_frontend::gradients;

/// Finite-difference step.
pub const H: f64 = 1e-6;
/// Largest accepted error (see the module docs for the formula).
pub const TOL: f64 = 1e-6;

/// A small deterministic generator (SplitMix64) for test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` uniform numbers.
    pub fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
}

/// An f64 value of `shape` from a flat vector.
pub fn f64s(shape: &[usize], data: Vec<f64>) -> Value {
    Value::from_vec(shape, data).expect("shape matches data")
}

/// Check `build`'s gradients with inputs uniform on `[-2, 2)`; returns the analytic
/// gradients (flattened) and the input values.
#[track_caller]
pub fn check_gradient(
    build: impl Fn(&Graph, &[Tensor]) -> Result<Tensor>,
    input_shapes: &[&[usize]],
    seed: u64,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    check_gradient_in(build, input_shapes, seed, (-2.0, 2.0))
}

/// [`check_gradient`] with inputs uniform on `range`.
#[track_caller]
pub fn check_gradient_in(
    build: impl Fn(&Graph, &[Tensor]) -> Result<Tensor>,
    input_shapes: &[&[usize]],
    seed: u64,
    range: (f64, f64),
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let mut rng = Rng::new(seed);
    let inputs: Vec<Vec<f64>> = input_shapes
        .iter()
        .map(|s| rng.vec(s.iter().product(), range.0, range.1))
        .collect();
    let analytic = check_gradient_at(build, input_shapes, &inputs, seed);
    (analytic, inputs)
}

/// [`check_gradient`] at given input values.
#[track_caller]
pub fn check_gradient_at(
    build: impl Fn(&Graph, &[Tensor]) -> Result<Tensor>,
    input_shapes: &[&[usize]],
    inputs: &[Vec<f64>],
    seed: u64,
) -> Vec<Vec<f64>> {
    let mut rng = Rng::new(seed ^ 0x5EED);
    let g = Graph::new();
    let xs: Vec<Tensor> = input_shapes
        .iter()
        .enumerate()
        .map(|(i, s)| g.placeholder(&format!("x{i}"), DType::F64, s))
        .collect::<Result<_>>()
        .unwrap();
    let y = build(&g, &xs).unwrap_or_else(|e| panic!("building the function: {e}"));
    assert_eq!(
        y.dtype(),
        DType::F64,
        "the checked function must return f64"
    );
    let weights = g
        .constant(f64s(y.shape(), rng.vec(y.numel(), 0.5, 1.5)))
        .unwrap();
    let loss = (&y * &weights).unwrap().sum_all().unwrap();
    let refs: Vec<&Tensor> = xs.iter().collect();
    let grads = gradients(&[&loss], &refs, None).unwrap();
    let mut sess = Session::new(&g);
    let feeds = |values: &[Vec<f64>]| -> Vec<(&Tensor, Value)> {
        xs.iter()
            .zip(values)
            .map(|(x, v)| (x, f64s(x.shape(), v.clone())))
            .collect()
    };
    let fetches: Vec<&Tensor> = grads.iter().flatten().collect();
    let mut fetched = sess
        .run(&feeds(inputs), &fetches)
        .unwrap_or_else(|e| panic!("running the gradients: {e}"))
        .into_iter();
    let analytic: Vec<Vec<f64>> = grads
        .iter()
        .zip(inputs)
        .map(|(gr, x)| match gr {
            Some(_) => fetched.next().unwrap().to_f64_vec(),
            None => vec![0.0; x.len()],
        })
        .collect();
    let mut eval = |values: &[Vec<f64>]| -> f64 {
        sess.run(&feeds(values), &[&loss]).unwrap()[0].to_f64_vec()[0]
    };
    for (i, x) in inputs.iter().enumerate() {
        for k in 0..x.len() {
            let mut plus = inputs.to_vec();
            plus[i][k] += H;
            let mut minus = inputs.to_vec();
            minus[i][k] -= H;
            let numeric = (eval(&plus) - eval(&minus)) / (2.0 * H);
            let a = analytic[i][k];
            let err = (a - numeric).abs() / 1f64.max(a.abs()).max(numeric.abs());
            assert!(
                err < TOL,
                "input {i} element {k}: analytic {a} vs numeric {numeric} (error {err:e}) at {:?}",
                inputs[i]
            );
        }
    }
    analytic
}

/// Run `fetches` with no feeds on a fresh session and return them as f64 vectors.
pub fn eval(g: &Graph, fetches: &[&Tensor]) -> Vec<Vec<f64>> {
    Session::new(g)
        .run(&[], fetches)
        .unwrap_or_else(|e| panic!("run: {e}"))
        .iter()
        .map(Value::to_f64_vec)
        .collect()
}

/// Assert two slices agree within `tol` (absolute).
#[track_caller]
pub fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "lengths differ: {got:?} vs {want:?}");
    for (k, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= tol,
            "element {k}: {a} vs {b} (tolerance {tol}); got {got:?}, want {want:?}"
        );
    }
}
