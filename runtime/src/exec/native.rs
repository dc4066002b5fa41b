//! Native interpreter steps: the index, layout, sort, argmax/argmin, cumsum and random ops
//! that executables run as [`Step::Interpret`](super::Step::Interpret), executed directly
//! on their buffers.
//!
//! The interpreter's `eval_op` works on owned [`Value`](flumen_frontend::Value)s, so the
//! generic fallback copies every input into a fresh value and the result back, per run.
//! For the ops below the executor instead borrows the input buffers as slices and writes
//! the output buffer in place, through the same slice-level functions the interpreter's
//! kernels call (`interpreter::kernels::{index, layout, reduce, random}`), so the results
//! are the interpreter's bit for bit and nothing is allocated per run (`top_k`, `argsort`
//! and f32 `scatter_add` use per-thread scratch that grows to the largest step and is then
//! reused).
//!
//! A step is only taken here when its recorded types and attributes are what the op's shape
//! and dtype rule accepts (otherwise [`run`] returns `None` and the caller falls back to
//! `eval_op`, which reports the mismatch) and its output does not overlap an input. Data-dependent
//! errors (an index out of range, a bad random range) are reported here with the
//! interpreter's messages; nothing is written before the indices are checked.

use super::BufId;
use crate::interpreter::kernels::index::{
    Blocks, argsort_into, gather_into, scatter_add_into, top_k_into,
};
use crate::interpreter::kernels::layout::{
    check_pad, check_tile, concat_into, pad_into, roll_into, tile_into,
};
use crate::interpreter::kernels::random::random_into;
use crate::interpreter::kernels::reduce::{arg_reduce_into, cumsum_in_place};
use crate::interpreter::kernels::{SortScratch, with_dtype};
use flumen_frontend::op::{ArgReduceOp, Distribution, Op, TensorType};
use flumen_frontend::{DType, Element, Scalar};
use std::cell::RefCell;

