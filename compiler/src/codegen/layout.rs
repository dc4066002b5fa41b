//! Validation of a kernel's IR and normalisation of its iteration geometry.
//!
//! Normalisation drops axes of extent 1 and merges adjacent axes that every access walks
//! contiguously (`stride[k] == stride[k+1]·extent[k+1]`), so a contiguous `[64, 128]`
//! elementwise kernel becomes one loop of 8192 and a row reduction keeps one inner axis.
//! Row-major linearisation is preserved, so `[begin, end)` keeps its meaning. Strides are
//! converted to bytes.

use super::CodegenError;
use crate::kernel::{Expr, Kernel, PhaseKind};
use flumen_frontend::DType;
use flumen_frontend::op::BinaryOp;

/// Byte size of one element of `d` in memory (bool is one byte, 0 or 1).
pub(crate) fn elem_size(d: DType) -> i64 {
    match d {
        DType::F32 | DType::I32 => 4,
        DType::F64 | DType::I64 => 8,
        DType::U8 | DType::Bool => 1,
    }
}

/// Normalised geometry of one access (all in bytes).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AccGeom {
    /// Byte offset of index 0.
    pub offset: i64,
    /// Byte stride per normalised outer axis.
    pub outer: Vec<i64>,
    /// Byte stride per normalised inner axis.
    pub inner: Vec<i64>,
}

/// The normalised kernel geometry.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    /// Outer extents, at least one axis (`[1]` for a scalar kernel). May contain 0.
    pub outer: Vec<usize>,
    /// Inner extents; empty means one inner iteration. `[0]` when the inner space is empty.
    pub inner: Vec<usize>,
    /// Product of `inner`.
    pub inner_len: usize,
    /// One per kernel access.
    pub acc: Vec<AccGeom>,
}

fn strides_bytes(
    kernel: &Kernel,
    a: usize,
    strides: &[i64],
    n: usize,
) -> Result<Vec<i64>, CodegenError> {
    let size = elem_size(kernel.accesses[a].dtype);
    (0..n)
        .map(|k| {
            strides
                .get(k)
                .copied()
                .unwrap_or(0)
                .checked_mul(size)
                .ok_or_else(|| invalid(kernel, format!("access a{a}: stride overflows")))
        })
        .collect()
}

/// Drop extent-1 axes and merge contiguous neighbours. `strides[a][k]` is access `a`'s stride
/// along axis `k`. An empty space (some extent 0) becomes `[0]`.
fn normalize(dims: &[usize], strides: &[Vec<i64>]) -> (Vec<usize>, Vec<Vec<i64>>) {
    if dims.contains(&0) {
        return (vec![0], strides.iter().map(|_| vec![0]).collect());
    }
    let mut out_dims: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<i64>> = strides.iter().map(|_| Vec::new()).collect();
    for (k, &n) in dims.iter().enumerate() {
        if n == 1 {
            continue;
        }
        let mergeable = !out_dims.is_empty()
            && strides.iter().zip(&out_strides).all(|(s, o)| {
                let last = *o.last().expect("non-empty");
                (s[k] as i128) * (n as i128) == last as i128
            });
        if mergeable {
            *out_dims.last_mut().expect("non-empty") *= n;
            for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                *o.last_mut().expect("non-empty") = s[k];
            }
        } else {
            out_dims.push(n);
            for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                o.push(s[k]);
            }
        }
    }
    (out_dims, out_strides)
}

impl Layout {
    /// Normalise `kernel`'s geometry (call [`validate`] first).
    pub(crate) fn new(kernel: &Kernel) -> Result<Layout, CodegenError> {
        let n = kernel.accesses.len();
        let mut outer_s = Vec::with_capacity(n);
        let mut inner_s = Vec::with_capacity(n);
        let mut offsets = Vec::with_capacity(n);
        for (a, acc) in kernel.accesses.iter().enumerate() {
            outer_s.push(strides_bytes(
                kernel,
                a,
                &acc.outer_strides,
                kernel.outer.len(),
            )?);
            inner_s.push(strides_bytes(
                kernel,
                a,
                &acc.inner_strides,
                kernel.inner.len(),
            )?);
            offsets.push(
                acc.offset
                    .checked_mul(elem_size(acc.dtype))
                    .ok_or_else(|| invalid(kernel, format!("access a{a}: offset overflows")))?,
            );
        }
        let (mut outer, mut outer_s) = normalize(&kernel.outer, &outer_s);
        if outer.is_empty() {
            outer.push(1);
            outer_s.iter_mut().for_each(|s| s.push(0));
        }
        let (inner, inner_s) = normalize(&kernel.inner, &inner_s);
        let inner_len = inner.iter().product();
        let acc = offsets
            .into_iter()
            .zip(outer_s)
            .zip(inner_s)
            .map(|((offset, outer), inner)| AccGeom {
                offset,
                outer,
                inner,
            })
            .collect();
        Ok(Layout {
            outer,
            inner,
            inner_len,
            acc,
        })
    }
}

