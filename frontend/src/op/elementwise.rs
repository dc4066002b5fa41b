//! Elementwise ops: the unary and binary tables with their dtype rules and their scalar
//! semantics. The reference interpreter evaluates these functions directly; the compiled
//! backends must agree with them (floats within the stated tolerances, integers exactly).
//!
//! Integer semantics (i32, i64, u8): arithmetic wraps (two's complement); division
//! truncates toward zero and `x / 0 == 0`; `mod` is floor-modulo (the sign of the divisor)
//! and `x mod 0 == 0`; `pow` with a negative exponent is 0 except for bases ±1.
//! Float `maximum`/`minimum` propagate NaN; `relu(NaN)` is NaN.

use crate::dtype::DType;

/// Elementwise unary ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `|x|`
    Abs,
    /// −1, 0 or 1 (NaN stays NaN).
    Sign,
    /// `e^x`
    Exp,
    /// natural logarithm
    Log,
    /// `ln(1 + x)`
    Log1p,
    /// `√x`
    Sqrt,
    /// `1/√x`
    Rsqrt,
    /// `x²`
    Square,
    /// `1/x`
    Reciprocal,
    /// sine
    Sin,
    /// cosine
    Cos,
    /// hyperbolic tangent
    Tanh,
    /// `1/(1+e^−x)`
    Sigmoid,
    /// `max(x, 0)`
    Relu,
    /// `ln(1 + e^x)`, computed stably
    Softplus,
    /// `x·Φ(x)` with the exact (erf) normal CDF
    Gelu,
    /// the error function
    Erf,
    /// round toward −∞
    Floor,
    /// round toward +∞
    Ceil,
    /// round half to even
    Round,
    /// boolean not
    LogicalNot,
    /// `x`
    Identity,
    /// `x` in the forward pass, zero gradient in the backward pass
    StopGradient,
}

/// Which dtypes an elementwise op accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DTypeClass {
    /// f32, f64
    Float,
    /// every dtype but bool
    Numeric,
    /// bool only
    Bool,
    /// every dtype
    Any,
}

impl DTypeClass {
    /// Whether `d` belongs to the class.
    pub fn accepts(self, d: DType) -> bool {
        match self {
            DTypeClass::Float => d.is_float(),
            DTypeClass::Numeric => d.is_numeric(),
            DTypeClass::Bool => d == DType::Bool,
            DTypeClass::Any => true,
        }
    }

    /// Human description used in error messages.
    pub fn describe(self) -> &'static str {
        match self {
            DTypeClass::Float => "a float dtype (f32 or f64)",
            DTypeClass::Numeric => "a numeric dtype (f32, f64, i32, i64 or u8)",
            DTypeClass::Bool => "bool",
            DTypeClass::Any => "any dtype",
        }
    }
}