thread_local! {
    /// `(value, index)` scratch of top_k and argsort (grows to the longest row, then
    /// reused).
    static SORT: RefCell<SortScratch> = const { RefCell::new(SortScratch::new()) };
    /// f64 accumulators of f32 scatter_add (grows to the largest output, then reused).
    static WIDE: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` on this thread's scratch (a fresh one if it is already borrowed).
fn with_scratch<S: Default, R>(
    key: &'static std::thread::LocalKey<RefCell<S>>,
    f: impl FnOnce(&mut S) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => f(&mut v),
        Err(_) => f(&mut S::default()),
    })
}

/// The buffers of one interpreter step, viewed as slices.
struct Bufs<'a> {
    inputs: &'a [(BufId, TensorType)],
    ptrs: &'a [*mut u8],
    output: *mut u8,
    ty: &'a TensorType,
}

impl Bufs<'_> {
    /// Input `i` as a slice of `T` (which must be its dtype).
    ///
    /// # Safety
    /// The input's buffer must hold `numel` initialised elements of its dtype, and nothing
    /// may write it while the slice lives.
    unsafe fn input<T: Element>(&self, i: usize) -> &[T] {
        let (b, t) = &self.inputs[i];
        debug_assert_eq!(t.dtype, T::DTYPE);
        let n = t.numel();
        if n == 0 {
            return &[];
        }
        // SAFETY: forwarded from the caller.
        unsafe { std::slice::from_raw_parts(self.ptrs[b.0] as *const T, n) }
    }

    /// The output as a mutable slice of `T` (which must be its dtype).
    ///
    /// # Safety
    /// The output buffer must have room for `numel` elements of its dtype and overlap no
    /// input ([`Bufs::disjoint`]); no other reference to it may live meanwhile.
    #[allow(clippy::mut_from_ref)]
    unsafe fn output<T: Element>(&self) -> &mut [T] {
        debug_assert_eq!(self.ty.dtype, T::DTYPE);
        let n = self.ty.numel();
        if n == 0 {
            return &mut [];
        }
        // SAFETY: forwarded from the caller.
        unsafe { std::slice::from_raw_parts_mut(self.output as *mut T, n) }
    }

    /// Whether the output's bytes overlap no input's (the memory planner never overlaps a
    /// step's output with its inputs; checked so that a plan that did falls back to the
    /// copying path instead of aliasing a `&mut`).
    fn disjoint(&self) -> bool {
        let range = |p: *const u8, t: &TensorType| {
            let start = p as usize;
            (start, start + t.numel() * t.dtype.size_bytes())
        };
        let (o0, o1) = range(self.output, self.ty);
        o0 == o1
            || self.inputs.iter().all(|(b, t)| {
                let (i0, i1) = range(self.ptrs[b.0], t);
                i0 == i1 || i1 <= o0 || o1 <= i0
            })
    }

    fn in_ty(&self, i: usize) -> &TensorType {
        &self.inputs[i].1
    }
}

/// Run the interpreter step `op` natively on its buffers: `Some(result)` when the op has a
/// native path and the step's types fit it, `None` to fall back to `eval_op`. `count` is
/// the step's random counter (already advanced by the caller for stateful ops).
///
/// # Safety
/// `ptrs[b]` must address buffer `b` (its dtype and element count) for every input, and
/// `ptrs[output]` room for `ty`; nothing else may access them during the call.
pub(super) unsafe fn run(
    op: &Op,
    inputs: &[(BufId, TensorType)],
    ptrs: &[*mut u8],
    output: BufId,
    ty: &TensorType,
    count: u64,
) -> Option<Result<(), String>> {
    let bufs = Bufs {
        inputs,
        ptrs,
        output: ptrs[output.0],
        ty,
    };
    if !bufs.disjoint() {
        return None;
    }
    // SAFETY: forwarded from the caller; outputs and inputs are disjoint.
    unsafe {
        match op {
            Op::Gather { axis, batch_dims } => gather(&bufs, *axis, *batch_dims),
            Op::ScatterAdd {
                axis,
                batch_dims,
                dim,
            } => scatter_add(&bufs, *axis, *batch_dims, *dim),
            Op::Concat { axis } => concat(&bufs, *axis),
            Op::Pad { paddings, value } => pad(&bufs, paddings, *value),
            Op::Tile(_) => tile(&bufs),
            Op::Roll { shift, axis } => roll(&bufs, *shift, *axis),
            Op::TopK { k } => top_k(&bufs, *k),
            Op::ArgSort { axis, descending } => argsort(&bufs, *axis, *descending),
            Op::Cumsum {
                axis,
                exclusive,
                reverse,
            } => cumsum(&bufs, *axis, *exclusive, *reverse),
            Op::ArgReduce { op, axis, dtype } => arg_reduce(&bufs, *op, *axis, *dtype),
            Op::Random {
                dist,
                dtype,
                shape,
                seed,
            } => (inputs.is_empty()
                && ty.dtype == *dtype
                && ty.shape == *shape
                && random_fits(dist, *dtype))
            .then(
                || with_dtype!(ty.dtype, T => random_into::<T>(dist, *seed, count, bufs.output())),
            ),
            _ => None,
        }
    }
}

/// Whether the random op's shape rule accepts `dist` for `dtype` (the attribute checks of
/// `Op::infer`: a dtype the distribution produces; random_int bounds with `low < high`,
/// `high - low` representable in i64, and inside i32 for an i32 output).
fn random_fits(dist: &Distribution, dtype: DType) -> bool {
    if !dist.accepts(dtype) {
        return false;
    }
    match *dist {
        Distribution::UniformInt { low, high } => {
            high.checked_sub(low).is_some_and(|r| r > 0)
                && (dtype != DType::I32
                    || (i32::try_from(low).is_ok() && i32::try_from(high - 1).is_ok()))
        }
        _ => true,
    }
}

/// Whether `shape` is `outer[..axis] ++ indices[batch_dims..] ++ outer[axis + 1..]`, with
/// the batch axes of `outer` and `indices` equal (gather's shape rule).
fn is_gathered(
    shape: &[usize],
    outer: &[usize],
    indices: &[usize],
    axis: usize,
    batch_dims: usize,
) -> bool {
    if !(axis < outer.len()
        && batch_dims <= axis
        && batch_dims <= indices.len()
        && outer[..batch_dims] == indices[..batch_dims])
    {
        return false;
    }
    let mid = &indices[batch_dims..];
    let tail = &outer[axis + 1..];
    shape.len() == axis + mid.len() + tail.len()
        && shape[..axis] == outer[..axis]
        && shape[axis..axis + mid.len()] == *mid
        && shape[axis + mid.len()..] == *tail
}

/// Runs `$body` with `$ix` bound to input `$i` as an i32 or i64 slice; `None` for another
/// dtype.
macro_rules! with_index_input {
    ($bufs:expr, $i:expr, $ix:ident => $body:expr) => {
        match $bufs.in_ty($i).dtype {
            DType::I32 => {
                let $ix: &[i32] = $bufs.input($i);
                $body
            }
            DType::I64 => {
                let $ix: &[i64] = $bufs.input($i);
                $body
            }
            _ => return None,
        }
    };
}

unsafe fn gather(b: &Bufs, axis: usize, batch_dims: usize) -> Option<Result<(), String>> {
    let (params, indices) = (b.in_ty(0), b.in_ty(1));
    let fits = b.inputs.len() == 2
        && params.dtype == b.ty.dtype
        && is_gathered(&b.ty.shape, &params.shape, &indices.shape, axis, batch_dims);
    if !fits {
        return None;
    }
    let blocks = Blocks::new(&params.shape, &indices.shape, axis, batch_dims);
    // SAFETY: forwarded; types checked above.
    Some(unsafe {
        with_index_input!(b, 1, ix => with_dtype!(b.ty.dtype, T =>
            gather_into::<T, _>(b.input(0), ix, &blocks, b.output())))
    })
}

unsafe fn scatter_add(
    b: &Bufs,
    axis: usize,
    batch_dims: usize,
    dim: usize,
) -> Option<Result<(), String>> {
    let (updates, indices) = (b.in_ty(0), b.in_ty(1));
    let out = &b.ty.shape;
    let fits = b.inputs.len() == 2
        && updates.dtype == b.ty.dtype
        && updates.dtype.is_numeric()
        && out.get(axis) == Some(&dim)
        && is_gathered(&updates.shape, out, &indices.shape, axis, batch_dims);
    if !fits {
        return None;
    }
    let blocks = Blocks::new(out, &indices.shape, axis, batch_dims);
    // SAFETY: forwarded; types checked above.
    Some(unsafe {
        with_index_input!(b, 1, ix => with_dtype!(b.ty.dtype, T =>
            with_scratch(&WIDE, |wide| scatter_add_into::<T, _>(b.input(0), ix, &blocks, b.output(), wide))))
    })
}

unsafe fn concat(b: &Bufs, axis: usize) -> Option<Result<(), String>> {
    let out = &b.ty.shape;
    if b.inputs.is_empty() || axis >= out.len() {
        return None;
    }
    let mut total = 0;
    for (_, t) in b.inputs {
        let same_off_axis = t.shape.len() == out.len()
            && t.shape
                .iter()
                .zip(out)
                .enumerate()
                .all(|(i, (x, y))| i == axis || x == y);
        if t.dtype != b.ty.dtype || !same_off_axis {
            return None;
        }
        total += t.shape[axis];
    }
    if total != out[axis] {
        return None;
    }
    let outer: usize = out[..axis].iter().product();
    let inner: usize = out[axis + 1..].iter().product();
    // SAFETY: forwarded; types checked above.
    Some(unsafe {
        with_dtype!(b.ty.dtype, T => concat_into::<T>(b.output(), outer, b.inputs.len(), |i| {
            (b.input::<T>(i), b.in_ty(i).shape[axis] * inner)
        }))
    })
}

/// The pad value converted to `T` exactly as `Value::full` converts it.
fn fill_value<T: Element>(value: Scalar) -> T {
    match value {
        Scalar::Int(i) if T::DTYPE == DType::I64 => T::from_i64(i),
        _ => T::from_f64(value.as_f64()),
    }
}

unsafe fn pad(b: &Bufs, paddings: &[(usize, usize)], value: Scalar) -> Option<Result<(), String>> {
    let x = b.in_ty(0);
    if b.inputs.len() != 1
        || x.dtype != b.ty.dtype
        || !value.fits(x.dtype)
        || check_pad(&x.shape, paddings, &b.ty.shape).is_err()
    {
        return None;
    }
    // SAFETY: forwarded; types checked above.
    Some(unsafe {
        with_dtype!(b.ty.dtype, T => pad_into::<T>(
            b.input(0), &x.shape, paddings, &b.ty.shape, fill_value(value), b.output()))
    })
}

unsafe fn tile(b: &Bufs) -> Option<Result<(), String>> {
    let x = b.in_ty(0);
    if b.inputs.len() != 1 || x.dtype != b.ty.dtype || check_tile(&x.shape, &b.ty.shape).is_err() {
        return None;
    }
    // SAFETY: forwarded; types checked above.
    Some(unsafe {
        with_dtype!(b.ty.dtype, T => tile_into::<T>(b.input(0), &x.shape, &b.ty.shape, b.output()))
    })
}

/// Whether the step has one input of exactly the output's type.
fn same_type(b: &Bufs) -> bool {
    b.inputs.len() == 1 && b.in_ty(0) == b.ty
}

unsafe fn roll(b: &Bufs, shift: i64, axis: usize) -> Option<Result<(), String>> {
    if !same_type(b) || axis >= b.ty.shape.len() {
        return None;
    }
    let n = b.ty.shape[axis];
    let inner: usize = b.ty.shape[axis + 1..].iter().product();
    // SAFETY: forwarded; types checked above.
    unsafe {
        with_dtype!(b.ty.dtype, T => roll_into::<T>(b.input(0), n, inner, shift, b.output()))
    };
    Some(Ok(()))
}

unsafe fn top_k(b: &Bufs, k: usize) -> Option<Result<(), String>> {
    let x = b.in_ty(0);
    let (Some((&n, lead)), Some((&kk, out_lead))) = (x.shape.split_last(), b.ty.shape.split_last())
    else {
        return None;
    };
    if b.inputs.len() != 1
        || !x.dtype.is_numeric()
        || b.ty.dtype != DType::I64
        || kk != k
        || lead != out_lead
    {
        return None;
    }
    // SAFETY: forwarded; types checked above.
    Some(unsafe {
        with_dtype!(x.dtype, T => with_scratch(&SORT, |scratch| {
            top_k_into::<T>(b.input(0), n, k, b.output(), scratch)
        }))
    })
}

unsafe fn argsort(b: &Bufs, axis: usize, descending: bool) -> Option<Result<(), String>> {
    let x = b.in_ty(0);
    if b.inputs.len() != 1
        || !x.dtype.is_numeric()
        || b.ty.dtype != DType::I64
        || x.shape != b.ty.shape
        || axis >= x.shape.len()
    {
        return None;
    }
    let n = x.shape[axis];
    let inner: usize = x.shape[axis + 1..].iter().product();
    // SAFETY: forwarded; types checked above.
    unsafe {
        with_dtype!(x.dtype, T => with_scratch(&SORT, |scratch| {
            argsort_into::<T>(b.input(0), n, inner, descending, b.output(), scratch)
        }))
    };
    Some(Ok(()))
}

unsafe fn cumsum(
    b: &Bufs,
    axis: usize,
    exclusive: bool,
    reverse: bool,
) -> Option<Result<(), String>> {
    if !same_type(b) || !b.ty.dtype.is_numeric() || axis >= b.ty.shape.len() {
        return None;
    }
    let n = b.ty.shape[axis];
    let inner: usize = b.ty.shape[axis + 1..].iter().product();
    // SAFETY: forwarded; types checked above.
    unsafe {
        with_dtype!(b.ty.dtype, T => {
            let out = b.output::<T>();
            out.copy_from_slice(b.input::<T>(0));
            cumsum_in_place(out, n, inner, exclusive, reverse)
        })
    };
    Some(Ok(()))
}

unsafe fn arg_reduce(
    b: &Bufs,
    op: ArgReduceOp,
    axis: usize,
    dtype: DType,
) -> Option<Result<(), String>> {
    let x = b.in_ty(0);
    let fits = b.inputs.len() == 1
        && x.dtype.is_numeric()
        && b.ty.dtype == dtype
        && matches!(dtype, DType::I32 | DType::I64)
        && axis < x.shape.len()
        && b.ty.shape.len() + 1 == x.shape.len()
        && b.ty.shape[..axis] == x.shape[..axis]
        && b.ty.shape[axis..] == x.shape[axis + 1..];
    if !fits {
        return None;
    }
    let n = x.shape[axis];
    let inner: usize = x.shape[axis + 1..].iter().product();
    // SAFETY: forwarded; types checked above.
    Some(unsafe {
        with_dtype!(x.dtype, T => match dtype {
            DType::I32 => arg_reduce_into::<T, i32>(op, b.input(0), axis, n, inner, b.output()),
            _ => arg_reduce_into::<T, i64>(op, b.input(0), axis, n, inner, b.output()),
        })
    })
}
