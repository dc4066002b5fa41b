//! Source nodes: constants, placeholders, random tensors and groups.

use crate::dtype::{DType, Scalar};
use crate::error::{BuildError, GraphError, Result, SourceLoc};
use crate::op::{Distribution, Op};
use crate::value::Value;
use crate::{Graph, Tensor};

impl Graph {
    /// A constant tensor.
    #[track_caller]
    pub fn constant(&self, value: impl Into<Value>) -> Result<Tensor> {
        self.add_op(Op::Constant(value.into()), &[], &[], None)
    }

    /// A named constant tensor.
    #[track_caller]
    pub fn constant_named(&self, name: &str, value: impl Into<Value>) -> Result<Tensor> {
        self.add_op(Op::Constant(value.into()), &[], &[], Some(name))
    }

    /// A rank-0 constant of `dtype`; the literal must be representable in it.
    #[track_caller]
    pub fn scalar(&self, x: impl Into<Scalar>, dtype: DType) -> Result<Tensor> {
        self.fill(&[], x, dtype)
    }

    /// A constant of `shape` filled with `x`.
    #[track_caller]
    pub fn fill(&self, shape: &[usize], x: impl Into<Scalar>, dtype: DType) -> Result<Tensor> {
        let x = x.into();
        if !x.fits(dtype) {
            return Err(GraphError::Build {
                op: "constant".into(),
                node: "constant".into(),
                kind: BuildError::DTypeMismatch {
                    dtypes: vec![dtype],
                    expected: format!("a literal representable in {dtype}, got {x:?}"),
                    hint: Some("cast the tensor or use a literal of its kind".into()),
                },
                location: Some(SourceLoc(std::panic::Location::caller())),
            });
        }
        self.constant(Value::full(dtype, shape, x))
    }

    /// Zeros of `shape`.
    #[track_caller]
    pub fn zeros(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        self.fill(shape, 0i64, dtype)
    }

    /// Ones of `shape`.
    #[track_caller]
    pub fn ones(&self, shape: &[usize], dtype: DType) -> Result<Tensor> {
        self.fill(shape, 1i64, dtype)
    }

    /// `[0, 1, ..., n-1]` as a constant of `dtype`.
    #[track_caller]
    pub fn arange(&self, n: usize, dtype: DType) -> Result<Tensor> {
        let v = Value::from((0..n as i64).collect::<Vec<i64>>()).cast(dtype);
        self.constant(v)
    }

    /// A placeholder fed at run time with exactly this dtype and shape.
    #[track_caller]
    pub fn placeholder(&self, name: &str, dtype: DType, shape: &[usize]) -> Result<Tensor> {
        self.add_op(
            Op::Placeholder {
                dtype,
                shape: shape.to_vec(),
            },
            &[],
            &[],
            Some(name),
        )
    }

    fn random(
        &self,
        dist: Distribution,
        shape: &[usize],
        dtype: DType,
        seed: Option<u64>,
    ) -> Result<Tensor> {
        let seed = seed.unwrap_or_else(|| self.next_seed());
        self.add_op(
            Op::Random {
                dist,
                dtype,
                shape: shape.to_vec(),
                seed,
            },
            &[],
            &[],
            None,
        )
    }

    /// Normal random numbers; new ones on every run, the sequence fixed by `seed`
    /// (derived from the graph seed when `None`).
    #[track_caller]
    pub fn random_normal(
        &self,
        shape: &[usize],
        mean: f64,
        stddev: f64,
        dtype: DType,
        seed: Option<u64>,
    ) -> Result<Tensor> {
        self.random(Distribution::Normal { mean, stddev }, shape, dtype, seed)
    }

    /// Normal random numbers redrawn beyond two standard deviations.
    #[track_caller]
    pub fn truncated_normal(
        &self,
        shape: &[usize],
        mean: f64,
        stddev: f64,
        dtype: DType,
        seed: Option<u64>,
    ) -> Result<Tensor> {
        self.random(
            Distribution::TruncatedNormal { mean, stddev },
            shape,
            dtype,
            seed,
        )
    }

    /// Uniform random numbers on `[low, high)`.
    #[track_caller]
    pub fn random_uniform(
        &self,
        shape: &[usize],
        low: f64,
        high: f64,
        dtype: DType,
        seed: Option<u64>,
    ) -> Result<Tensor> {
        self.random(Distribution::Uniform { low, high }, shape, dtype, seed)
    }

    /// Uniform random integers on `[low, high)` (i32 or i64).
    #[track_caller]
    pub fn random_int(
        &self,
        shape: &[usize],
        low: i64,
        high: i64,
        dtype: DType,
        seed: Option<u64>,
    ) -> Result<Tensor> {
        self.random(Distribution::UniformInt { low, high }, shape, dtype, seed)
    }

    /// A node that runs `deps` (as control inputs) and outputs `true`: TF1's `group`.
    #[track_caller]
    pub fn group(&self, name: &str, deps: &[&Tensor]) -> Result<Tensor> {
        self.add_op(Op::NoOp, &[], deps, Some(name))
    }
}