impl UnaryOp {
    /// Every unary op.
    pub const ALL: [UnaryOp; 24] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sign,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Log1p,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Square,
        UnaryOp::Reciprocal,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Relu,
        UnaryOp::Softplus,
        UnaryOp::Gelu,
        UnaryOp::Erf,
        UnaryOp::Floor,
        UnaryOp::Ceil,
        UnaryOp::Round,
        UnaryOp::LogicalNot,
        UnaryOp::Identity,
        UnaryOp::StopGradient,
    ];

    /// The op's name in the text IR.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Sign => "sign",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Log1p => "log1p",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Square => "square",
            UnaryOp::Reciprocal => "reciprocal",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::Softplus => "softplus",
            UnaryOp::Gelu => "gelu",
            UnaryOp::Erf => "erf",
            UnaryOp::Floor => "floor",
            UnaryOp::Ceil => "ceil",
            UnaryOp::Round => "round",
            UnaryOp::LogicalNot => "logical_not",
            UnaryOp::Identity => "identity",
            UnaryOp::StopGradient => "stop_gradient",
        }
    }

    /// The dtypes the op accepts; the output dtype equals the input's.
    pub fn dtypes(self) -> DTypeClass {
        use UnaryOp::*;
        match self {
            Neg | Abs | Sign | Square | Relu => DTypeClass::Numeric,
            Exp | Log | Log1p | Sqrt | Rsqrt | Reciprocal | Sin | Cos | Tanh | Sigmoid
            | Softplus | Gelu | Erf | Floor | Ceil | Round => DTypeClass::Float,
            LogicalNot => DTypeClass::Bool,
            Identity | StopGradient => DTypeClass::Any,
        }
    }

    /// The float semantics (f32 is computed in f64 and rounded once).
    pub fn eval_float(self, x: f64) -> f64 {
        use UnaryOp::*;
        match self {
            Neg => -x,
            Abs => x.abs(),
            Sign => {
                if x.is_nan() || x == 0.0 {
                    x
                } else {
                    x.signum()
                }
            }
            Exp => x.exp(),
            Log => x.ln(),
            Log1p => x.ln_1p(),
            Sqrt => x.sqrt(),
            Rsqrt => 1.0 / x.sqrt(),
            Square => x * x,
            Reciprocal => 1.0 / x,
            Sin => x.sin(),
            Cos => x.cos(),
            Tanh => x.tanh(),
            Sigmoid => {
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
            Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
            Erf => libm::erf(x),
            Floor => x.floor(),
            Ceil => x.ceil(),
            Round => x.round_ties_even(),
            LogicalNot => (x == 0.0) as u8 as f64,
            Identity | StopGradient => x,
        }
    }

    /// The integer semantics, computed in i64 and wrapped to the dtype by the caller.
    /// `None` for float-only ops.
    pub fn eval_int(self, x: i64) -> Option<i64> {
        use UnaryOp::*;
        Some(match self {
            Neg => x.wrapping_neg(),
            Abs => x.wrapping_abs(),
            Sign => x.signum(),
            Square => x.wrapping_mul(x),
            Relu => x.max(0),
            Identity | StopGradient => x,
            LogicalNot => (x == 0) as i64,
            _ => return None,
        })
    }
}

/// Elementwise binary ops (numpy broadcasting; both operands must have the same dtype).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a − b`
    Sub,
    /// `a · b`
    Mul,
    /// `a / b` (integers: truncating, `/0 → 0`)
    Div,
    /// `a^b`
    Pow,
    /// NaN-propagating maximum
    Maximum,
    /// NaN-propagating minimum
    Minimum,
    /// floor modulo (result has the divisor's sign)
    Mod,
    /// `a == b` → bool
    Equal,
    /// `a != b` → bool
    NotEqual,
    /// `a < b` → bool
    Less,
    /// `a <= b` → bool
    LessEqual,
    /// `a > b` → bool
    Greater,
    /// `a >= b` → bool
    GreaterEqual,
    /// boolean and
    LogicalAnd,
    /// boolean or
    LogicalOr,
}

/// The three families of binary ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryKind {
    /// numeric in, same dtype out
    Arithmetic,
    /// any dtype in, bool out
    Comparison,
    /// bool in, bool out
    Logical,
}

