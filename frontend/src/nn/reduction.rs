//! How per-example losses become the value a loss method returns (Keras semantics).

use crate::Tensor;
use crate::dsl::build_error;
use crate::error::{BuildError, Result};
use crate::op::broadcast_shapes;

/// How a loss combines its per-example values `l` with optional sample weights `w`
/// (which must broadcast to the shape of `l`; absent weights are 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The per-example weighted losses `w·l`, shaped like `l`.
    None,
    /// `Σ w·l`, a scalar.
    Sum,
    /// `Σ w·l / n` where `n` is the number of per-example losses (not `Σ w`), a scalar:
    /// Keras' default `SUM_OVER_BATCH_SIZE`.
    #[default]
    SumOverBatchSize,
}

impl Reduction {
    /// Weight and reduce the per-example losses of `op`.
    #[track_caller]
    pub fn apply(self, op: &str, losses: &Tensor, weights: Option<&Tensor>) -> Result<Tensor> {
        let weighted = match weights {
            None => losses.clone(),
            Some(w) => {
                if broadcast_shapes(w.shape(), losses.shape()).as_deref() != Some(losses.shape()) {
                    return Err(build_error(
                        op,
                        losses,
                        BuildError::ShapeMismatch {
                            shapes: vec![losses.shape().to_vec(), w.shape().to_vec()],
                            expected: "sample weights that broadcast to the per-example losses"
                                .into(),
                        },
                    ));
                }
                (losses * w)?
            }
        };
        match self {
            Reduction::None => Ok(weighted),
            Reduction::Sum => weighted.sum_all(),
            // An empty batch gives 0 rather than 0/0 (Keras divides "no NaN").
            Reduction::SumOverBatchSize => weighted.sum_all()? / weighted.numel().max(1) as f64,
        }
    }
}
