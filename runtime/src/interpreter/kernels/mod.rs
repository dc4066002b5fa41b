//! The interpreter's kernels, one module per op family, and the helpers they share.
//!
//! Kernels are written once, generically over [`Element`], and dispatched on a [`Value`]'s
//! dtype with the `map_value!` macros. Arithmetic goes through a *wide* type ([`Wide`]):
//! floats (f32, f64) are computed in `f64` with the frontend's `eval_float` and rounded once
//! to the dtype; integers and bools are computed in `i64` with `eval_int` and wrapped back
//! with `as`. Every ordering question (max, sort, top-k) is answered on the wide values,
//! which represent every element exactly.
//!
//! Kernels may assume that their inputs satisfy the op's shape/dtype rule
//! ([`Op::infer`](flumen_frontend::op::Op::infer)), which [`eval_op`](super::eval_op) checks
//! before dispatching; they still report anything data-dependent (an index out of range)
//! as an `Err`, and use non-panicking accessors so that a broken invariant is an error, not
//! a crash.

pub(crate) mod elementwise;
pub(crate) mod expm;
pub(crate) mod index;
pub(crate) mod layout;
pub(crate) mod linalg;
pub(crate) mod lu;
pub(crate) mod random;
pub(crate) mod reduce;

use flumen_frontend::op::{BinaryOp, UnaryOp};
use flumen_frontend::{DType, Element};
use ndarray::{ArrayD, IxDyn};
use std::cmp::Ordering;

/// The type a kernel computes in: `f64` for float dtypes, `i64` for the others.
pub(super) trait Wide: Copy + PartialOrd + std::fmt::Debug {
    /// Widen one element (exact).
    fn of<T: Element>(x: T) -> Self;
    /// Narrow back to the element type: floats round once, integers wrap like `as`.
    fn to<T: Element>(self) -> T;
    /// The additive identity.
    fn zero() -> Self;
    /// The multiplicative identity.
    fn one() -> Self;
    /// A count as a wide value (for means).
    fn count(n: usize) -> Self;
    /// The smallest value of `dtype` (−∞ for floats): the identity of `max`.
    fn lowest(dtype: DType) -> Self;
    /// The largest value of `dtype` (+∞ for floats): the identity of `min`.
    fn highest(dtype: DType) -> Self;
    /// Whether the value is NaN (never for integers).
    fn is_nan(self) -> bool;
    /// An elementwise unary op, or `None` where it is undefined for this kind of dtype.
    fn unary(op: UnaryOp, x: Self) -> Option<Self>;
    /// An arithmetic binary op (or a comparison as 0/1).
    fn binary(op: BinaryOp, a: Self, b: Self) -> Self;
    /// `binary(BinaryOp::Add, self, b)`, inlined for the accumulation loops.
    fn add(self, b: Self) -> Self;
    /// This wide type's `(value, index)` buffer of a [`SortScratch`].
    fn pairs(s: &mut SortScratch) -> &mut Vec<(Self, usize)>;
}

/// Reusable `(wide value, index)` buffers of the sorting kernels (top_k, argsort), one per
/// wide type; they keep their capacity between calls.
#[derive(Default)]
pub(crate) struct SortScratch {
    floats: Vec<(f64, usize)>,
    ints: Vec<(i64, usize)>,
}

impl SortScratch {
    /// Empty buffers (no allocation).
    pub(crate) const fn new() -> SortScratch {
        SortScratch {
            floats: Vec::new(),
            ints: Vec::new(),
        }
    }
}

