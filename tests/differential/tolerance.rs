//! Comparing compiled values with the interpreter's: the per-element tolerance of each
//! op (the table in the crate docs) and the element-by-element comparison.

use super::*;

// ---------------------------------------------------------------------------------------
// Comparing values
// ---------------------------------------------------------------------------------------

/// How one element is compared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Tol {
    /// Same bits (any NaN matches any NaN).
    Exact,
    /// Within this absolute difference (NaN only matches NaN; infinities exactly, or a
    /// finite value within the tolerance of the dtype's maximum).
    Abs(f64),
    /// Only: a NaN reference needs a NaN.
    NanOnly,
    /// Not compared.
    Skip,
}

pub(crate) fn max_of(dtype: DType) -> f64 {
    if dtype == DType::F32 {
        f32::MAX as f64
    } else {
        f64::MAX
    }
}

/// The spacing of `dtype`'s values at `|x|` (at the maximum for infinities).
pub(crate) fn ulp(x: f64, dtype: DType) -> f64 {
    if dtype == DType::F32 {
        let a = (x as f32).abs();
        let a = if a.is_finite() && a < f32::MAX {
            a
        } else {
            f32::from_bits(f32::MAX.to_bits() - 1)
        };
        (f32::from_bits(a.to_bits() + 1) - a) as f64
    } else {
        let a = x.abs();
        let a = if a.is_finite() && a < f64::MAX {
            a
        } else {
            f64::from_bits(f64::MAX.to_bits() - 1)
        };
        f64::from_bits(a.to_bits() + 1) - a
    }
}

/// The unit roundoff of a float dtype.
pub(crate) fn unit_roundoff(dtype: DType) -> f64 {
    if dtype == DType::F32 {
        f32::EPSILON as f64 / 2.0
    } else {
        f64::EPSILON / 2.0
    }
}

/// Whether one float element passes.
pub(crate) fn float_ok(got: f64, want: f64, tol: Tol, dtype: DType) -> bool {
    match tol {
        Tol::Skip => true,
        Tol::NanOnly => !want.is_nan() || got.is_nan(),
        Tol::Exact => {
            (got.is_nan() && want.is_nan())
                || (got == want && got.is_sign_negative() == want.is_sign_negative())
        }
        Tol::Abs(t) => {
            if want.is_nan() || got.is_nan() {
                return want.is_nan() && got.is_nan();
            }
            let max = max_of(dtype);
            if want.is_infinite() || got.is_infinite() {
                // A result within tolerance of the maximum may round to infinity.
                let finite = if want.is_infinite() { got } else { want };
                return got == want || (got.signum() == want.signum() && finite.abs() + t >= max);
            }
            (got - want).abs() <= t
        }
    }
}

/// Row-major multi-index of element `i` of `shape` (for messages).
pub(crate) fn index_of(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        if shape[k] > 0 {
            idx[k] = i % shape[k];
            i /= shape[k];
        }
    }
    idx
}

/// Compare `got` with the reference `want` element by element (`tol` per element; exact
/// for non-float dtypes).
pub(crate) fn compare(got: &Value, want: &Value, tol: &dyn Fn(usize) -> Tol) -> Result<(), String> {
    if got.dtype() != want.dtype() || got.shape() != want.shape() {
        return Err(format!(
            "type {}{:?}, expected {}{:?}",
            got.dtype(),
            got.shape(),
            want.dtype(),
            want.shape()
        ));
    }
    let dtype = want.dtype();
    if !dtype.is_float() {
        if got.bit_eq(want) {
            return Ok(());
        }
        let (g, w) = (got.cast(DType::I64), want.cast(DType::I64));
        let (g, w) = (g.as_i64().expect("i64"), w.as_i64().expect("i64"));
        let (i, (a, b)) = g
            .iter()
            .zip(w.iter())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .expect("values differ somewhere");
        return Err(format!(
            "element {:?}: got {a}, expected {b}",
            index_of(i, want.shape())
        ));
    }
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let t = tol(i);
        if !float_ok(a, b, t, dtype) {
            return Err(format!(
                "element {:?}: got {a:e} ({a:?}), expected {b:e} ({b:?}), tolerance {t:?}",
                index_of(i, want.shape())
            ));
        }
    }
    Ok(())
}

pub(crate) fn exact(_: usize) -> Tol {
    Tol::Exact
}