pub(crate) fn invalid(kernel: &Kernel, msg: impl Into<String>) -> CodegenError {
    CodegenError::Invalid {
        kernel: kernel.name.clone(),
        msg: msg.into(),
    }
}

/// Check that the IR is well formed: operands defined before use, dtypes consistent with the
/// op table, accesses and phase results in range. Everything the emitter relies on.
pub(crate) fn validate(kernel: &Kernel) -> Result<(), CodegenError> {
    let bad = |pi: usize, i: usize, msg: String| invalid(kernel, format!("phase{pi} e{i}: {msg}"));
    for (pi, p) in kernel.phases.iter().enumerate() {
        if p.exprs.len() != p.dtypes.len() {
            return Err(invalid(
                kernel,
                format!(
                    "phase{pi}: {} exprs but {} dtypes",
                    p.exprs.len(),
                    p.dtypes.len()
                ),
            ));
        }
        for (i, (e, &d)) in p.exprs.iter().zip(&p.dtypes).enumerate() {
            let operand = |x: usize| -> Result<DType, CodegenError> {
                if x < i {
                    Ok(p.dtypes[x])
                } else {
                    Err(bad(
                        pi,
                        i,
                        format!("operand e{x} is not defined before use"),
                    ))
                }
            };
            match e {
                Expr::Load(a) => {
                    let acc = kernel
                        .accesses
                        .get(*a)
                        .ok_or_else(|| bad(pi, i, format!("no access a{a}")))?;
                    if acc.dtype != d {
                        return Err(bad(pi, i, format!("loads a {} access as {d}", acc.dtype)));
                    }
                }
                Expr::FloatConst(_) | Expr::IntConst(_) => {}
                Expr::Unary(op, x) => {
                    let xd = operand(x.0)?;
                    if xd != d || !op.dtypes().accepts(d) {
                        return Err(bad(pi, i, format!("{} on {xd} giving {d}", op.name())));
                    }
                }
                Expr::Binary(op, x, y) => {
                    let (xd, yd) = (operand(x.0)?, operand(y.0)?);
                    let bool_minmax =
                        xd == DType::Bool && matches!(op, BinaryOp::Maximum | BinaryOp::Minimum);
                    if xd != yd
                        || (!op.dtypes().accepts(xd) && !bool_minmax)
                        || op.output_dtype(xd) != d
                    {
                        return Err(bad(
                            pi,
                            i,
                            format!("{} on {xd}, {yd} giving {d}", op.name()),
                        ));
                    }
                }
                Expr::Select(c, x, y) => {
                    let (cd, xd, yd) = (operand(c.0)?, operand(x.0)?, operand(y.0)?);
                    if cd != DType::Bool || xd != d || yd != d {
                        return Err(bad(pi, i, format!("select on {cd}, {xd}, {yd} giving {d}")));
                    }
                }
                Expr::Cast(to, x) => {
                    operand(x.0)?;
                    if *to != d {
                        return Err(bad(pi, i, format!("cast to {to} has dtype {d}")));
                    }
                }
                Expr::PhaseResult(q) => match kernel.phases.get(*q).map(|ph| &ph.kind) {
                    Some(PhaseKind::Reduce { value, .. }) if *q < pi => {
                        let rd = kernel.phases[*q].dtypes.get(value.0).copied();
                        if rd != Some(d) {
                            return Err(bad(pi, i, format!("result of phase{q} read as {d}")));
                        }
                    }
                    _ => {
                        return Err(bad(
                            pi,
                            i,
                            format!("phase{q} is not an earlier reduce phase"),
                        ));
                    }
                },
            }
        }
        match &p.kind {
            PhaseKind::Reduce { value, .. } => {
                let d = p.dtypes.get(value.0).ok_or_else(|| {
                    invalid(kernel, format!("phase{pi}: reduces missing e{}", value.0))
                })?;
                if *d == DType::Bool {
                    return Err(invalid(kernel, format!("phase{pi}: cannot reduce bools")));
                }
            }
            PhaseKind::Store { stores } => {
                for (a, v) in stores {
                    let acc = kernel.accesses.get(*a).ok_or_else(|| {
                        invalid(kernel, format!("phase{pi}: store to missing a{a}"))
                    })?;
                    let d = p.dtypes.get(v.0).ok_or_else(|| {
                        invalid(kernel, format!("phase{pi}: stores missing e{}", v.0))
                    })?;
                    if *d != acc.dtype {
                        return Err(invalid(
                            kernel,
                            format!("phase{pi}: stores {d} into {} access a{a}", acc.dtype),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}
