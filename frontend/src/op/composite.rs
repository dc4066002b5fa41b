//! Composite ops: ops defined by a function that builds them from primitives.
//!
//! A composite is a node in the graph (so the compiler, the dumps and the gradient code can
//! see it), declared here once: its name, arity, attributes and its `build` function. Its
//! shape/dtype rule is derived by building it on a scratch graph; the interpreter evaluates
//! it by building it; the `canonicalize` pass replaces it by what `build` makes; its gradient
//! is the gradient of that expansion unless `autodiff` declares a dedicated rule.
//!
//! `build` uses primitives only (never another composite), so one expansion step leaves no
//! composite behind. The DSL methods that create these nodes live in `dsl/nn.rs`.
//!
//! Losses are per example: they reduce the last axis and return one value per leading
//! index; weighting and reduction (`Reduction`) are applied on top by the DSL.

use super::Arity;
use super::attrs::AttrValue;
use crate::Tensor;
use crate::dtype::DType;
use crate::error::{BuildError, GraphError, Result};

/// Every composite op.
#[derive(Clone, Debug, PartialEq)]
pub enum Composite {
    /// `exp(x - max(x)) / Σ exp(x - max(x))` along `axis`.
    Softmax {
        /// The normalised axis.
        axis: usize,
    },
    /// `x - max(x) - ln Σ exp(x - max(x))` along `axis` (stable for large logits).
    LogSoftmax {
        /// The normalised axis.
        axis: usize,
    },
    /// Inputs (logits, labels) of equal float type `[..., classes]`: the per-example loss
    /// `-Σ labels · log_softmax(logits)` over the last axis, shape `[...]`.
    SoftmaxCrossEntropy,
    /// Inputs (logits `[..., classes]`, integer labels `[...]`): the per-example loss
    /// `-log_softmax(logits)[label]`, shape `[...]`. Labels out of range are a run-time error.
    SparseSoftmaxCrossEntropy,
    /// Inputs (probabilities, labels) of equal float type: the per-example mean over the last
    /// axis of `-(y·ln p + (1-y)·ln(1-p))` with `p` clipped to `[eps, 1-eps]` (Keras).
    BinaryCrossEntropy {
        /// The clipping margin (Keras: 1e-7).
        eps: f64,
    },
    /// Inputs (predictions, targets) of equal float type: the per-example mean over the last
    /// axis of `(pred - target)²`.
    MeanSquaredError,
    /// `(x - mean) / √(var + eps)` over the last axis (biased variance); with `affine`, two
    /// more inputs `gamma` and `beta` of shape `[last]` give `· gamma + beta`.
    LayerNorm {
        /// Added to the variance.
        eps: f64,
        /// Whether `gamma` and `beta` are inputs 1 and 2.
        affine: bool,
    },
    /// `x / √max(Σ x², eps)` along `axis` (TF's `l2_normalize`).
    L2Normalize {
        /// The normalised axis.
        axis: usize,
        /// Lower bound of the squared norm.
        eps: f64,
    },
    /// Inverted dropout. Inputs (x, noise) of equal type, `noise` uniform on `[0, 1)`:
    /// `noise >= rate ? x / (1 - rate) : 0`. The noise is an input (a seeded random op built
    /// by `Tensor::dropout`) so that the gradient sees the same mask as the forward pass.
    Dropout {
        /// The probability of dropping an element, in `[0, 1)`.
        rate: f64,
    },
}

