//! Gradient rules of the composites (exhaustive over [`Composite`]): dedicated rules where
//! they are shorter and numerically better, otherwise the gradient of the expansion.

use super::backprop;
use super::rules::{Ctx, Grads};
use crate::Tensor;
use crate::error::Result;
use crate::op::Composite;

/// The gradients of a composite node's inputs.
pub(super) fn gradients(c: &Composite, cx: &Ctx) -> Result<Grads> {
    let (x, y, dy) = (cx.x(0), cx.out, cx.dy);
    match c {
        // dx = y ⊙ (dy − Σ dy ⊙ y)
        Composite::Softmax { axis } => {
            let a = *axis as i64;
            Ok(vec![
                cx.maybe(0, || y * &(dy - &(dy * y)?.sum(&[a], true)?)?)?,
            ])
        }
        // dx = dy − softmax(x) · Σ dy
        Composite::LogSoftmax { axis } => {
            let a = *axis as i64;
            Ok(vec![
                cx.maybe(0, || dy - &(y.exp()? * &dy.sum(&[a], true)?)?)?,
            ])
        }
        // d/dlogits = (softmax · Σ labels − labels) · dy (= softmax − labels for
        // distributions); d/dlabels = −log_softmax · dy.
        Composite::SoftmaxCrossEntropy => {
            let labels = cx.x(1);
            let dy = dy.expand_dims(-1)?;
            Ok(vec![
                cx.maybe(0, || {
                    let mass = labels.sum(&[-1], true)?;
                    ((x.softmax(-1)? * &mass)? - labels)? * &dy
                })?,
                cx.maybe(1, || (x.log_softmax(-1)? * &dy)?.neg())?,
            ])
        }
        // d/dlogits = (softmax − one_hot(labels)) · dy; integer labels get none.
        Composite::SparseSoftmaxCrossEntropy => {
            let classes = x.shape()[x.rank() - 1];
            Ok(vec![
                cx.maybe(0, || {
                    let one_hot = cx.x(1).one_hot(classes, x.dtype())?;
                    (x.softmax(-1)? - &one_hot)? * &dy.expand_dims(-1)?
                })?,
                None,
            ])
        }
        Composite::BinaryCrossEntropy { .. }
        | Composite::MeanSquaredError
        | Composite::LayerNorm { .. }
        | Composite::L2Normalize { .. }
        | Composite::Dropout { .. } => expansion(c, cx),
    }
}

/// Differentiate the composite's expansion, built on identity copies of the inputs: the
/// copies have no path between them, so each input slot gets its partial derivative even
/// when the same tensor (or one derived from another) is passed twice.
fn expansion(c: &Composite, cx: &Ctx) -> Result<Grads> {
    let copies = cx
        .inputs
        .iter()
        .map(Tensor::identity)
        .collect::<Result<Vec<_>>>()?;
    let out = c.build(&copies)?;
    let wanted: Vec<Tensor> = copies
        .iter()
        .zip(cx.need)
        .filter(|(_, need)| **need)
        .map(|(t, _)| t.clone())
        .collect();
    let mut grads = backprop(&[out], &wanted, vec![cx.dy.clone()])?.into_iter();
    Ok(cx
        .need
        .iter()
        .map(|&need| if need { grads.next().flatten() } else { None })
        .collect())
}
