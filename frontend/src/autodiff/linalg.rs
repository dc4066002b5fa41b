//! Gradients of `solve` and `expm`.
//!
//! - `X = A⁻¹B`: `∂L/∂B = A⁻ᵀ G = solve(Aᵀ, G)` and `∂L/∂A = −(∂L/∂B) Xᵀ`, with broadcast
//!   batch axes summed away.
//! - `E = e^A`: `∂L/∂A = Σ_k Σ_{j<k} (Aᵀ)ʲ G (Aᵀ)^{k−1−j}/k!`, which is the upper-right
//!   block of `e^M` for `M = [[Aᵀ, G], [0, Aᵀ]]` (Van Loan 1978; Najfeld & Havel 1995). It
//!   is built from `expm` itself, so higher derivatives work the same way.

use super::rules::{Ctx, Grads, unbroadcast};
use crate::Tensor;
use crate::error::Result;

/// `solve(a, b)`.
pub(super) fn solve(cx: &Ctx) -> Result<Grads> {
    let (a, b, x, dy) = (cx.x(0), cx.x(1), cx.out, cx.dy);
    let need_b = cx.need[0] || cx.need[1];
    let db_full = if need_b {
        Some(a.matrix_transpose()?.solve(dy)?)
    } else {
        None
    };
    let da = cx.maybe(0, || {
        let db = db_full.as_ref().expect("computed when a needs a gradient");
        let d = db.matmul_t(x, false, true)?.neg()?;
        unbroadcast(d, a.shape())
    })?;
    let db = cx.maybe(1, || {
        unbroadcast(
            db_full.clone().expect("computed when b needs one"),
            b.shape(),
        )
    })?;
    Ok(vec![da, db])
}

/// `expm(a)`.
pub(super) fn expm(cx: &Ctx) -> Result<Grads> {
    let (a, dy) = (cx.x(0), cx.dy);
    Ok(vec![cx.maybe(0, || {
        let n = a.shape()[a.rank() - 1];
        let at = a.matrix_transpose()?;
        let zero = a.graph().zeros(at.shape(), at.dtype())?;
        let top = Tensor::concat(&[&at, dy], -1)?;
        let bottom = Tensor::concat(&[&zero, &at], -1)?;
        let m = Tensor::concat(&[&top, &bottom], -2)?;
        m.expm()?.matrix_block(0..n, n..2 * n)
    })?])
}