impl Wide for f64 {
    fn of<T: Element>(x: T) -> Self {
        x.to_f64()
    }
    fn to<T: Element>(self) -> T {
        T::from_f64(self)
    }
    fn zero() -> Self {
        0.0
    }
    fn one() -> Self {
        1.0
    }
    fn count(n: usize) -> Self {
        n as f64
    }
    fn lowest(_: DType) -> Self {
        f64::NEG_INFINITY
    }
    fn highest(_: DType) -> Self {
        f64::INFINITY
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn unary(op: UnaryOp, x: Self) -> Option<Self> {
        Some(op.eval_float(x))
    }
    fn binary(op: BinaryOp, a: Self, b: Self) -> Self {
        op.eval_float(a, b)
    }
    #[inline]
    fn add(self, b: Self) -> Self {
        // BinaryOp::Add's eval_float.
        self + b
    }
    fn pairs(s: &mut SortScratch) -> &mut Vec<(Self, usize)> {
        &mut s.floats
    }
}

impl Wide for i64 {
    fn of<T: Element>(x: T) -> Self {
        x.to_i64()
    }
    fn to<T: Element>(self) -> T {
        T::from_i64(self)
    }
    fn zero() -> Self {
        0
    }
    fn one() -> Self {
        1
    }
    fn count(n: usize) -> Self {
        i64::try_from(n).unwrap_or(i64::MAX)
    }
    fn lowest(dtype: DType) -> Self {
        int_bounds(dtype).0
    }
    fn highest(dtype: DType) -> Self {
        int_bounds(dtype).1
    }
    fn is_nan(self) -> bool {
        false
    }
    fn unary(op: UnaryOp, x: Self) -> Option<Self> {
        op.eval_int(x)
    }
    fn binary(op: BinaryOp, a: Self, b: Self) -> Self {
        op.eval_int(a, b)
    }
    #[inline]
    fn add(self, b: Self) -> Self {
        // BinaryOp::Add's eval_int.
        self.wrapping_add(b)
    }
    fn pairs(s: &mut SortScratch) -> &mut Vec<(Self, usize)> {
        &mut s.ints
    }
}

/// The range of a non-float dtype as i64 (bool is 0..=1).
fn int_bounds(dtype: DType) -> (i64, i64) {
    match dtype {
        DType::I32 => (i32::MIN.into(), i32::MAX.into()),
        DType::U8 => (u8::MIN.into(), u8::MAX.into()),
        DType::Bool => (0, 1),
        DType::I64 | DType::F32 | DType::F64 => (i64::MIN, i64::MAX),
    }
}

/// Run `$body` with the type alias `$wide` bound to the wide type of element type `$elem`
/// (`f64` for floats, `i64` otherwise).
macro_rules! with_wide {
    ($elem:ty, $wide:ident => $body:expr) => {
        if <$elem as flumen_frontend::Element>::DTYPE.is_float() {
            type $wide = f64;
            $body
        } else {
            type $wide = i64;
            $body
        }
    };
}
pub(crate) use with_wide;

/// Run `$body` with the type alias `$t` bound to the element type of `$dtype`.
macro_rules! with_dtype {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            flumen_frontend::DType::F32 => {
                type $t = f32;
                $body
            }
            flumen_frontend::DType::F64 => {
                type $t = f64;
                $body
            }
            flumen_frontend::DType::I32 => {
                type $t = i32;
                $body
            }
            flumen_frontend::DType::I64 => {
                type $t = i64;
                $body
            }
            flumen_frontend::DType::U8 => {
                type $t = u8;
                $body
            }
            flumen_frontend::DType::Bool => {
                type $t = bool;
                $body
            }
        }
    };
}
pub(crate) use with_dtype;

/// Total order on wide values in which NaN is either above (`nan_high`) or below every
/// number, and NaNs are equal to each other.
pub(super) fn compare_nan<W: Wide>(a: W, b: W, nan_high: bool) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) if nan_high => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, true) if nan_high => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Borrow the array of a value that must have element type `T` (the same dtype as another
/// operand), or explain the mismatch.
pub(super) fn same_dtype<'a, T: Element>(
    value: &'a flumen_frontend::Value,
    what: &str,
) -> Result<&'a ArrayD<T>, String> {
    T::unwrap_ref(value)
        .ok_or_else(|| format!("{what} has dtype {}, expected {}", value.dtype(), T::DTYPE))
}

/// An array from row-major data, or an error if the data does not fill the shape.
pub(super) fn from_vec<T>(shape: &[usize], data: Vec<T>) -> Result<ArrayD<T>, String> {
    let n = data.len();
    ArrayD::from_shape_vec(IxDyn(shape), data)
        .map_err(|e| format!("internal error: {n} elements for shape {shape:?}: {e}"))
}

/// A read-only view of `a` broadcast (numpy rules) to `shape`.
pub(super) fn broadcast_view<'a, T>(
    a: &'a ArrayD<T>,
    shape: &[usize],
) -> Result<ndarray::ArrayViewD<'a, T>, String> {
    a.broadcast(IxDyn(shape))
        .ok_or_else(|| format!("shape {:?} does not broadcast to {shape:?}", a.shape()))
}