// ---------------------------------------------------------------------------------------
// Tolerances per op
// ---------------------------------------------------------------------------------------

/// The error bound (ulps, and a multiple of |x|) of an f32 transcendental, or `None` for
/// the ops compiled code computes exactly.
pub(crate) fn f32_unary_bound(u: UnaryOp) -> Option<(f64, f64)> {
    use UnaryOp::*;
    Some(match u {
        Exp | Log | Erf => (2.0, 0.0),
        Log1p | Tanh | Sigmoid => (3.0, 0.0),
        Softplus => (4.0, 0.0),
        Sin | Cos => (2.0, 2f64.powi(-46)),
        Gelu => (8.0, 2f64.powi(-52)),
        Neg | Abs | Sign | Sqrt | Rsqrt | Square | Reciprocal | Relu | Floor | Ceil | Round
        | LogicalNot | Identity | StopGradient => return None,
    })
}

/// Whether the compiled value of `node` may differ from the interpreter's on the same
/// inputs (an approximate or order-dependent op).
pub(crate) fn is_approx(def: &GraphDef, id: NodeId) -> bool {
    let node = def.node(id);
    match &node.op {
        Op::Unary(u) => node.ty.dtype == DType::F32 && f32_unary_bound(*u).is_some(),
        Op::Reduce { .. } => is_reassociating(def, id),
        Op::MatMul { .. } => node.ty.dtype.is_float(),
        _ => false,
    }
}

/// Float sums, means and products: their compiled value depends on the evaluation order,
/// which depends on how producers are fused into the reduction.
pub(crate) fn is_reassociating(def: &GraphDef, id: NodeId) -> bool {
    let node = def.node(id);
    matches!(
        node.op,
        Op::Reduce {
            op: ReduceOp::Sum | ReduceOp::Mean | ReduceOp::Prod,
            ..
        }
    ) && node.ty.dtype.is_float()
}

/// The groups of input elements each output element of a reduction over `axes` reduces
/// (in the interpreter's order), as f64.
pub(crate) fn reduce_groups(x: &Value, axes: &[usize]) -> Vec<Vec<f64>> {
    let shape = x.shape().to_vec();
    let a = ndarray::ArrayD::from_shape_vec(shape.clone(), x.to_f64_vec()).expect("shape");
    let kept: Vec<usize> = (0..shape.len()).filter(|k| !axes.contains(k)).collect();
    let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let group: usize = axes.iter().map(|&k| shape[k]).product();
    let outer: usize = kept.iter().map(|&k| shape[k]).product();
    let flat: Vec<f64> = a.view().permuted_axes(perm).iter().copied().collect();
    (0..outer)
        .map(|o| flat[o * group..(o + 1) * group].to_vec())
        .collect()
}

/// Per-element tolerances of a float reduction `op` of `x` whose reference is `want`.
pub(crate) fn reduce_tolerance(op: ReduceOp, x: &Value, axes: &[usize], want: &Value) -> Vec<Tol> {
    let dtype = want.dtype();
    let u = unit_roundoff(dtype);
    // The interpreter is exact to within its final rounding for f32 (it accumulates in
    // f64); for f64 both sides carry an order-dependent error.
    let sides = if dtype == DType::F32 { 1.0 } else { 2.0 };
    let max = max_of(dtype);
    let w = want.to_f64_vec();
    reduce_groups(x, axes)
        .iter()
        .zip(&w)
        .map(|(g, &y)| {
            let n = g.len() as f64;
            if g.iter().any(|v| v.is_nan()) {
                return Tol::NanOnly;
            }
            match op {
                ReduceOp::Sum | ReduceOp::Mean => {
                    let finite: f64 = g.iter().filter(|v| v.is_finite()).map(|v| v.abs()).sum();
                    if finite * (1.0 + n * u) > max {
                        // Partial sums may overflow in one order and not in another, so a
                        // NaN (∞ − ∞) can appear in either side's order alone; only
                        // infinities of both signs in the input force one.
                        let both_infinities =
                            g.contains(&f64::INFINITY) && g.contains(&f64::NEG_INFINITY);
                        if both_infinities {
                            Tol::NanOnly
                        } else {
                            Tol::Skip
                        }
                    } else if g.iter().any(|v| v.is_infinite()) {
                        Tol::Exact
                    } else if op == ReduceOp::Sum {
                        Tol::Abs(sides * n * u * finite + ulp(y, dtype))
                    } else {
                        Tol::Abs(sides * u * finite + 2.0 * ulp(y, dtype))
                    }
                }
                ReduceOp::Prod => {
                    // Partial products in any order lie between the product of the factors
                    // below 1 and the product of those above 1 (in magnitude).
                    let log2 = |v: &f64| v.abs().log2();
                    let big: f64 = g.iter().filter(|v| v.abs() > 1.0).map(log2).sum();
                    let small: f64 = g
                        .iter()
                        .filter(|v| v.abs() < 1.0 && **v != 0.0)
                        .map(log2)
                        .sum();
                    let (lo, hi) = if dtype == DType::F32 {
                        (-125.0, 127.0)
                    } else {
                        (-1021.0, 1023.0)
                    };
                    if big >= hi || small <= lo {
                        Tol::NanOnly
                    } else if g.iter().any(|v| *v == 0.0 || v.is_infinite()) {
                        Tol::Exact
                    } else {
                        Tol::Abs(sides * n * u * y.abs() + ulp(y, dtype))
                    }
                }
                ReduceOp::Max | ReduceOp::Min => Tol::Exact,
            }
        })
        .collect()
}

