//! Weight initializers: seeded random subgraphs used as variables' initial values.

use crate::dtype::DType;
use crate::error::{BuildError, GraphError, Result};
use crate::{Graph, Tensor};

/// Keras' correction for a normal truncated at two standard deviations: the standard
/// deviation of a standard normal truncated to `[-2, 2]`.
const TRUNCATED_STDDEV: f64 = 0.879_625_661_034_239_8;

/// How a weight tensor is initialised. The random initializers build one seeded random
/// op; `fan_in` and `fan_out` are computed from the shape by [`fans`].
#[derive(Clone, Debug, PartialEq)]
pub enum Initializer {
    /// All zeros.
    Zeros,
    /// Every element equal to the constant.
    Constant(f64),
    /// Normal samples.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        stddev: f64,
    },
    /// Normal samples redrawn when farther than two standard deviations from the mean.
    TruncatedNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation before truncation.
        stddev: f64,
    },
    /// Keras' `he_normal`: a truncated normal (redrawn beyond 2σ) with standard deviation
    /// `√(2 / fan_in) / 0.87962566103423978`, so that the truncated samples have standard
    /// deviation `√(2 / fan_in)`.
    HeNormal,
    /// Keras' `glorot_uniform`: uniform on `±√(6 / (fan_in + fan_out))`.
    GlorotUniform,
}

/// Keras' `(fan_in, fan_out)` of a weight shape: a scalar has `(1, 1)`, a vector `(n, n)`;
/// otherwise the last two axes are `(inputs, outputs)` and any leading axes form the
/// receptive field that multiplies both.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [lead @ .., fan_in, fan_out] => {
            let field: usize = lead.iter().product();
            (fan_in * field, fan_out * field)
        }
    }
}

impl Initializer {
    /// Build the initial-value tensor of `shape` and `dtype` (a float dtype for the random
    /// initializers). `seed` fixes the random stream; `None` derives one from the graph seed.
    #[track_caller]
    pub fn build(
        &self,
        g: &Graph,
        shape: &[usize],
        dtype: DType,
        seed: Option<u64>,
    ) -> Result<Tensor> {
        let random = !matches!(self, Initializer::Zeros | Initializer::Constant(_));
        if random && !dtype.is_float() {
            return Err(GraphError::Build {
                op: "initializer".into(),
                node: format!("{self:?}"),
                kind: BuildError::DTypeMismatch {
                    dtypes: vec![dtype],
                    expected: "a float dtype (f32 or f64) for a random initializer".into(),
                    hint: None,
                },
                location: None,
            });
        }
        let (fan_in, fan_out) = fans(shape);
        match *self {
            Initializer::Zeros => g.zeros(shape, dtype),
            Initializer::Constant(c) => g.fill(shape, c, dtype),
            Initializer::Normal { mean, stddev } => {
                g.random_normal(shape, mean, stddev, dtype, seed)
            }
            Initializer::TruncatedNormal { mean, stddev } => {
                g.truncated_normal(shape, mean, stddev, dtype, seed)
            }
            Initializer::HeNormal => {
                let stddev = (2.0 / fan_in.max(1) as f64).sqrt() / TRUNCATED_STDDEV;
                g.truncated_normal(shape, 0.0, stddev, dtype, seed)
            }
            Initializer::GlorotUniform => {
                let limit = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
                g.random_uniform(shape, -limit, limit, dtype, seed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{Distribution, Op};

    #[test]
    fn fans_follow_keras() {
        assert_eq!(fans(&[]), (1, 1));
        assert_eq!(fans(&[5]), (5, 5));
        assert_eq!(fans(&[4, 3]), (4, 3));
        assert_eq!(fans(&[3, 3, 2, 8]), (18, 72));
    }

    #[test]
    fn he_normal_and_glorot_parameters() {
        let g = Graph::new();
        let he = Initializer::HeNormal
            .build(&g, &[8, 2], DType::F64, Some(3))
            .unwrap();
        match he.op() {
            Op::Random {
                dist: Distribution::TruncatedNormal { mean, stddev },
                seed,
                ..
            } => {
                assert_eq!((mean, seed), (0.0, 3));
                assert!((stddev * TRUNCATED_STDDEV - 0.5).abs() < 1e-15);
            }
            op => panic!("expected truncated_normal, got {op:?}"),
        }
        let gl = Initializer::GlorotUniform
            .build(&g, &[2, 4], DType::F32, None)
            .unwrap();
        assert!(matches!(
            gl.op(),
            Op::Random { dist: Distribution::Uniform { low, high }, .. } if high == 1.0 && low == -1.0
        ));
        let err = Initializer::HeNormal
            .build(&g, &[2], DType::I32, None)
            .unwrap_err();
        assert!(err.to_string().contains("i32"), "{err}");
    }
}
