//! The gradient rule of every op: one arm per [`Op`] variant in an exhaustive `match` (no
//! wildcard), so a new op does not compile until it declares its gradient or says that it
//! has none. A rule maps the gradient `dy` of the node's output to one entry per input:
//! `None` means no gradient flows to that input.

use super::{composite, elementwise, layout, linalg};
use crate::Tensor;
use crate::error::Result;
use crate::op::{Op, ReduceOp};

/// Gradients of a node's inputs, one entry per input.
pub(super) type Grads = Vec<Option<Tensor>>;

/// What a rule sees of the node being differentiated.
pub(super) struct Ctx<'a> {
    /// The node's inputs.
    pub inputs: &'a [Tensor],
    /// The node's output.
    pub out: &'a Tensor,
    /// The gradient of the output (same type as `out`).
    pub dy: &'a Tensor,
    /// Which inputs need a gradient (float, on a path to an `x`); rules may skip the others.
    pub need: &'a [bool],
}

impl Ctx<'_> {
    /// The gradient of input `i`, built by `f` only when that input needs one.
    pub fn maybe(&self, i: usize, f: impl FnOnce() -> Result<Tensor>) -> Result<Option<Tensor>> {
        if self.need[i] {
            f().map(Some)
        } else {
            Ok(None)
        }
    }

    /// No gradient for any input.
    pub fn none(&self) -> Grads {
        vec![None; self.inputs.len()]
    }

    /// The input `i` (shorthand).
    pub fn x(&self, i: usize) -> &Tensor {
        &self.inputs[i]
    }
}

/// The gradients of the inputs of a node with op `op`.
pub(super) fn input_gradients(op: &Op, cx: &Ctx) -> Result<Grads> {
    let dy = cx.dy;
    match op {
        // Sources have no inputs.
        Op::Constant(_) | Op::Placeholder { .. } | Op::Random { .. } | Op::NoOp => Ok(vec![]),
        // A variable is a leaf: its initializer is not differentiated.
        Op::Variable { .. } => Ok(cx.none()),
        // A read passes the gradient to its variable.
        Op::Read => Ok(vec![Some(dy.clone())]),
        // Assigns are not differentiable (TF1 too): neither the variable nor the value.
        Op::Assign | Op::AssignSlice(_) => Ok(cx.none()),
        // Samples and indices are integers: no gradient to the logits/inputs.
        Op::Categorical { .. } | Op::ArgReduce { .. } | Op::TopK { .. } | Op::ArgSort { .. } => {
            Ok(cx.none())
        }
        Op::Unary(u) => Ok(vec![if cx.need[0] {
            elementwise::unary(*u, cx.x(0), cx.out, dy)?
        } else {
            None
        }]),
        Op::Binary(b) => elementwise::binary(*b, cx),
        // To the values, not the condition.
        Op::Select => {
            let cond = cx.x(0);
            Ok(vec![
                None,
                cx.maybe(1, || unbroadcast(cond.select(dy, 0.0)?, cx.x(1).shape()))?,
                cx.maybe(2, || unbroadcast(cond.select(0.0, dy)?, cx.x(2).shape()))?,
            ])
        }
        // Between floats the gradient is cast back; to or from integers/bools nothing flows.
        Op::Cast(to) => {
            let from = cx.x(0).dtype();
            if from.is_float() && to.is_float() {
                Ok(vec![cx.maybe(0, || dy.cast(from))?])
            } else {
                Ok(cx.none())
            }
        }
        Op::Reduce { op, axes, .. } => Ok(vec![cx.maybe(0, || reduce(*op, axes, cx))?]),
        // The adjoint of a cumulative sum is the cumulative sum in the other direction.
        Op::Cumsum {
            axis,
            exclusive,
            reverse,
        } => {
            Ok(vec![cx.maybe(0, || {
                dy.cumsum(*axis as i64, *exclusive, !reverse)
            })?])
        }
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => matmul(*transpose_a, *transpose_b, cx),
        Op::Solve => linalg::solve(cx),
        Op::Expm => linalg::expm(cx),
        Op::Reshape(_) => Ok(vec![cx.maybe(0, || dy.reshape(&dims(cx.x(0).shape())))?]),
        Op::Transpose(perm) => Ok(vec![cx.maybe(0, || {
            let mut inverse = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            dy.transpose(&inverse)
        })?]),
        Op::BroadcastTo(_) => Ok(vec![
            cx.maybe(0, || unbroadcast(dy.clone(), cx.x(0).shape()))?,
        ]),
        Op::Slice(spec) => Ok(vec![
            cx.maybe(0, || layout::slice(dy, spec, cx.x(0).shape()))?,
        ]),
        Op::Concat { axis } => layout::concat(*axis, cx),
        Op::Pad { paddings, .. } => Ok(vec![cx.maybe(0, || layout::unpad(dy, paddings))?]),
        Op::Tile(multiples) => Ok(vec![cx.maybe(0, || layout::untile(dy, multiples))?]),
        Op::Roll { shift, axis } => Ok(vec![cx.maybe(0, || dy.roll(-shift, *axis as i64))?]),
        // Gather's adjoint sums the gradient back into the gathered rows (repeated indices
        // accumulate); the indices get none.
        Op::Gather { axis, batch_dims } => Ok(vec![
            cx.maybe(0, || {
                dy.scatter_add(cx.x(1), *axis, *batch_dims, cx.x(0).shape()[*axis])
            })?,
            None,
        ]),
        Op::ScatterAdd {
            axis, batch_dims, ..
        } => Ok(vec![
            cx.maybe(0, || dy.gather(cx.x(1), *axis as i64, *batch_dims))?,
            None,
        ]),
        Op::Composite(c) => composite::gradients(c, cx),
    }
}

