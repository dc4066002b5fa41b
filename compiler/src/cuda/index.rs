//! Device kernels for the indexing ops that have no fused-kernel form: `gather` (one
//! thread per output element) and `scatter_add` (the output zeroed, then one thread per
//! update adding it atomically). Both read the index with its dtype, check it against the
//! gathered axis and, when it is out of range, record the op in the program's error word
//! instead of touching memory (the run then fails with the interpreter's kind of message).

use super::kernel::{MAX_BLOCKS, MAX_THREADS, finish, unravel};
use super::scalar::c_type;
use crate::kernel::BufId;
use flumen_frontend::DType;
use flumen_frontend::op::TensorType;
use flumen_runtime::cuda::{DeviceKernel, Launch};
use std::fmt::Write;

/// Row-major strides of `shape`.
pub(super) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        s[a] = s[a + 1] * shape[a + 1];
    }
    s
}

/// `Σ var_a · stride_a` over the listed `(variable, stride)` pairs, or `0`.
pub(super) fn linear(terms: &[(String, usize)]) -> String {
    let t: Vec<String> = terms
        .iter()
        .filter(|(_, s)| *s != 0)
        .map(|(v, s)| {
            if *s == 1 {
                v.clone()
            } else {
                format!("{v} * {s}")
            }
        })
        .collect();
    if t.is_empty() {
        "0".into()
    } else {
        t.join(" + ")
    }
}

/// The element shape shared by gather's output and scatter's updates, with, per axis of
/// it, how it indexes the indices tensor and the outer tensor (params / scatter output).
struct Layout {
    gathered: Vec<usize>,
    index_terms: Vec<(String, usize)>,
    outer_terms: Vec<(String, usize)>,
    axis_stride: usize,
    axis_len: usize,
}

fn layout(outer: &[usize], indices: &[usize], axis: usize, batch_dims: usize) -> Option<Layout> {
    let fits = axis < outer.len()
        && batch_dims <= axis
        && batch_dims <= indices.len()
        && outer[..batch_dims] == indices[..batch_dims];
    if !fits {
        return None;
    }
    let ir = indices.len() - batch_dims;
    let gathered = [&outer[..axis], &indices[batch_dims..], &outer[axis + 1..]].concat();
    let (is, os) = (strides(indices), strides(outer));
    let mut index_terms = Vec::new();
    let mut outer_terms = Vec::new();
    for g in 0..gathered.len() {
        let v = format!("g{g}");
        if g < batch_dims {
            index_terms.push((v.clone(), is[g]));
        } else if g >= axis && g < axis + ir {
            index_terms.push((v.clone(), is[batch_dims + g - axis]));
        }
        if g < axis {
            outer_terms.push((v, os[g]));
        } else if g >= axis + ir {
            outer_terms.push((v, os[g - ir + 1]));
        }
    }
    Some(Layout {
        gathered,
        index_terms,
        outer_terms,
        axis_stride: os[axis],
        axis_len: outer[axis],
    })
}

/// Whether a device kernel exists for these element and index dtypes.
pub fn supported(elem: DType, index: DType, scatter: bool) -> bool {
    let idx = matches!(index, DType::I32 | DType::I64);
    // atomicAdd exists for f32, f64, i32 and 64-bit integers, not for u8 or bool.
    let elem_ok = !scatter || matches!(elem, DType::F32 | DType::F64 | DType::I32 | DType::I64);
    idx && elem_ok
}

pub(super) fn loop_header(out: &mut String, n: usize, g: &[usize]) {
    writeln!(
        out,
        "  for (fl_i64 o = blockIdx.x * (fl_i64)blockDim.x + threadIdx.x; o < {n}ll; o += (fl_i64)gridDim.x * blockDim.x) {{"
    )
    .unwrap();
    unravel(out, "    ", "g", "o", g);
}

pub(super) fn elementwise_launch(n: usize) -> Launch {
    Launch {
        blocks: n.div_ceil(MAX_THREADS as usize).min(MAX_BLOCKS) as u32,
        threads: MAX_THREADS,
    }
}