/// Per-element tolerances of a float matmul whose reference is `want`.
pub(crate) fn matmul_tolerance(
    op: &Op,
    a: &Value,
    b: &Value,
    want: &Value,
) -> Result<Vec<Tol>, String> {
    let Op::MatMul { transpose_a, .. } = op else {
        unreachable!("matmul_tolerance on {}", op.name())
    };
    let dtype = want.dtype();
    let abs64 = |v: &Value| {
        let a = v.cast(DType::F64).into_array::<f64>().expect("f64");
        Value::from(a.mapv(f64::abs))
    };
    // Σₗ |aᵢₗ·bₗⱼ| by the interpreter in f64 (exact products for f32 operands).
    let ty = TensorType::new(DType::F64, want.shape());
    let mag = eval_op(op, &[&abs64(a), &abs64(b)], &ty, EvalContext::default())?.to_f64_vec();
    let ra = a.shape().len();
    let k = a.shape()[if *transpose_a { ra - 2 } else { ra - 1 }] as f64;
    let u = unit_roundoff(dtype);
    let sides = if dtype == DType::F32 { 1.0 } else { 2.0 };
    let tiny = if dtype == DType::F32 {
        f32::from_bits(1) as f64
    } else {
        f64::from_bits(1)
    };
    let max = max_of(dtype);
    Ok(mag
        .iter()
        .zip(want.to_f64_vec())
        .map(|(&m, y)| {
            // `m` may be NaN or infinite (non-finite operands): no bound then either.
            let bounded = (m * (1.0 + (k + 1.0) * u)).partial_cmp(&max);
            if !matches!(
                bounded,
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            ) {
                if dtype == DType::F32 {
                    Tol::NanOnly
                } else {
                    Tol::Skip
                }
            } else {
                Tol::Abs(sides * (k + 1.0) * u * m + ulp(y, dtype) + k * tiny)
            }
        })
        .collect())
}

/// The tolerance of each element of `op`'s compiled value against the interpreter's
/// `want` on the same `inputs`.
pub(crate) fn op_tolerance(op: &Op, inputs: &[&Value], want: &Value) -> Result<Vec<Tol>, String> {
    let n = want.len();
    let dtype = want.dtype();
    Ok(match op {
        Op::Unary(u) if dtype == DType::F32 => match f32_unary_bound(*u) {
            Some((ulps, rel_x)) => {
                let x = inputs[0].to_f64_vec();
                want.to_f64_vec()
                    .iter()
                    .zip(&x)
                    .map(|(&y, &x)| {
                        // Infinite arguments have exact results (the |x| term is for
                        // argument reduction, which they skip).
                        let arg = if x.is_finite() { rel_x * x.abs() } else { 0.0 };
                        Tol::Abs(ulps * ulp(y, dtype) + arg)
                    })
                    .collect()
            }
            None => vec![Tol::Exact; n],
        },
        Op::Reduce { op: r, axes, .. } if dtype.is_float() => {
            reduce_tolerance(*r, inputs[0], axes, want)
        }
        Op::MatMul { .. } if dtype.is_float() => matmul_tolerance(op, inputs[0], inputs[1], want)?,
        _ => vec![Tol::Exact; n],
    })
}
