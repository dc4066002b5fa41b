//! Concrete tensor values: [`Value`], an ndarray of one of the six dtypes.
//!
//! Values are what constants hold, what a session is fed and what it returns.

use crate::dtype::{DType, Scalar};
use crate::error::{GraphError, Result};
use ndarray::{ArrayD, IxDyn};

/// A dense tensor value of any dtype.
#[derive(Clone, Debug)]
pub enum Value {
    /// f32 elements.
    F32(ArrayD<f32>),
    /// f64 elements.
    F64(ArrayD<f64>),
    /// i32 elements.
    I32(ArrayD<i32>),
    /// i64 elements.
    I64(ArrayD<i64>),
    /// u8 elements.
    U8(ArrayD<u8>),
    /// bool elements.
    Bool(ArrayD<bool>),
}

/// Apply an expression to the array inside a [`Value`], whatever its dtype.
#[macro_export]
macro_rules! map_value {
    ($value:expr, $arr:ident => $body:expr) => {
        match $value {
            $crate::Value::F32($arr) => $body,
            $crate::Value::F64($arr) => $body,
            $crate::Value::I32($arr) => $body,
            $crate::Value::I64($arr) => $body,
            $crate::Value::U8($arr) => $body,
            $crate::Value::Bool($arr) => $body,
        }
    };
}

/// Apply an expression to the array inside a [`Value`] and wrap the result in the same variant.
#[macro_export]
macro_rules! map_value_same {
    ($value:expr, $arr:ident => $body:expr) => {
        match $value {
            $crate::Value::F32($arr) => $crate::Value::F32($body),
            $crate::Value::F64($arr) => $crate::Value::F64($body),
            $crate::Value::I32($arr) => $crate::Value::I32($body),
            $crate::Value::I64($arr) => $crate::Value::I64($body),
            $crate::Value::U8($arr) => $crate::Value::U8($body),
            $crate::Value::Bool($arr) => $crate::Value::Bool($body),
        }
    };
}

/// Element types that can live in a [`Value`].
pub trait Element: Copy + Default + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    /// The dtype of this element type.
    const DTYPE: DType;
    /// Wrap an array of this element type.
    fn wrap(a: ArrayD<Self>) -> Value;
    /// Borrow the array if the value has this dtype.
    fn unwrap_ref(v: &Value) -> Option<&ArrayD<Self>>;
    /// Take the array if the value has this dtype.
    fn unwrap(v: Value) -> std::result::Result<ArrayD<Self>, Value>;
    /// Convert from f64 (saturating/truncating like `as`).
    fn from_f64(x: f64) -> Self;
    /// Convert to f64.
    fn to_f64(self) -> f64;
    /// Convert from i64 (wrapping for narrower integers, like `as`).
    fn from_i64(x: i64) -> Self;
    /// Convert to i64 (floats truncate and saturate, like `as`).
    fn to_i64(self) -> i64;
}