impl Composite {
    /// The op name in the text IR.
    pub fn name(&self) -> &'static str {
        match self {
            Composite::Softmax { .. } => "softmax",
            Composite::LogSoftmax { .. } => "log_softmax",
            Composite::SoftmaxCrossEntropy => "softmax_cross_entropy",
            Composite::SparseSoftmaxCrossEntropy => "sparse_softmax_cross_entropy",
            Composite::BinaryCrossEntropy { .. } => "binary_cross_entropy",
            Composite::MeanSquaredError => "mean_squared_error",
            Composite::LayerNorm { .. } => "layer_norm",
            Composite::L2Normalize { .. } => "l2_normalize",
            Composite::Dropout { .. } => "dropout",
        }
    }

    /// How many data inputs it takes.
    pub fn arity(&self) -> Arity {
        match self {
            Composite::Softmax { .. }
            | Composite::LogSoftmax { .. }
            | Composite::L2Normalize { .. } => Arity::Fixed(1),
            Composite::SoftmaxCrossEntropy
            | Composite::SparseSoftmaxCrossEntropy
            | Composite::BinaryCrossEntropy { .. }
            | Composite::MeanSquaredError
            | Composite::Dropout { .. } => Arity::Fixed(2),
            Composite::LayerNorm { affine, .. } => Arity::Fixed(if *affine { 3 } else { 1 }),
        }
    }

    /// Whether its expansion contains stateful (random) ops.
    pub fn is_stateful(&self) -> bool {
        match self {
            Composite::Softmax { .. }
            | Composite::LogSoftmax { .. }
            | Composite::SoftmaxCrossEntropy
            | Composite::SparseSoftmaxCrossEntropy
            | Composite::BinaryCrossEntropy { .. }
            | Composite::MeanSquaredError
            | Composite::LayerNorm { .. }
            | Composite::L2Normalize { .. } => false,
            // The noise is an input: the random op is its own (stateful) node.
            Composite::Dropout { .. } => false,
        }
    }

    /// Its attributes by name (see [`attrs`](super::attrs)).
    pub fn attrs(&self) -> Vec<(&'static str, AttrValue)> {
        use AttrValue::{Bool, Float, Int};
        match self {
            Composite::Softmax { axis } | Composite::LogSoftmax { axis } => {
                vec![("axis", Int(*axis as i64))]
            }
            Composite::SoftmaxCrossEntropy
            | Composite::SparseSoftmaxCrossEntropy
            | Composite::MeanSquaredError => vec![],
            Composite::BinaryCrossEntropy { eps } => vec![("eps", Float(*eps))],
            Composite::LayerNorm { eps, affine } => {
                vec![("eps", Float(*eps)), ("affine", Bool(*affine))]
            }
            Composite::L2Normalize { axis, eps } => {
                vec![("axis", Int(*axis as i64)), ("eps", Float(*eps))]
            }
            Composite::Dropout { rate } => vec![("rate", Float(*rate))],
        }
    }

    /// Rebuild from a text-IR name and attributes; `None` when `name` is not a composite.
    pub(crate) fn from_attrs(
        name: &str,
        take: &mut dyn FnMut(&str) -> Result<AttrValue, String>,
    ) -> Option<Result<Composite, String>> {
        Self::parse(name, &mut Attrs { op: name, take }).transpose()
    }

    fn parse(name: &str, a: &mut Attrs<'_>) -> Result<Option<Composite>, String> {
        Ok(Some(match name {
            "softmax" => Composite::Softmax {
                axis: a.usize("axis")?,
            },
            "log_softmax" => Composite::LogSoftmax {
                axis: a.usize("axis")?,
            },
            "softmax_cross_entropy" => Composite::SoftmaxCrossEntropy,
            "sparse_softmax_cross_entropy" => Composite::SparseSoftmaxCrossEntropy,
            "binary_cross_entropy" => Composite::BinaryCrossEntropy {
                eps: a.float("eps")?,
            },
            "mean_squared_error" => Composite::MeanSquaredError,
            "layer_norm" => Composite::LayerNorm {
                eps: a.float("eps")?,
                affine: a.bool("affine")?,
            },
            "l2_normalize" => Composite::L2Normalize {
                axis: a.usize("axis")?,
                eps: a.float("eps")?,
            },
            "dropout" => Composite::Dropout {
                rate: a.float("rate")?,
            },
            _ => return Ok(None),
        }))
    }

    /// An error about this composite's inputs.
    fn error(&self, kind: BuildError) -> GraphError {
        GraphError::Build {
            op: self.name().to_string(),
            node: self.name().to_string(),
            kind,
            location: None,
        }
    }

    /// Check the input count, float dtypes and rank >= 1 of input 0, and (for ops with a
    /// second input of the same kind) that input 1 matches input 0's type.
    fn check_inputs(&self, inputs: &[Tensor]) -> Result<()> {
        if !self.arity().accepts(inputs.len()) {
            return Err(self.error(BuildError::Arity {
                got: inputs.len(),
                expected: self.arity().describe(),
            }));
        }
        let x = &inputs[0];
        if !x.dtype().is_float() {
            return Err(self.error(BuildError::DTypeMismatch {
                dtypes: vec![x.dtype()],
                expected: "a float dtype (f32 or f64) for input 0".into(),
                hint: Some("cast the input to f32 or f64 first".into()),
            }));
        }
        if x.rank() == 0 {
            return Err(self.error(BuildError::ShapeMismatch {
                shapes: vec![vec![]],
                expected: "input 0 of rank >= 1".into(),
            }));
        }
        let same_as_input0 = match self {
            Composite::SoftmaxCrossEntropy
            | Composite::BinaryCrossEntropy { .. }
            | Composite::MeanSquaredError
            | Composite::Dropout { .. } => true,
            Composite::Softmax { .. }
            | Composite::LogSoftmax { .. }
            | Composite::SparseSoftmaxCrossEntropy
            | Composite::LayerNorm { .. }
            | Composite::L2Normalize { .. } => false,
        };
        if same_as_input0 && inputs[1].ty() != x.ty() {
            return Err(self.error(BuildError::ShapeMismatch {
                shapes: vec![x.shape().to_vec(), inputs[1].shape().to_vec()],
                expected: format!(
                    "input 1 of the same type as input 0 ({}), got {}",
                    x.ty(),
                    inputs[1].ty()
                ),
            }));
        }
        Ok(())
    }

    /// Build the composite from primitives applied to `inputs` (in their graph).
    pub fn build(&self, inputs: &[Tensor]) -> Result<Tensor> {
        self.check_inputs(inputs)?;
        let x = &inputs[0];
        let last = -1;
        match self {
            Composite::Softmax { axis } => {
                let e = shifted(x, *axis as i64)?.exp()?;
                &e / &e.sum(&[*axis as i64], true)?
            }
            Composite::LogSoftmax { axis } => log_softmax(x, *axis as i64),
            Composite::SoftmaxCrossEntropy => (&inputs[1] * &log_softmax(x, last)?)?
                .sum(&[last], false)?
                .neg(),
            Composite::SparseSoftmaxCrossEntropy => {
                let labels = &inputs[1];
                self.check_sparse_labels(x, labels)?;
                let picked =
                    log_softmax(x, last)?.take_along_last_axis(&labels.expand_dims(-1)?)?;
                picked.squeeze(&[-1])?.neg()
            }
            Composite::BinaryCrossEntropy { eps } => {
                let y = &inputs[1];
                let p = x.clip(*eps, 1.0 - eps)?;
                let pos = (y * &p.log()?)?;
                let neg = ((1.0f64 - y)? * (1.0f64 - &p)?.log()?)?;
                (pos + neg)?.mean(&[last], false)?.neg()
            }
            Composite::MeanSquaredError => (x - &inputs[1])?.square()?.mean(&[last], false),
            Composite::LayerNorm { eps, affine } => {
                if *affine {
                    self.check_affine(x, &inputs[1..])?;
                }
                let centered = (x - &x.mean(&[last], true)?)?;
                let var = centered.square()?.mean(&[last], true)?;
                let normed = (&centered * &(var + *eps)?.rsqrt()?)?;
                if *affine {
                    (&normed * &inputs[1])? + &inputs[2]
                } else {
                    Ok(normed)
                }
            }
            Composite::L2Normalize { axis, eps } => {
                let sq = x.square()?.sum(&[*axis as i64], true)?;
                x * &sq.maximum(*eps)?.rsqrt()?
            }
            Composite::Dropout { rate } => {
                if !(0.0..1.0).contains(rate) {
                    return Err(self.error(BuildError::Attribute(format!(
                        "rate must be in [0, 1), got {rate}"
                    ))));
                }
                let keep = inputs[1].greater_equal(*rate)?;
                keep.select(&(x * (1.0 / (1.0 - rate)))?, 0.0)
            }
        }
    }

    /// Layer norm's `gamma` and `beta`: of the input's dtype and shape `[last axis]`.
    fn check_affine(&self, x: &Tensor, params: &[Tensor]) -> Result<()> {
        let d = x.shape()[x.rank() - 1];
        for (name, p) in ["gamma", "beta"].iter().zip(params) {
            if p.shape() != [d] || p.dtype() != x.dtype() {
                return Err(self.error(BuildError::ShapeMismatch {
                    shapes: vec![x.shape().to_vec(), p.shape().to_vec()],
                    expected: format!(
                        "{name} of type {}[{d}] (the last axis of the input), got {}",
                        x.dtype(),
                        p.ty()
                    ),
                }));
            }
        }
        Ok(())
    }

    /// Sparse labels: an integer tensor shaped like the logits without their last axis.
    fn check_sparse_labels(&self, logits: &Tensor, labels: &Tensor) -> Result<()> {
        if !matches!(labels.dtype(), DType::I32 | DType::I64) {
            return Err(self.error(BuildError::DTypeMismatch {
                dtypes: vec![logits.dtype(), labels.dtype()],
                expected: "integer class ids (i32 or i64) as labels".into(),
                hint: Some("cast the labels to i32 or i64".into()),
            }));
        }
        if labels.shape() != &logits.shape()[..logits.rank() - 1] {
            return Err(self.error(BuildError::ShapeMismatch {
                shapes: vec![logits.shape().to_vec(), labels.shape().to_vec()],
                expected: "labels shaped like the logits without their last (class) axis".into(),
            }));
        }
        Ok(())
    }
}

