//! The shape/dtype rule of every op (called through [`Op::infer`](super::Op::infer), which
//! has already checked the arity).

use super::{BinaryKind, Op, ReduceOp, TensorType, broadcast_shapes};
use crate::dtype::DType;
use crate::error::BuildError;

type R = Result<TensorType, BuildError>;

fn dtype_err(dtypes: Vec<DType>, expected: impl Into<String>, hint: Option<String>) -> BuildError {
    BuildError::DTypeMismatch {
        dtypes,
        expected: expected.into(),
        hint,
    }
}

fn shape_err(shapes: Vec<Vec<usize>>, expected: impl Into<String>) -> BuildError {
    BuildError::ShapeMismatch {
        shapes,
        expected: expected.into(),
    }
}

fn axis_ok(axis: usize, t: &TensorType) -> Result<(), BuildError> {
    if axis < t.rank() {
        Ok(())
    } else {
        Err(BuildError::AxisOutOfRange {
            axis: axis as i64,
            rank: t.rank(),
            shape: t.shape.clone(),
        })
    }
}

fn index_dtype(d: DType) -> Result<(), BuildError> {
    if matches!(d, DType::I32 | DType::I64) {
        Ok(())
    } else {
        Err(dtype_err(
            vec![d],
            "integer indices (i32 or i64)",
            Some("cast the indices to i32 or i64".into()),
        ))
    }
}

fn same_dtype(op: &str, a: DType, b: DType) -> Result<(), BuildError> {
    if a == b {
        return Ok(());
    }
    let hint = if a.is_numeric() && b.is_numeric() {
        Some(format!(
            "{op} does not convert implicitly; insert a cast, e.g. `x.cast(DType::{a:?})`"
        ))
    } else {
        None
    };
    Err(dtype_err(
        vec![a, b],
        "both operands to have the same dtype",
        hint,
    ))
}

