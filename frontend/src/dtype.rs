//! Element types ([`DType`]) and the scalar literal type ([`Scalar`]) used in attributes.

use std::fmt;
use std::str::FromStr;

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
    /// 32-bit signed integer (wrapping arithmetic).
    I32,
    /// 64-bit signed integer (wrapping arithmetic).
    I64,
    /// 8-bit unsigned integer (wrapping arithmetic).
    U8,
    /// Boolean.
    Bool,
}

impl DType {
    /// Every dtype, in declaration order.
    pub const ALL: [DType; 6] = [
        DType::F32,
        DType::F64,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::Bool,
    ];

    /// The name used in the text IR and in error messages (`f32`, `i64`, `bool`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::Bool => "bool",
        }
    }

    /// True for `f32` and `f64`.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// True for `i32`, `i64` and `u8`.
    pub fn is_int(self) -> bool {
        matches!(self, DType::I32 | DType::I64 | DType::U8)
    }

    /// True for every dtype but `bool`.
    pub fn is_numeric(self) -> bool {
        self != DType::Bool
    }

    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::U8 | DType::Bool => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        DType::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                format!("unknown dtype `{s}` (expected one of f32, f64, i32, i64, u8, bool)")
            })
    }
}

/// A scalar literal: what `&t + 2.0` or a padding value carries before it takes the tensor's dtype.
/// Equality is bitwise for floats (NaN equals itself, -0.0 differs from 0.0), so graphs
/// holding such attributes compare equal to their own copies.
#[derive(Clone, Copy, Debug)]
pub enum Scalar {
    /// A floating-point literal.
    Float(f64),
    /// An integer literal.
    Int(i64),
    /// A boolean literal.
    Bool(bool),
}

impl PartialEq for Scalar {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Scalar::Float(a), Scalar::Float(b)) => a.to_bits() == b.to_bits(),
            (Scalar::Int(a), Scalar::Int(b)) => a == b,
            (Scalar::Bool(a), Scalar::Bool(b)) => a == b,
            _ => false,
        }
    }
}

impl Scalar {
    /// The value as f64 (bools are 0 or 1).
    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::Float(x) => x,
            Scalar::Int(i) => i as f64,
            Scalar::Bool(b) => b as u8 as f64,
        }
    }

    /// Whether this literal can be represented exactly in `dtype`
    /// (a float literal with a fractional part does not fit an integer dtype).
    pub fn fits(self, dtype: DType) -> bool {
        match (self, dtype) {
            (Scalar::Bool(_), DType::Bool) => true,
            (Scalar::Bool(_), _) | (_, DType::Bool) => false,
            (_, DType::F32 | DType::F64) => true,
            (Scalar::Int(i), DType::I32) => i32::try_from(i).is_ok(),
            (Scalar::Int(i), DType::U8) => u8::try_from(i).is_ok(),
            (Scalar::Int(_), DType::I64) => true,
            (Scalar::Float(x), d) => {
                x.fract() == 0.0
                    && match d {
                        DType::I32 => (i32::MIN as f64..=i32::MAX as f64).contains(&x),
                        DType::U8 => (0.0..=255.0).contains(&x),
                        _ => (-9.2e18..=9.2e18).contains(&x),
                    }
            }
        }
    }
}

impl From<f64> for Scalar {
    fn from(x: f64) -> Self {
        Scalar::Float(x)
    }
}
impl From<f32> for Scalar {
    fn from(x: f32) -> Self {
        Scalar::Float(x as f64)
    }
}
impl From<i64> for Scalar {
    fn from(x: i64) -> Self {
        Scalar::Int(x)
    }
}
impl From<i32> for Scalar {
    fn from(x: i32) -> Self {
        Scalar::Int(x as i64)
    }
}
impl From<bool> for Scalar {
    fn from(x: bool) -> Self {
        Scalar::Bool(x)
    }
}
