//! Evaluation of one op on concrete values: checks the op's shape rule, then dispatches to
//! the kernel of its family (see [`kernels`](super::kernels)).

use super::EvalContext;
use super::kernels::{elementwise, expm, index, layout, linalg, lu, random, reduce};
use flumen_frontend::op::{Op, TensorType};
use flumen_frontend::{Value, map_value_same};

/// Evaluate a pure op on its inputs. `out` is the node's declared output type (already
/// checked by the op's shape rule). Errors are messages; the executor adds the op and node.
///
/// The inputs are checked against the op's shape/dtype rule ([`Op::infer`]) and `out`
/// against its result before anything is computed, so a malformed call is an error, never
/// a panic. The state ops (`variable`, `read`, `assign`, `assign_slice`), `placeholder` and
/// composites are evaluated by the [executor](super::executor) and are errors here.
/// Every returned value is in standard (row-major) layout.
pub fn eval_op(
    op: &Op,
    inputs: &[&Value],
    out: &TensorType,
    ctx: EvalContext,
) -> Result<Value, String> {
    let types: Vec<TensorType> = inputs
        .iter()
        .map(|v| TensorType::new(v.dtype(), v.shape()))
        .collect();
    let expected = op.infer(&types).map_err(|e| e.to_string())?;
    if &expected != out {
        return Err(format!(
            "the declared output type {out} differs from {expected}, the type the op gives for inputs {}",
            types
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    check_size(out)?;
    let value = eval_checked(op, inputs, out, ctx)?;
    Ok(standard_layout(value))
}

/// Refuse outputs whose size in bytes does not fit `isize` (what an allocation can hold),
/// rather than letting the allocation panic.
fn check_size(out: &TensorType) -> Result<(), String> {
    let bytes = out
        .shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(out.dtype.size_bytes(), |acc, &d| acc.checked_mul(d));
    match bytes {
        Some(b) if isize::try_from(b).is_ok() => Ok(()),
        _ => Err(format!("the output {out} is too large to allocate")),
    }
}

/// Dispatch to the kernel; the inputs satisfy the op's shape rule and `out` is its type.
fn eval_checked(
    op: &Op,
    inputs: &[&Value],
    out: &TensorType,
    ctx: EvalContext,
) -> Result<Value, String> {
    let input = |i: usize| {
        inputs
            .get(i)
            .copied()
            .ok_or_else(|| format!("{} is missing input {i}", op.name()))
    };
    match op {
        Op::Constant(value) => Ok(value.clone()),
        Op::Placeholder { .. }
        | Op::Variable { .. }
        | Op::Read
        | Op::Assign
        | Op::AssignSlice(_)
        | Op::Composite(_) => Err(format!(
            "{} is evaluated by the executor, not by eval_op",
            op.name()
        )),
        Op::NoOp => Ok(Value::scalar(true)),
        Op::Random {
            dist,
            dtype,
            shape,
            seed,
        } => random::random(dist, *dtype, shape, *seed, ctx.counter),
        Op::Categorical {
            num_samples,
            dtype,
            seed,
        } => random::categorical(input(0)?, *num_samples, *dtype, *seed, ctx.counter),
        Op::Unary(u) => elementwise::unary(*u, input(0)?),
        Op::Binary(b) => elementwise::binary(*b, input(0)?, input(1)?, &out.shape),
        Op::Select => elementwise::select(input(0)?, input(1)?, input(2)?, &out.shape),
        Op::Cast(dtype) => Ok(elementwise::cast(input(0)?, *dtype)),
        Op::Reduce { op, axes, .. } => reduce::reduce(*op, input(0)?, axes, &out.shape),
        Op::ArgReduce { op, axis, dtype } => reduce::arg_reduce(*op, input(0)?, *axis, *dtype),
        Op::Cumsum {
            axis,
            exclusive,
            reverse,
        } => reduce::cumsum(input(0)?, *axis, *exclusive, *reverse),
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => linalg::matmul(input(0)?, input(1)?, *transpose_a, *transpose_b, &out.shape),
        Op::Solve => lu::solve(input(0)?, input(1)?, &out.shape),
        Op::Expm => expm::expm(input(0)?),
        Op::Reshape(shape) => layout::reshape(input(0)?, shape),
        Op::Transpose(perm) => layout::transpose(input(0)?, perm),
        Op::BroadcastTo(shape) => layout::broadcast_to(input(0)?, shape),
        Op::Slice(spec) => layout::slice(input(0)?, spec),
        Op::Concat { axis } => layout::concat(inputs, *axis),
        Op::Pad { paddings, value } => layout::pad(input(0)?, paddings, *value, &out.shape),
        Op::Tile(_) => layout::tile(input(0)?, &out.shape),
        Op::Roll { shift, axis } => layout::roll(input(0)?, *shift, *axis),
        Op::Gather { axis, batch_dims } => index::gather(input(0)?, input(1)?, *axis, *batch_dims),
        Op::ScatterAdd {
            axis,
            batch_dims,
            dim,
        } => index::scatter_add(input(0)?, input(1)?, *axis, *batch_dims, *dim),
        Op::TopK { k } => index::top_k(input(0)?, *k),
        Op::ArgSort { axis, descending } => index::argsort(input(0)?, *axis, *descending),
    }
}

/// The value with its array in standard (row-major, contiguous) layout.
fn standard_layout(value: Value) -> Value {
    map_value_same!(value, a => if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    })
}