pub(super) fn infer(op: &Op, x: &[TensorType]) -> R {
    match op {
        Op::Constant(v) => Ok(TensorType::new(v.dtype(), v.shape())),
        Op::Placeholder { dtype, shape } => Ok(TensorType::new(*dtype, shape.clone())),
        Op::Variable { .. } => Ok(x[0].clone()),
        Op::Read => Ok(x[0].clone()),
        Op::Assign => {
            same_dtype("assign", x[0].dtype, x[1].dtype)?;
            if x[0].shape != x[1].shape {
                return Err(shape_err(
                    vec![x[0].shape.clone(), x[1].shape.clone()],
                    "the value to have the variable's shape",
                ));
            }
            Ok(x[0].clone())
        }
        Op::AssignSlice(spec) => {
            same_dtype("assign_slice", x[0].dtype, x[1].dtype)?;
            spec.check(&x[0].shape)?;
            if spec.out_shape() != x[1].shape {
                return Err(shape_err(
                    vec![x[1].shape.clone(), spec.out_shape()],
                    "the value to have the slice's shape",
                ));
            }
            Ok(x[0].clone())
        }
        Op::Random {
            dist, dtype, shape, ..
        } => {
            if !dist.accepts(*dtype) {
                return Err(dtype_err(
                    vec![*dtype],
                    format!("{} to produce a supported dtype", dist.name()),
                    None,
                ));
            }
            match *dist {
                super::Distribution::UniformInt { low, high }
                    if *dtype == DType::I32
                        && (i32::try_from(low).is_err()
                            || i32::try_from(high.saturating_sub(1)).is_err()) =>
                {
                    return Err(BuildError::Attribute(format!(
                        "random_int bounds [{low}, {high}) do not fit i32"
                    )));
                }
                super::Distribution::UniformInt { low, high } if low >= high => {
                    return Err(BuildError::Attribute(format!(
                        "random_int needs low < high, got [{low}, {high})"
                    )));
                }
                super::Distribution::Uniform { low, high }
                    if low.partial_cmp(&high) != Some(std::cmp::Ordering::Less) =>
                {
                    return Err(BuildError::Attribute(format!(
                        "random_uniform needs low < high, got [{low}, {high})"
                    )));
                }
                super::Distribution::Normal { stddev, .. }
                | super::Distribution::TruncatedNormal { stddev, .. }
                    if stddev.is_nan() || stddev < 0.0 =>
                {
                    return Err(BuildError::Attribute(format!(
                        "stddev must be >= 0, got {stddev}"
                    )));
                }
                _ => {}
            }
            Ok(TensorType::new(*dtype, shape.clone()))
        }
        Op::Categorical {
            num_samples, dtype, ..
        } => {
            if !x[0].dtype.is_float() {
                return Err(dtype_err(vec![x[0].dtype], "float logits", None));
            }
            index_dtype(*dtype)?;
            if x[0].rank() != 2 || x[0].shape[1] == 0 {
                return Err(shape_err(
                    vec![x[0].shape.clone()],
                    "logits of shape [batch, classes] with classes > 0",
                ));
            }
            Ok(TensorType::new(*dtype, vec![x[0].shape[0], *num_samples]))
        }
        Op::Unary(u) => {
            let c = u.dtypes();
            if !c.accepts(x[0].dtype) {
                let hint = (c == super::DTypeClass::Float && x[0].dtype.is_numeric())
                    .then(|| "cast the input to f32 or f64 first".to_string());
                return Err(dtype_err(vec![x[0].dtype], c.describe(), hint));
            }
            Ok(x[0].clone())
        }
        Op::Binary(b) => {
            same_dtype(b.name(), x[0].dtype, x[1].dtype)?;
            let c = b.dtypes();
            if !c.accepts(x[0].dtype) {
                return Err(dtype_err(vec![x[0].dtype, x[1].dtype], c.describe(), None));
            }
            let shape = broadcast_shapes(&x[0].shape, &x[1].shape).ok_or_else(|| {
                shape_err(
                    vec![x[0].shape.clone(), x[1].shape.clone()],
                    "shapes that broadcast (numpy rules: trailing axes equal or 1)",
                )
            })?;
            debug_assert!(b.kind() != BinaryKind::Logical || x[0].dtype == DType::Bool);
            Ok(TensorType::new(b.output_dtype(x[0].dtype), shape))
        }
        Op::Select => {
            if x[0].dtype != DType::Bool {
                return Err(dtype_err(
                    vec![x[0].dtype],
                    "a bool condition",
                    Some("compare first, e.g. `x.greater(0.0)`".into()),
                ));
            }
            same_dtype("select", x[1].dtype, x[2].dtype)?;
            let s = broadcast_shapes(&x[0].shape, &x[1].shape)
                .and_then(|s| broadcast_shapes(&s, &x[2].shape))
                .ok_or_else(|| {
                    shape_err(
                        vec![x[0].shape.clone(), x[1].shape.clone(), x[2].shape.clone()],
                        "condition and branches that broadcast together",
                    )
                })?;
            Ok(TensorType::new(x[1].dtype, s))
        }
        Op::Cast(to) => Ok(TensorType::new(*to, x[0].shape.clone())),
        Op::Reduce { op, axes, keepdims } => {
            let t = &x[0];
            let ok = match op {
                ReduceOp::Mean => t.dtype.is_float(),
                _ => t.dtype.is_numeric(),
            };
            if !ok {
                let (exp, hint) = if *op == ReduceOp::Mean {
                    (
                        "a float dtype",
                        Some("cast to f32 or f64 before reduce_mean".to_string()),
                    )
                } else {
                    (
                        "a numeric dtype",
                        Some("cast bools to an integer dtype to count them".to_string()),
                    )
                };
                return Err(dtype_err(vec![t.dtype], exp, hint));
            }
            for w in axes.windows(2) {
                if w[0] >= w[1] {
                    return Err(BuildError::Attribute(format!(
                        "reduction axes must be sorted and distinct, got {axes:?}"
                    )));
                }
            }
            for &a in axes {
                axis_ok(a, t)?;
            }
            let shape = reduced_shape(&t.shape, axes, *keepdims);
            Ok(TensorType::new(t.dtype, shape))
        }
        Op::ArgReduce { op, axis, dtype } => {
            let t = &x[0];
            if !t.dtype.is_numeric() {
                return Err(dtype_err(vec![t.dtype], "a numeric dtype", None));
            }
            index_dtype(*dtype)?;
            axis_ok(*axis, t)?;
            if t.shape[*axis] == 0 {
                return Err(shape_err(
                    vec![t.shape.clone()],
                    format!("a non-empty axis {axis} for {}", op.name()),
                ));
            }
            Ok(TensorType::new(
                *dtype,
                reduced_shape(&t.shape, &[*axis], false),
            ))
        }
        Op::Cumsum { axis, .. } => {
            if !x[0].dtype.is_numeric() {
                return Err(dtype_err(vec![x[0].dtype], "a numeric dtype", None));
            }
            axis_ok(*axis, &x[0])?;
            Ok(x[0].clone())
        }
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => {
            let (a, b) = (&x[0], &x[1]);
            same_dtype("matmul", a.dtype, b.dtype)?;
            if !a.dtype.is_numeric() {
                return Err(dtype_err(vec![a.dtype], "a numeric dtype", None));
            }
            if a.rank() < 2 || b.rank() < 2 {
                return Err(shape_err(
                    vec![a.shape.clone(), b.shape.clone()],
                    "operands of rank >= 2 (use expand_dims for vectors)",
                ));
            }
            let (ra, rb) = (a.rank(), b.rank());
            let (m, ka) = if *transpose_a {
                (a.shape[ra - 1], a.shape[ra - 2])
            } else {
                (a.shape[ra - 2], a.shape[ra - 1])
            };
            let (kb, n) = if *transpose_b {
                (b.shape[rb - 1], b.shape[rb - 2])
            } else {
                (b.shape[rb - 2], b.shape[rb - 1])
            };
            if ka != kb {
                return Err(shape_err(
                    vec![a.shape.clone(), b.shape.clone()],
                    format!(
                        "inner dimensions to agree ({ka} vs {kb}; transpose_a={transpose_a}, transpose_b={transpose_b})"
                    ),
                ));
            }
            let mut batch =
                broadcast_shapes(&a.shape[..ra - 2], &b.shape[..rb - 2]).ok_or_else(|| {
                    shape_err(
                        vec![a.shape.clone(), b.shape.clone()],
                        "batch dimensions that broadcast",
                    )
                })?;
            batch.extend([m, n]);
            Ok(TensorType::new(a.dtype, batch))
        }
        Op::Solve => infer_solve(&x[0], &x[1]),
        Op::Expm => {
            let t = &x[0];
            if !t.dtype.is_float() {
                return Err(dtype_err(
                    vec![t.dtype],
                    "a float dtype (f32 or f64) for expm",
                    Some("cast first, e.g. `x.cast(DType::F64)`".into()),
                ));
            }
            let r = t.rank();
            if r < 2 || t.shape[r - 1] != t.shape[r - 2] {
                return Err(shape_err(
                    vec![t.shape.clone()],
                    "square matrices [.., n, n] for expm",
                ));
            }
            Ok(t.clone())
        }
        Op::Reshape(shape) => {
            let n = checked_numel(shape)?;
            if n != x[0].numel() {
                return Err(shape_err(
                    vec![x[0].shape.clone(), shape.clone()],
                    format!("the same number of elements ({} vs {n})", x[0].numel()),
                ));
            }
            Ok(TensorType::new(x[0].dtype, shape.clone()))
        }
        Op::Transpose(perm) => {
            let r = x[0].rank();
            let mut seen = vec![false; r];
            if perm.len() != r
                || perm
                    .iter()
                    .any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
            {
                return Err(BuildError::Attribute(format!(
                    "perm {perm:?} is not a permutation of 0..{r} (shape {:?})",
                    x[0].shape
                )));
            }
            Ok(TensorType::new(
                x[0].dtype,
                perm.iter().map(|&p| x[0].shape[p]).collect::<Vec<_>>(),
            ))
        }
        Op::BroadcastTo(shape) => match broadcast_shapes(&x[0].shape, shape) {
            Some(s) if &s == shape => Ok(TensorType::new(x[0].dtype, shape.clone())),
            _ => Err(shape_err(
                vec![x[0].shape.clone(), shape.clone()],
                "a shape the input broadcasts to",
            )),
        },
        Op::Slice(spec) => {
            spec.check(&x[0].shape)?;
            Ok(TensorType::new(x[0].dtype, spec.out_shape()))
        }
        Op::Concat { axis } => {
            let first = &x[0];
            axis_ok(*axis, first)?;
            let mut shape = first.shape.clone();
            shape[*axis] = 0;
            for t in x {
                same_dtype("concat", first.dtype, t.dtype)?;
                let compatible = t.rank() == first.rank()
                    && t.shape
                        .iter()
                        .zip(&first.shape)
                        .enumerate()
                        .all(|(i, (a, b))| i == *axis || a == b);
                if !compatible {
                    return Err(shape_err(
                        x.iter().map(|t| t.shape.clone()).collect(),
                        format!("equal shapes except along axis {axis}"),
                    ));
                }
                shape[*axis] = shape[*axis]
                    .checked_add(t.shape[*axis])
                    .ok_or_else(too_large)?;
            }
            Ok(TensorType::new(first.dtype, shape))
        }
        Op::Pad { paddings, value } => {
            if paddings.len() != x[0].rank() {
                return Err(BuildError::Attribute(format!(
                    "pad needs one (before, after) pair per axis: got {} for shape {:?}",
                    paddings.len(),
                    x[0].shape
                )));
            }
            if !value.fits(x[0].dtype) {
                return Err(dtype_err(
                    vec![x[0].dtype],
                    format!("a pad value representable in {}, got {value:?}", x[0].dtype),
                    None,
                ));
            }
            let shape = x[0]
                .shape
                .iter()
                .zip(paddings)
                .map(|(d, (a, b))| {
                    d.checked_add(*a)
                        .and_then(|x| x.checked_add(*b))
                        .ok_or_else(too_large)
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(TensorType::new(x[0].dtype, shape))
        }
        Op::Tile(m) => {
            if m.len() != x[0].rank() {
                return Err(BuildError::Attribute(format!(
                    "tile needs one multiple per axis: got {m:?} for shape {:?}",
                    x[0].shape
                )));
            }
            Ok(TensorType::new(
                x[0].dtype,
                x[0].shape
                    .iter()
                    .zip(m)
                    .map(|(d, k)| d.checked_mul(*k).ok_or_else(too_large))
                    .collect::<Result<Vec<_>, _>>()?,
            ))
        }
        Op::Roll { axis, .. } => {
            axis_ok(*axis, &x[0])?;
            Ok(x[0].clone())
        }
        Op::Gather { axis, batch_dims } => {
            let (p, i) = (&x[0], &x[1]);
            index_dtype(i.dtype)?;
            axis_ok(*axis, p)?;
            check_batch_dims(*axis, *batch_dims, p, i)?;
            let mut shape = p.shape[..*axis].to_vec();
            shape.extend_from_slice(&i.shape[*batch_dims..]);
            shape.extend_from_slice(&p.shape[axis + 1..]);
            Ok(TensorType::new(p.dtype, shape))
        }
        Op::ScatterAdd {
            axis,
            batch_dims,
            dim,
        } => {
            let (u, i) = (&x[0], &x[1]);
            index_dtype(i.dtype)?;
            if !u.dtype.is_numeric() {
                return Err(dtype_err(vec![u.dtype], "numeric updates", None));
            }
            let idx_tail = i.rank().saturating_sub(*batch_dims);
            let expected = |why: &str| {
                shape_err(
                    vec![u.shape.clone(), i.shape.clone()],
                    format!(
                        "updates shaped like gather's output (axis {axis}, batch_dims {batch_dims}): {why}"
                    ),
                )
            };
            if *batch_dims > *axis || *batch_dims > i.rank() || u.rank() < axis + idx_tail {
                return Err(expected("ranks do not fit"));
            }
            if u.shape[..*batch_dims] != i.shape[..*batch_dims] {
                return Err(expected("batch axes differ"));
            }
            if u.shape[*axis..axis + idx_tail] != i.shape[*batch_dims..] {
                return Err(expected("the index axes differ"));
            }
            let mut shape = u.shape[..*axis].to_vec();
            shape.push(*dim);
            shape.extend_from_slice(&u.shape[axis + idx_tail..]);
            Ok(TensorType::new(u.dtype, shape))
        }
        Op::TopK { k } => {
            let t = &x[0];
            if !t.dtype.is_numeric() {
                return Err(dtype_err(vec![t.dtype], "a numeric dtype", None));
            }
            if t.rank() == 0 || t.shape[t.rank() - 1] < *k {
                return Err(shape_err(
                    vec![t.shape.clone()],
                    format!("a last axis of length >= k = {k}"),
                ));
            }
            let mut shape = t.shape.clone();
            *shape.last_mut().expect("rank checked") = *k;
            Ok(TensorType::new(DType::I64, shape))
        }
        Op::ArgSort { axis, .. } => {
            if !x[0].dtype.is_numeric() {
                return Err(dtype_err(vec![x[0].dtype], "a numeric dtype", None));
            }
            axis_ok(*axis, &x[0])?;
            Ok(TensorType::new(DType::I64, x[0].shape.clone()))
        }
        Op::NoOp => Ok(TensorType::new(DType::Bool, vec![])),
        Op::Composite(c) => infer_composite(c, x),
    }
}

/// `solve(a, b)`: `a` is `[.., n, n]`, `b` is `[.., n, k]`, batch axes broadcast; the
/// output is `[batch.., n, k]`.
fn infer_solve(a: &TensorType, b: &TensorType) -> R {
    same_dtype("solve", a.dtype, b.dtype)?;
    if !a.dtype.is_float() {
        return Err(dtype_err(
            vec![a.dtype],
            "a float dtype (f32 or f64) for solve",
            Some("cast both operands, e.g. `a.cast(DType::F64)`".into()),
        ));
    }
    let shapes = || vec![a.shape.clone(), b.shape.clone()];
    let (ra, rb) = (a.rank(), b.rank());
    if ra < 2 || rb < 2 {
        return Err(shape_err(
            shapes(),
            "solve(a, b) operands of rank >= 2: a [.., n, n] and b [.., n, k] (use expand_dims for a vector b)",
        ));
    }
    let n = a.shape[ra - 1];
    if a.shape[ra - 2] != n {
        return Err(shape_err(
            shapes(),
            "a square matrix a [.., n, n] for solve(a, b)",
        ));
    }
    if b.shape[rb - 2] != n {
        return Err(shape_err(
            shapes(),
            format!("b [.., {n}, k] to have as many rows as a (n = {n}) for solve(a, b)"),
        ));
    }
    let mut batch = broadcast_shapes(&a.shape[..ra - 2], &b.shape[..rb - 2])
        .ok_or_else(|| shape_err(shapes(), "batch dimensions that broadcast for solve(a, b)"))?;
    batch.extend([n, b.shape[rb - 1]]);
    Ok(TensorType::new(a.dtype, batch))
}

fn check_batch_dims(
    axis: usize,
    batch_dims: usize,
    p: &TensorType,
    i: &TensorType,
) -> Result<(), BuildError> {
    if batch_dims > axis || batch_dims > i.rank() {
        return Err(BuildError::Attribute(format!(
            "batch_dims ({batch_dims}) must be <= axis ({axis}) and <= the indices' rank ({})",
            i.rank()
        )));
    }
    if p.shape[..batch_dims] != i.shape[..batch_dims] {
        return Err(shape_err(
            vec![p.shape.clone(), i.shape.clone()],
            format!("the first {batch_dims} (batch) axes of params and indices to be equal"),
        ));
    }
    Ok(())
}

/// The shape left after reducing `axes`.
pub fn reduced_shape(shape: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| {
            if axes.contains(&i) {
                keepdims.then_some(1)
            } else {
                Some(d)
            }
        })
        .collect()
}

/// A composite's type is whatever its expansion produces on placeholders of the input types.
fn infer_composite(c: &super::Composite, x: &[TensorType]) -> R {
    let g = crate::Graph::new();
    let inputs = x
        .iter()
        .enumerate()
        .map(|(i, t)| g.placeholder(&format!("in{i}"), t.dtype, &t.shape))
        .collect::<crate::Result<Vec<_>>>()
        .map_err(|e| BuildError::Attribute(e.to_string()))?;
    match c.build(&inputs) {
        Ok(t) => Ok(t.ty().clone()),
        Err(crate::GraphError::Build { kind, .. }) => Err(kind),
        Err(e) => Err(BuildError::Attribute(e.to_string())),
    }
}

fn too_large() -> BuildError {
    BuildError::Attribute("the output would have more elements than fit in memory addresses".into())
}

/// The number of elements of `shape`, or an error when it overflows `usize`.
pub fn checked_numel(shape: &[usize]) -> Result<usize, BuildError> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(too_large)
}
