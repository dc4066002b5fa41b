//! Device kernels for the data-movement ops that have no fused-kernel form: `concat`,
//! `roll`, `pad` and `tile`. Each runs one thread per output element (grid-stride loop),
//! unravels the output index and reads the one source element it copies, so the results
//! are bit-identical to the interpreter's. Without these the ops ran as host steps: the
//! inputs went to the host and the output came back on every run (BigBird's blockified
//! attention has nine concats and four rolls per layer).

use super::index::{elementwise_launch, linear, loop_header, strides};
use super::kernel::{MAX_THREADS, finish};
use super::scalar::{c_type, float_const, int_const};
use crate::kernel::BufId;
use flumen_frontend::op::TensorType;
use flumen_frontend::{DType, Scalar};
use flumen_runtime::cuda::DeviceKernel;
use std::fmt::Write;

/// The kernel's signature: one `const T*` per input, then `T* out`.
fn signature(b: &mut String, t: &str, inputs: usize) {
    let mut params: Vec<String> = (0..inputs).map(|i| format!("const {t}* in{i}")).collect();
    params.push(format!("{t}* out"));
    writeln!(
        b,
        "extern \"C\" __global__ void __launch_bounds__({MAX_THREADS}) FL_ENTRY({}) {{",
        params.join(", ")
    )
    .unwrap();
}

/// A kernel copying into each of the `shape`'s elements (`o`, unravelled as `g0..`) what
/// `body` computes from `inputs` (named `in0..`), named after `name`.
fn copy_kernel(
    name: &str,
    t: &str,
    shape: &[usize],
    body: &str,
    inputs: Vec<BufId>,
    out: BufId,
) -> DeviceKernel {
    let n: usize = shape.iter().product();
    let mut b = String::new();
    signature(&mut b, t, inputs.len());
    loop_header(&mut b, n, shape);
    b.push_str(body);
    b.push_str("  }\n}\n");
    let args = inputs.into_iter().chain([out]).collect();
    finish(name.to_string(), b, args, false, elementwise_launch(n))
}

/// `Σ g_d · strides[d]` with the axis `axis` replaced by the expression `along`.
fn source_index(strides: &[usize], axis: usize, along: &str) -> String {
    let mut terms: Vec<(String, usize)> = Vec::new();
    for (d, &s) in strides.iter().enumerate() {
        if d == axis {
            terms.push((format!("({along})"), s));
        } else {
            terms.push((format!("g{d}"), s));
        }
    }
    linear(&terms)
}

/// `out = concat(inputs, axis)`. `None` when the shapes do not fit (the interpreter
/// reports that).
pub fn concat(
    name: &str,
    inputs: &[(BufId, TensorType)],
    out: BufId,
    ot: &TensorType,
    axis: usize,
) -> Option<DeviceKernel> {
    let rank = ot.shape.len();
    if axis >= rank || inputs.is_empty() {
        return None;
    }
    let mut offset = 0;
    for (_, t) in inputs {
        let fits = t.dtype == ot.dtype
            && t.shape.len() == rank
            && (0..rank).all(|d| d == axis || t.shape[d] == ot.shape[d]);
        if !fits {
            return None;
        }
        offset += t.shape[axis];
    }
    if offset != ot.shape[axis] {
        return None;
    }
    let mut b = String::new();
    writeln!(b, "    const fl_i64 a = g{axis};").unwrap();
    let mut start = 0;
    let mut first = true;
    for (i, (_, it)) in inputs.iter().enumerate() {
        let len = it.shape[axis];
        if len == 0 {
            continue;
        }
        let read = format!(
            "in{i}[{}]",
            source_index(&strides(&it.shape), axis, &format!("a - {start}"))
        );
        let end = start + len;
        if end == ot.shape[axis] {
            let prefix = if first { "" } else { "else " };
            writeln!(b, "    {prefix}{{ out[o] = {read}; }}").unwrap();
        } else {
            let prefix = if first { "if" } else { "else if" };
            writeln!(b, "    {prefix} (a < {end}ll) {{ out[o] = {read}; }}").unwrap();
        }
        first = false;
        start = end;
    }
    let ins = inputs.iter().map(|(b, _)| *b).collect();
    Some(copy_kernel(name, c_type(ot.dtype), &ot.shape, &b, ins, out))
}