/// A shape as the `i64`s `reshape` takes.
pub(super) fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// Undo numpy broadcasting: sum `grad` over the axes along which an operand of `shape` was
/// broadcast (leading axes and axes of length 1), then give it that shape.
pub(super) fn unbroadcast(grad: Tensor, shape: &[usize]) -> Result<Tensor> {
    if grad.shape() == shape {
        return Ok(grad);
    }
    let lead = grad.rank().saturating_sub(shape.len());
    let axes: Vec<i64> = (0..grad.rank())
        .filter(|&i| i < lead || (shape[i - lead] == 1 && grad.shape()[i] != 1))
        .map(|i| i as i64)
        .collect();
    let summed = if axes.is_empty() {
        grad
    } else {
        grad.sum(&axes, false)?
    };
    if summed.shape() == shape {
        Ok(summed)
    } else {
        summed.reshape(&dims(shape))
    }
}

/// Sum, mean, max/min (to the extremal positions, split evenly among ties) and product.
fn reduce(op: ReduceOp, axes: &[usize], cx: &Ctx) -> Result<Tensor> {
    let x = cx.x(0);
    let mut kept = x.shape().to_vec();
    for &a in axes {
        kept[a] = 1;
    }
    let dy = cx.dy.reshape(&dims(&kept))?;
    match op {
        ReduceOp::Sum => dy.broadcast_to(x.shape()),
        ReduceOp::Mean => {
            let count: usize = axes.iter().map(|&a| x.shape()[a]).product();
            (dy / count as f64)?.broadcast_to(x.shape())
        }
        ReduceOp::Max | ReduceOp::Min => {
            let extremum = cx.out.reshape(&dims(&kept))?;
            let mask = x.equal(&extremum)?.cast(x.dtype())?;
            let ties = mask.sum(&dims(axes), true)?;
            &mask * &(dy / &ties)?
        }
        ReduceOp::Prod => layout::prod(x, axes, &dy),
    }
}

/// `C = op(A)·op(B)`: each operand's gradient is a product of `dC` with the other operand,
/// transposed to match; broadcast batch axes are summed away.
fn matmul(ta: bool, tb: bool, cx: &Ctx) -> Result<Grads> {
    let (a, b, dy) = (cx.x(0), cx.x(1), cx.dy);
    let da = cx.maybe(0, || {
        let d = match (ta, tb) {
            (false, false) => dy.matmul_t(b, false, true)?, // dC·Bᵀ
            (false, true) => dy.matmul_t(b, false, false)?, // dC·B
            (true, false) => b.matmul_t(dy, false, true)?,  // B·dCᵀ
            (true, true) => b.matmul_t(dy, true, true)?,    // Bᵀ·dCᵀ
        };
        unbroadcast(d, a.shape())
    })?;
    let db = cx.maybe(1, || {
        let d = match (ta, tb) {
            (false, false) => a.matmul_t(dy, true, false)?, // Aᵀ·dC
            (false, true) => dy.matmul_t(a, true, false)?,  // dCᵀ·A
            (true, false) => a.matmul_t(dy, false, false)?, // A·dC
            (true, true) => dy.matmul_t(a, true, true)?,    // dCᵀ·Aᵀ
        };
        unbroadcast(d, b.shape())
    })?;
    Ok(vec![da, db])
}
