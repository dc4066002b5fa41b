//! Gradient rules of the elementwise unary and binary ops (exhaustive over [`UnaryOp`] and
//! [`BinaryOp`]).

use super::rules::{Ctx, Grads, unbroadcast};
use crate::Tensor;
use crate::error::Result;
use crate::op::{BinaryOp, UnaryOp};
use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI, PI};

/// The gradient of `y = u(x)` given `dy`, or `None` when `u` passes no gradient.
pub(super) fn unary(u: UnaryOp, x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
    use UnaryOp::*;
    let d = match u {
        Neg => dy.neg()?,
        Abs => (dy * &x.sign()?)?,
        Exp => (dy * y)?,
        Log => (dy / x)?,
        Log1p => (dy / &(x + 1.0)?)?,
        Sqrt => ((dy / y)? * 0.5)?,
        // d/dx x^(-1/2) = -y³/2
        Rsqrt => ((dy * &(y.square()? * y)?)? * -0.5)?,
        Square => ((dy * x)? * 2.0)?,
        Reciprocal => (dy * &y.square()?)?.neg()?,
        Sin => (dy * &x.cos()?)?,
        Cos => (dy * &x.sin()?)?.neg()?,
        Tanh => (dy * &(1.0f64 - &y.square()?)?)?,
        Sigmoid => (dy * &(y * &(1.0f64 - y)?)?)?,
        // The subgradient at 0 is 0 (TF).
        Relu => x.greater(0.0)?.select(dy, 0.0)?,
        Softplus => (dy * &x.sigmoid()?)?,
        // d/dx x·Φ(x) = Φ(x) + x·φ(x)
        Gelu => {
            let cdf = x.mul(FRAC_1_SQRT_2)?.erf()?.add(1.0)?.mul(0.5)?;
            let pdf = x
                .square()?
                .mul(-0.5)?
                .exp()?
                .mul((2.0 * PI).sqrt().recip())?;
            (dy * &(cdf + (x * &pdf)?)?)?
        }
        Erf => (dy * &((x.square()?.neg()?.exp())? * FRAC_2_SQRT_PI)?)?,
        Identity => dy.clone(),
        // Piecewise constant: the gradient is zero wherever it exists.
        Sign | Floor | Ceil | Round => return Ok(None),
        // Bool in and out.
        LogicalNot => return Ok(None),
        StopGradient => return Ok(None),
    };
    Ok(Some(d))
}

/// The gradients of `out = a ⊕ b` (both unbroadcast to their operand's shape).
pub(super) fn binary(op: BinaryOp, cx: &Ctx) -> Result<Grads> {
    use BinaryOp::*;
    let (a, b, out, dy) = (cx.x(0), cx.x(1), cx.out, cx.dy);
    let (da, db): (Option<Tensor>, Option<Tensor>) = match op {
        Add => (Some(dy.clone()), Some(dy.clone())),
        Sub => (Some(dy.clone()), cx.maybe(1, || dy.neg())?),
        Mul => (cx.maybe(0, || dy * b)?, cx.maybe(1, || dy * a)?),
        // d/db a/b = -a/b² = -out/b
        Div => (
            cx.maybe(0, || dy / b)?,
            cx.maybe(1, || ((dy * out)? / b)?.neg())?,
        ),
        // d/da a^b = b·a^(b-1); d/db a^b = a^b·ln a, taken as 0 where a <= 0 (TF).
        Pow => (
            cx.maybe(0, || dy * &(b * &a.pow(&(b - 1.0)?)?)?)?,
            cx.maybe(1, || {
                let positive = a.greater(0.0)?;
                let log_a = positive.select(&positive.select(a, 1.0)?.log()?, 0.0)?;
                dy * &(out * &log_a)?
            })?,
        ),
        // The gradient goes to the selected operand; on ties to `a` (the forward op also
        // returns `a` then).
        Maximum | Minimum => {
            let a_selected = if op == Maximum {
                a.greater_equal(b)?
            } else {
                a.less_equal(b)?
            };
            (
                cx.maybe(0, || a_selected.select(dy, 0.0))?,
                cx.maybe(1, || a_selected.select(0.0, dy))?,
            )
        }
        // a mod b = a - floor(a/b)·b
        Mod => (
            Some(dy.clone()),
            cx.maybe(1, || (dy * &(a / b)?.floor()?)?.neg())?,
        ),
        // Bool results and bool operands carry no gradient.
        Equal | NotEqual | Less | LessEqual | Greater | GreaterEqual | LogicalAnd | LogicalOr => {
            (None, None)
        }
    };
    let reduce_to = |i: usize, grad: Option<Tensor>| match grad {
        Some(g) if cx.need[i] => unbroadcast(g, cx.x(i).shape()).map(Some),
        _ => Ok(None),
    };
    Ok(vec![reduce_to(0, da)?, reduce_to(1, db)?])
}
