//! Neural-network ops as composites: softmax and log-softmax, the losses (with sample
//! weights and a [`Reduction`]), layer and L2 normalisation, and dropout. Each method adds
//! one composite node (see [`Composite`]), plus the primitives that weight and reduce a loss.

use super::{build_error, resolve_axis};
use crate::Tensor;
use crate::error::{BuildError, Result};
use crate::nn::{EPSILON, Reduction};
use crate::op::{Composite, Op};

impl Tensor {
    #[track_caller]
    fn composite(&self, c: Composite, more: &[&Tensor]) -> Result<Tensor> {
        let mut inputs = vec![self];
        inputs.extend_from_slice(more);
        self.graph().add_op(Op::Composite(c), &inputs, &[], None)
    }

    #[track_caller]
    fn loss(
        &self,
        c: Composite,
        labels: &Tensor,
        weights: Option<&Tensor>,
        reduction: Reduction,
    ) -> Result<Tensor> {
        let name = c.name();
        let per_example = self.composite(c, &[labels])?;
        reduction.apply(name, &per_example, weights)
    }

    /// Softmax along `axis` (negative counts from the end).
    #[track_caller]
    pub fn softmax(&self, axis: i64) -> Result<Tensor> {
        let axis = resolve_axis("softmax", self, axis, self.rank())?;
        self.composite(Composite::Softmax { axis }, &[])
    }

    /// Log-softmax along `axis`, stable for large logits (`[1000, 0]` → `[0, -1000]`).
    #[track_caller]
    pub fn log_softmax(&self, axis: i64) -> Result<Tensor> {
        let axis = resolve_axis("log_softmax", self, axis, self.rank())?;
        self.composite(Composite::LogSoftmax { axis }, &[])
    }

    /// Softmax cross-entropy of logits `self` (`[..., classes]`) against dense labels of the
    /// same shape (e.g. one-hot rows); per-example losses `[...]`, then weighted and reduced.
    #[track_caller]
    pub fn softmax_cross_entropy(
        &self,
        labels: &Tensor,
        weights: Option<&Tensor>,
        reduction: Reduction,
    ) -> Result<Tensor> {
        self.loss(Composite::SoftmaxCrossEntropy, labels, weights, reduction)
    }

    /// Softmax cross-entropy of logits `self` (`[..., classes]`) against integer class ids
    /// `[...]` (i32 or i64); per-example losses `[...]`, then weighted and reduced.
    #[track_caller]
    pub fn sparse_softmax_cross_entropy(
        &self,
        labels: &Tensor,
        weights: Option<&Tensor>,
        reduction: Reduction,
    ) -> Result<Tensor> {
        self.loss(
            Composite::SparseSoftmaxCrossEntropy,
            labels,
            weights,
            reduction,
        )
    }

    /// Binary cross-entropy of probabilities `self` (e.g. a sigmoid's output) against labels
    /// of the same shape, the probabilities clipped to `[ε, 1-ε]` with Keras' ε = 1e-7; the
    /// per-example loss is the mean over the last axis, then weighted and reduced.
    #[track_caller]
    pub fn binary_cross_entropy(
        &self,
        labels: &Tensor,
        weights: Option<&Tensor>,
        reduction: Reduction,
    ) -> Result<Tensor> {
        let c = Composite::BinaryCrossEntropy { eps: EPSILON };
        self.loss(c, labels, weights, reduction)
    }

    /// Mean squared error of predictions `self` against targets of the same shape; the
    /// per-example loss is the mean over the last axis, then weighted and reduced.
    #[track_caller]
    pub fn mean_squared_error(
        &self,
        targets: &Tensor,
        weights: Option<&Tensor>,
        reduction: Reduction,
    ) -> Result<Tensor> {
        self.loss(Composite::MeanSquaredError, targets, weights, reduction)
    }

    /// Layer normalisation over the last axis: `(x - mean) / √(var + eps)`.
    #[track_caller]
    pub fn layer_norm(&self, eps: f64) -> Result<Tensor> {
        let c = Composite::LayerNorm { eps, affine: false };
        self.composite(c, &[])
    }

    /// Layer normalisation over the last axis followed by `· gamma + beta` (both of shape
    /// `[last]`).
    #[track_caller]
    pub fn layer_norm_affine(&self, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
        let c = Composite::LayerNorm { eps, affine: true };
        self.composite(c, &[gamma, beta])
    }

    /// `x / √max(Σ x², eps)` along `axis` (TF's `l2_normalize`, whose default eps is 1e-12).
    #[track_caller]
    pub fn l2_normalize(&self, axis: i64, eps: f64) -> Result<Tensor> {
        let axis = resolve_axis("l2_normalize", self, axis, self.rank())?;
        self.composite(Composite::L2Normalize { axis, eps }, &[])
    }

    /// Inverted dropout: each element is zeroed with probability `rate` and the rest are
    /// scaled by `1 / (1 - rate)`; a new mask on every run, the sequence fixed by `seed`
    /// (derived from the graph seed when `None`). With `rate == 0` this is an identity.
    /// The mask comes from a `random_uniform` node feeding the `dropout` composite.
    #[track_caller]
    pub fn dropout(&self, rate: f64, seed: Option<u64>) -> Result<Tensor> {
        if !(0.0..1.0).contains(&rate) {
            return Err(build_error(
                "dropout",
                self,
                BuildError::Attribute(format!("rate must be in [0, 1), got {rate}")),
            ));
        }
        if rate == 0.0 {
            return self.identity();
        }
        let noise = self
            .graph()
            .random_uniform(self.shape(), 0.0, 1.0, self.dtype(), seed)?;
        self.composite(Composite::Dropout { rate }, &[&noise])
    }
}