/// `x - max(x)` along `axis`, the max held constant for differentiation (softmax and
/// log-softmax do not depend on it).
fn shifted(x: &Tensor, axis: i64) -> Result<Tensor> {
    x - &x.max(&[axis], true)?.stop_gradient()?
}

/// `x - max(x) - ln Σ exp(x - max(x))` along `axis`, from primitives.
fn log_softmax(x: &Tensor, axis: i64) -> Result<Tensor> {
    let s = shifted(x, axis)?;
    &s - &s.exp()?.sum(&[axis], true)?.log()?
}

/// Typed access to a composite's text-IR attributes.
struct Attrs<'a> {
    op: &'a str,
    take: &'a mut dyn FnMut(&str) -> Result<AttrValue, String>,
}

impl Attrs<'_> {
    fn wrong(&self, key: &str, what: &str, got: &AttrValue) -> String {
        format!("{}: attribute `{key}` must be {what}, got {got:?}", self.op)
    }

    fn usize(&mut self, key: &str) -> Result<usize, String> {
        match (self.take)(key)? {
            AttrValue::Int(i) if i >= 0 => Ok(i as usize),
            other => Err(self.wrong(key, "a non-negative integer", &other)),
        }
    }

    fn float(&mut self, key: &str) -> Result<f64, String> {
        match (self.take)(key)? {
            AttrValue::Float(x) => Ok(x),
            AttrValue::Int(i) => Ok(i as f64),
            other => Err(self.wrong(key, "a float", &other)),
        }
    }

    fn bool(&mut self, key: &str) -> Result<bool, String> {
        match (self.take)(key)? {
            AttrValue::Bool(b) => Ok(b),
            other => Err(self.wrong(key, "a bool", &other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn all() -> Vec<Composite> {
        vec![
            Composite::Softmax { axis: 1 },
            Composite::LogSoftmax { axis: 0 },
            Composite::SoftmaxCrossEntropy,
            Composite::SparseSoftmaxCrossEntropy,
            Composite::BinaryCrossEntropy { eps: 1e-7 },
            Composite::MeanSquaredError,
            Composite::LayerNorm {
                eps: 1e-3,
                affine: true,
            },
            Composite::L2Normalize {
                axis: 2,
                eps: 1e-12,
            },
            Composite::Dropout { rate: 0.25 },
        ]
    }

    #[test]
    fn attributes_round_trip() {
        for c in all() {
            let mut map: BTreeMap<String, AttrValue> = c
                .attrs()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            let back = Composite::from_attrs(c.name(), &mut |k: &str| {
                map.remove(k).ok_or_else(|| format!("missing {k}"))
            })
            .expect("a composite name")
            .expect("valid attributes");
            assert_eq!(back, c);
            assert!(map.is_empty(), "{}: unused attributes {map:?}", c.name());
        }
        assert!(Composite::from_attrs("add", &mut |_| Err("none".into())).is_none());
    }

    #[test]
    fn mistyped_attribute_names_op_and_key() {
        let err = Composite::from_attrs("dropout", &mut |_| Ok(AttrValue::Bool(true)))
            .expect("a composite")
            .unwrap_err();
        assert!(err.contains("dropout") && err.contains("`rate`"), "{err}");
    }
}