/// `out = roll(x, shift, axis)`: `out[.., (j + shift) mod n, ..] = x[.., j, ..]`.
pub fn roll(
    name: &str,
    (x, xt): (BufId, &TensorType),
    out: BufId,
    shift: i64,
    axis: usize,
) -> Option<DeviceKernel> {
    let &len = xt.shape.get(axis)?;
    // The shift reduced into 0..len (in i128, so no shift overflows).
    let s = if len == 0 {
        0
    } else {
        usize::try_from((shift as i128).rem_euclid(len as i128)).ok()?
    };
    let body = format!(
        "    const fl_i64 j = g{axis} >= {s}ll ? g{axis} - {s}ll : g{axis} + {}ll;\n    out[o] = in0[{}];\n",
        len - s,
        source_index(&strides(&xt.shape), axis, "j")
    );
    Some(copy_kernel(
        name,
        c_type(xt.dtype),
        &xt.shape,
        &body,
        vec![x],
        out,
    ))
}

/// The C literal of a pad value in dtype `d` (converted like the interpreter's fill).
fn fill_literal(d: DType, v: Scalar) -> String {
    match v {
        Scalar::Float(x) => float_const(d, x),
        Scalar::Int(i) => int_const(d, i),
        Scalar::Bool(b) => int_const(d, b as i64),
    }
}

/// `out = pad(x, paddings, value)`. `None` when the shapes do not fit.
pub fn pad(
    name: &str,
    (x, xt): (BufId, &TensorType),
    (out, ot): (BufId, &TensorType),
    paddings: &[(usize, usize)],
    value: Scalar,
) -> Option<DeviceKernel> {
    let rank = xt.shape.len();
    let fits = paddings.len() == rank
        && ot.shape.len() == rank
        && (0..rank).all(|d| xt.shape[d] + paddings[d].0 + paddings[d].1 == ot.shape[d]);
    if !fits || xt.dtype != ot.dtype {
        return None;
    }
    let t = c_type(ot.dtype);
    let xs = strides(&xt.shape);
    let mut b = String::new();
    let mut inside = Vec::new();
    let mut terms = Vec::new();
    for d in 0..rank {
        let (before, _) = paddings[d];
        writeln!(b, "    const fl_i64 s{d} = g{d} - {before}ll;").unwrap();
        inside.push(format!("s{d} >= 0 && s{d} < {}ll", xt.shape[d]));
        terms.push((format!("s{d}"), xs[d]));
    }
    let cond = if inside.is_empty() {
        "true".to_string()
    } else {
        inside.join(" && ")
    };
    writeln!(
        b,
        "    out[o] = ({cond}) ? in0[{}] : ({t})({});",
        linear(&terms),
        fill_literal(ot.dtype, value)
    )
    .unwrap();
    Some(copy_kernel(name, t, &ot.shape, &b, vec![x], out))
}

/// `out = tile(x, multiples)`: `out[g] = x[g mod shape]`. `None` when the shapes do not
/// fit.
pub fn tile(
    name: &str,
    (x, xt): (BufId, &TensorType),
    (out, ot): (BufId, &TensorType),
    multiples: &[usize],
) -> Option<DeviceKernel> {
    let rank = xt.shape.len();
    let fits = multiples.len() == rank
        && ot.shape.len() == rank
        && (0..rank).all(|d| xt.shape[d] * multiples[d] == ot.shape[d]);
    if !fits || xt.dtype != ot.dtype {
        return None;
    }
    let xs = strides(&xt.shape);
    let terms: Vec<(String, usize)> = (0..rank)
        .map(|d| {
            let v = if multiples[d] == 1 || xt.shape[d] == 0 {
                format!("g{d}")
            } else {
                format!("(g{d} % {}ll)", xt.shape[d])
            };
            (v, xs[d])
        })
        .collect();
    let body = format!("    out[o] = in0[{}];\n", linear(&terms));
    Some(copy_kernel(
        name,
        c_type(ot.dtype),
        &ot.shape,
        &body,
        vec![x],
        out,
    ))
}