impl BinaryOp {
    /// Every binary op.
    pub const ALL: [BinaryOp; 16] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Mod,
        BinaryOp::Equal,
        BinaryOp::NotEqual,
        BinaryOp::Less,
        BinaryOp::LessEqual,
        BinaryOp::Greater,
        BinaryOp::GreaterEqual,
        BinaryOp::LogicalAnd,
        BinaryOp::LogicalOr,
    ];

    /// The op's name in the text IR.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Mod => "mod",
            BinaryOp::Equal => "equal",
            BinaryOp::NotEqual => "not_equal",
            BinaryOp::Less => "less",
            BinaryOp::LessEqual => "less_equal",
            BinaryOp::Greater => "greater",
            BinaryOp::GreaterEqual => "greater_equal",
            BinaryOp::LogicalAnd => "logical_and",
            BinaryOp::LogicalOr => "logical_or",
        }
    }

    /// Which family the op belongs to.
    pub fn kind(self) -> BinaryKind {
        use BinaryOp::*;
        match self {
            Add | Sub | Mul | Div | Pow | Maximum | Minimum | Mod => BinaryKind::Arithmetic,
            Equal | NotEqual | Less | LessEqual | Greater | GreaterEqual => BinaryKind::Comparison,
            LogicalAnd | LogicalOr => BinaryKind::Logical,
        }
    }

    /// The dtypes the operands may have.
    pub fn dtypes(self) -> DTypeClass {
        match self.kind() {
            BinaryKind::Arithmetic => DTypeClass::Numeric,
            BinaryKind::Comparison => DTypeClass::Any,
            BinaryKind::Logical => DTypeClass::Bool,
        }
    }

    /// The output dtype for operands of dtype `d`.
    pub fn output_dtype(self, d: DType) -> DType {
        match self.kind() {
            BinaryKind::Arithmetic => d,
            _ => DType::Bool,
        }
    }

    /// Float semantics of the arithmetic ops.
    pub fn eval_float(self, a: f64, b: f64) -> f64 {
        use BinaryOp::*;
        match self {
            Add => a + b,
            Sub => a - b,
            Mul => a * b,
            Div => a / b,
            Pow => a.powf(b),
            Maximum => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else if a == b {
                    if a.is_sign_negative() { b } else { a }
                } else if a > b {
                    a
                } else {
                    b
                }
            }
            Minimum => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else if a == b {
                    if a.is_sign_negative() { a } else { b }
                } else if a < b {
                    a
                } else {
                    b
                }
            }
            Mod => {
                let r = a % b;
                if r != 0.0 && ((r < 0.0) != (b < 0.0)) {
                    r + b
                } else {
                    r
                }
            }
            _ => self.compare(a, b) as u8 as f64,
        }
    }

    /// Integer semantics of the arithmetic ops, computed in i64 (the caller wraps).
    pub fn eval_int(self, a: i64, b: i64) -> i64 {
        use BinaryOp::*;
        match self {
            Add => a.wrapping_add(b),
            Sub => a.wrapping_sub(b),
            Mul => a.wrapping_mul(b),
            Div => {
                if b == 0 {
                    0
                } else {
                    a.wrapping_div(b)
                }
            }
            Pow => {
                if b < 0 {
                    match a {
                        1 => 1,
                        -1 => {
                            if b % 2 == 0 {
                                1
                            } else {
                                -1
                            }
                        }
                        _ => 0,
                    }
                } else {
                    a.wrapping_pow(b.min(u32::MAX as i64) as u32)
                }
            }
            Maximum => a.max(b),
            Minimum => a.min(b),
            Mod => {
                if b == 0 {
                    0
                } else {
                    let r = a.wrapping_rem(b);
                    if r != 0 && ((r < 0) != (b < 0)) {
                        r + b
                    } else {
                        r
                    }
                }
            }
            _ => self.compare(a, b) as i64,
        }
    }

    /// Comparison semantics (false for the non-comparison ops).
    pub fn compare<T: PartialOrd>(self, a: T, b: T) -> bool {
        use BinaryOp::*;
        match self {
            Equal => a == b,
            NotEqual => a != b,
            Less => a < b,
            LessEqual => a <= b,
            Greater => a > b,
            GreaterEqual => a >= b,
            _ => false,
        }
    }

    /// Logical semantics (bool operands).
    pub fn eval_bool(self, a: bool, b: bool) -> bool {
        match self {
            BinaryOp::LogicalAnd => a && b,
            BinaryOp::LogicalOr => a || b,
            BinaryOp::Maximum => a || b,
            BinaryOp::Minimum => a && b,
            _ => self.compare(a, b),
        }
    }
}