macro_rules! element {
    ($t:ty, $variant:ident, $from:expr, $to:expr, $fromi:expr, $toi:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn wrap(a: ArrayD<Self>) -> Value {
                Value::$variant(a)
            }
            fn unwrap_ref(v: &Value) -> Option<&ArrayD<Self>> {
                match v {
                    Value::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn unwrap(v: Value) -> std::result::Result<ArrayD<Self>, Value> {
                match v {
                    Value::$variant(a) => Ok(a),
                    other => Err(other),
                }
            }
            fn from_f64(x: f64) -> Self {
                let f: fn(f64) -> $t = $from;
                f(x)
            }
            fn to_f64(self) -> f64 {
                let f: fn($t) -> f64 = $to;
                f(self)
            }
            fn from_i64(x: i64) -> Self {
                let f: fn(i64) -> $t = $fromi;
                f(x)
            }
            fn to_i64(self) -> i64 {
                let f: fn($t) -> i64 = $toi;
                f(self)
            }
        }
    };
}
element!(f32, F32, |x| x as f32, |x| x as f64, |x| x as f32, |x| x
    as i64);
element!(f64, F64, |x| x, |x| x, |x| x as f64, |x| x as i64);
element!(i32, I32, |x| x as i32, |x| x as f64, |x| x as i32, |x| x
    as i64);
element!(i64, I64, |x| x as i64, |x| x as f64, |x| x, |x| x);
element!(u8, U8, |x| x as u8, |x| x as f64, |x| x as u8, |x| x as i64);
element!(
    bool,
    Bool,
    |x| x != 0.0,
    |x| x as u8 as f64,
    |x| x != 0,
    |x| x as i64
);

impl Value {
    /// The dtype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            Value::F32(_) => DType::F32,
            Value::F64(_) => DType::F64,
            Value::I32(_) => DType::I32,
            Value::I64(_) => DType::I64,
            Value::U8(_) => DType::U8,
            Value::Bool(_) => DType::Bool,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        map_value!(self, a => a.shape())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        map_value!(self, a => a.len())
    }

    /// True when the value has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A tensor of `shape` filled with `x` converted to `dtype`.
    pub fn full(dtype: DType, shape: &[usize], x: Scalar) -> Value {
        let f = x.as_f64();
        let sh = IxDyn(shape);
        match dtype {
            DType::F32 => Value::F32(ArrayD::from_elem(sh, f as f32)),
            DType::F64 => Value::F64(ArrayD::from_elem(sh, f)),
            DType::I32 => Value::I32(ArrayD::from_elem(sh, f as i32)),
            DType::I64 => Value::I64(ArrayD::from_elem(
                sh,
                match x {
                    Scalar::Int(i) => i,
                    _ => f as i64,
                },
            )),
            DType::U8 => Value::U8(ArrayD::from_elem(sh, f as u8)),
            DType::Bool => Value::Bool(ArrayD::from_elem(sh, f != 0.0)),
        }
    }

    /// A zero-filled tensor.
    pub fn zeros(dtype: DType, shape: &[usize]) -> Value {
        Value::full(dtype, shape, Scalar::Int(0))
    }

    /// Build a value from a flat vector and a shape.
    pub fn from_vec<T: Element>(shape: &[usize], data: Vec<T>) -> Result<Value> {
        let n = data.len();
        ArrayD::from_shape_vec(IxDyn(shape), data)
            .map(T::wrap)
            .map_err(|_| GraphError::invalid(format!("{n} elements do not fill shape {shape:?}")))
    }

    /// A scalar (rank-0) value.
    pub fn scalar<T: Element>(x: T) -> Value {
        T::wrap(ArrayD::from_elem(IxDyn(&[]), x))
    }

    /// Borrow as an array of `T`, or an error naming both dtypes.
    pub fn as_array<T: Element>(&self) -> Result<&ArrayD<T>> {
        T::unwrap_ref(self).ok_or_else(|| {
            GraphError::invalid(format!(
                "value has dtype {}, asked for {}",
                self.dtype(),
                T::DTYPE
            ))
        })
    }

    /// Take as an array of `T`, or an error naming both dtypes.
    pub fn into_array<T: Element>(self) -> Result<ArrayD<T>> {
        let dt = self.dtype();
        T::unwrap(self).map_err(|_| {
            GraphError::invalid(format!("value has dtype {dt}, asked for {}", T::DTYPE))
        })
    }

    /// Borrow as f32.
    pub fn as_f32(&self) -> Result<&ArrayD<f32>> {
        self.as_array()
    }
    /// Borrow as f64.
    pub fn as_f64(&self) -> Result<&ArrayD<f64>> {
        self.as_array()
    }
    /// Borrow as i32.
    pub fn as_i32(&self) -> Result<&ArrayD<i32>> {
        self.as_array()
    }
    /// Borrow as i64.
    pub fn as_i64(&self) -> Result<&ArrayD<i64>> {
        self.as_array()
    }

    /// All elements converted to f64, in row-major order.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        map_value!(self, a => a.iter().map(|x| x.to_f64()).collect())
    }

    /// Element-wise conversion to another dtype. Float → int truncates toward zero and
    /// saturates (NaN → 0), int → int wraps (two's complement), anything → bool is `!= 0`,
    /// bool → number is 0 or 1. The compiled backends implement exactly these rules.
    pub fn cast(&self, to: DType) -> Value {
        fn conv<S: Element, T: Element>(a: &ArrayD<S>) -> ArrayD<T> {
            if S::DTYPE.is_float() {
                // `from_f64` is `as` for numbers (saturating, NaN → 0) and `!= 0` for bool.
                a.mapv(|x| T::from_f64(x.to_f64()))
            } else if T::DTYPE.is_float() {
                a.mapv(|x| T::from_f64(x.to_i64() as f64))
            } else {
                a.mapv(|x| T::from_i64(x.to_i64()))
            }
        }
        fn go<S: Element>(a: &ArrayD<S>, to: DType) -> Value {
            match to {
                DType::F32 => Value::F32(conv(a)),
                DType::F64 => Value::F64(conv(a)),
                DType::I32 => Value::I32(conv(a)),
                DType::I64 => Value::I64(conv(a)),
                DType::U8 => Value::U8(conv(a)),
                DType::Bool => Value::Bool(conv(a)),
            }
        }
        map_value!(self, a => go(a, to))
    }

    /// Bitwise equality: same dtype, shape and element bits (NaNs with equal payload are equal).
    pub fn bit_eq(&self, other: &Value) -> bool {
        if self.dtype() != other.dtype() || self.shape() != other.shape() {
            return false;
        }
        match (self, other) {
            (Value::F32(a), Value::F32(b)) => {
                a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Value::F64(a), Value::F64(b)) => {
                a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (Value::I32(a), Value::I32(b)) => a == b,
            (Value::I64(a), Value::I64(b)) => a == b,
            (Value::U8(a), Value::U8(b)) => a == b,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            _ => false,
        }
    }
}

impl PartialEq for Value {
    /// Values compare by [`Value::bit_eq`], so a graph with NaN constants still equals itself.
    fn eq(&self, other: &Value) -> bool {
        self.bit_eq(other)
    }
}

impl<T: Element> From<ArrayD<T>> for Value {
    fn from(a: ArrayD<T>) -> Value {
        T::wrap(a)
    }
}

macro_rules! from_fixed_dim {
    ($($d:ty),*) => {$(
        impl<T: Element> From<ndarray::Array<T, $d>> for Value {
            fn from(a: ndarray::Array<T, $d>) -> Value {
                T::wrap(a.into_dyn())
            }
        }
    )*};
}
from_fixed_dim!(
    ndarray::Ix0,
    ndarray::Ix1,
    ndarray::Ix2,
    ndarray::Ix3,
    ndarray::Ix4
);

impl<T: Element> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Value {
        let n = v.len();
        T::wrap(ArrayD::from_shape_vec(IxDyn(&[n]), v).expect("1-D shape always fits"))
    }
}