/// `out = gather(params, indices, axis, batch_dims)`; `site` is the value the kernel
/// writes to the error word for a bad index. `None` when the shapes do not fit (the
/// interpreter reports that) or the dtypes have no kernel.
#[allow(clippy::too_many_arguments)]
pub fn gather(
    name: &str,
    (params, pt): (BufId, &TensorType),
    (indices, it): (BufId, &TensorType),
    out: BufId,
    axis: usize,
    batch_dims: usize,
    site: i32,
) -> Option<DeviceKernel> {
    if !supported(pt.dtype, it.dtype, false) {
        return None;
    }
    let l = layout(&pt.shape, &it.shape, axis, batch_dims)?;
    let n: usize = l.gathered.iter().product();
    let t = c_type(pt.dtype);
    let mut b = String::new();
    writeln!(
        b,
        "extern \"C\" __global__ void __launch_bounds__({MAX_THREADS}) FL_ENTRY(const {t}* params, const {}* indices, {t}* out, int* err) {{",
        c_type(it.dtype)
    )
    .unwrap();
    loop_header(&mut b, n, &l.gathered);
    writeln!(
        b,
        "    const fl_i64 p = (fl_i64)indices[{}];",
        linear(&l.index_terms)
    )
    .unwrap();
    writeln!(
        b,
        "    if (p < 0 || p >= {}ll) {{ fl_flag(err, {site}); out[o] = ({t})0; continue; }}",
        l.axis_len
    )
    .unwrap();
    writeln!(
        b,
        "    out[o] = params[p * {} + {}];",
        l.axis_stride,
        linear(&l.outer_terms)
    )
    .unwrap();
    b.push_str("  }\n}\n");
    Some(finish(
        name.to_string(),
        b,
        vec![params, indices, out],
        true,
        elementwise_launch(n),
    ))
}

/// `out += scatter(updates at indices)` along `axis` (the output must be zeroed first);
/// `None` when the shapes do not fit or the dtypes have no kernel.
#[allow(clippy::too_many_arguments)]
pub fn scatter_add(
    name: &str,
    (updates, ut): (BufId, &TensorType),
    (indices, it): (BufId, &TensorType),
    (out, ot): (BufId, &TensorType),
    axis: usize,
    batch_dims: usize,
    site: i32,
) -> Option<DeviceKernel> {
    if !supported(ut.dtype, it.dtype, true) {
        return None;
    }
    let l = layout(&ot.shape, &it.shape, axis, batch_dims)?;
    if l.gathered != ut.shape {
        return None;
    }
    let n: usize = l.gathered.iter().product();
    let t = c_type(ut.dtype);
    let mut b = String::new();
    writeln!(
        b,
        "extern \"C\" __global__ void __launch_bounds__({MAX_THREADS}) FL_ENTRY(const {t}* updates, const {}* indices, {t}* out, int* err) {{",
        c_type(it.dtype)
    )
    .unwrap();
    loop_header(&mut b, n, &l.gathered);
    writeln!(
        b,
        "    const fl_i64 p = (fl_i64)indices[{}];",
        linear(&l.index_terms)
    )
    .unwrap();
    writeln!(
        b,
        "    if (p < 0 || p >= {}ll) {{ fl_flag(err, {site}); continue; }}",
        l.axis_len
    )
    .unwrap();
    let target = format!("out + p * {} + {}", l.axis_stride, linear(&l.outer_terms));
    let add = match ut.dtype {
        DType::I64 => {
            format!("atomicAdd((unsigned long long*)({target}), (unsigned long long)updates[o]);")
        }
        _ => format!("atomicAdd({target}, updates[o]);"),
    };
    writeln!(b, "    {add}").unwrap();
    b.push_str("  }\n}\n");
    Some(finish(
        name.to_string(),
        b,
        vec![updates, indices, out],
        true,
        elementwise_launch(n),
    ))
}
