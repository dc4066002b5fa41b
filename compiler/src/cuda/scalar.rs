//! Scalar CUDA C for the kernel IR's expressions: C types, literals, and the op table's
//! unary, binary and cast semantics per dtype (f32 math in single precision with CUDA's
//! documented ulp bounds, integers wrapping, comparisons and logic on bool).

use flumen_frontend::DType;
use flumen_frontend::op::{BinaryKind, BinaryOp, ReduceOp, UnaryOp};

/// The C type of a buffer element or expression of `d`.
pub fn c_type(d: DType) -> &'static str {
    match d {
        DType::F32 => "float",
        DType::F64 => "double",
        DType::I32 => "int",
        DType::I64 => "fl_i64",
        DType::U8 => "fl_u8",
        DType::Bool => "bool",
    }
}

/// The type reductions of `d` accumulate in (u8 and bool widen to `unsigned`, which the
/// warp shuffles support; wrapping sums and products agree modulo 256).
pub fn acc_type(d: DType) -> &'static str {
    match d {
        DType::U8 | DType::Bool => "unsigned",
        other => c_type(other),
    }
}

/// A literal of float dtype `d` (rounded to f32 for f32), spelled so it reads back exactly.
fn float_literal(d: DType, x: f64) -> String {
    let (inf, nan, suffix) = if d == DType::F32 {
        ("(1.0f / 0.0f)", "(0.0f / 0.0f)", "f")
    } else {
        ("(1.0 / 0.0)", "(0.0 / 0.0)", "")
    };
    if x.is_nan() {
        nan.to_string()
    } else if x.is_infinite() {
        if x > 0.0 {
            inf.to_string()
        } else {
            format!("(-{inf})")
        }
    } else if d == DType::F32 {
        let s = format!("{:?}", x as f32);
        if s.starts_with('-') {
            format!("({s}{suffix})")
        } else {
            format!("{s}{suffix}")
        }
    } else {
        let s = format!("{x:?}");
        if s.starts_with('-') {
            format!("({s})")
        } else {
            s
        }
    }
}

/// A literal of integer or bool dtype `d` with value `i` (already in range).
fn int_literal(d: DType, i: i64) -> String {
    match d {
        DType::Bool => (if i != 0 { "true" } else { "false" }).to_string(),
        DType::I64 if i == i64::MIN => "(-9223372036854775807ll - 1)".to_string(),
        DType::I64 => format!("{i}ll"),
        DType::I32 if i == i32::MIN as i64 => "(-2147483647 - 1)".to_string(),
        DType::I32 if i < 0 => format!("({i})"),
        DType::I32 => i.to_string(),
        DType::U8 => format!("(fl_u8){i}"),
        DType::F32 | DType::F64 => float_literal(d, i as f64),
    }
}

/// `Expr::FloatConst(x)` as an expression of dtype `d`.
pub fn float_const(d: DType, x: f64) -> String {
    match d {
        DType::F32 | DType::F64 => float_literal(d, x),
        DType::Bool => int_literal(d, (x != 0.0) as i64),
        DType::I64 => int_literal(d, x as i64),
        DType::I32 => int_literal(d, x as i32 as i64),
        DType::U8 => int_literal(d, x as u8 as i64),
    }
}

/// `Expr::IntConst(i)` as an expression of dtype `d` (wrapped or converted like a cast).
pub fn int_const(d: DType, i: i64) -> String {
    match d {
        DType::F32 => float_literal(d, i as f64 as f32 as f64),
        DType::F64 => float_literal(d, i as f64),
        DType::Bool => int_literal(d, (i != 0) as i64),
        DType::I32 => int_literal(d, i as i32 as i64),
        DType::U8 => int_literal(d, i as u8 as i64),
        DType::I64 => int_literal(d, i),
    }
}

/// Wrap an i64-valued C expression to dtype `d`'s integer type.
fn wrap_int(d: DType, e: String) -> String {
    match d {
        DType::I64 => e,
        other => format!("({})({e})", c_type(other)),
    }
}

/// The unary op `op` on `x` of dtype `d`.
pub fn unary(op: UnaryOp, d: DType, x: &str) -> String {
    use UnaryOp::*;
    if d == DType::Bool {
        return match op {
            LogicalNot => format!("!{x}"),
            // Numeric ops never see bool; identity keeps the value.
            _ => x.to_string(),
        };
    }
    if !d.is_float() {
        let t = c_type(d);
        let neg = |x: &str| wrap_int(d, format!("(fl_i64)(0ull - (fl_u64)(fl_i64){x})"));
        return match op {
            Neg => neg(x),
            Abs if d == DType::U8 => x.to_string(),
            Abs => format!("({x} < 0 ? {} : {x})", neg(x)),
            Sign => format!("({t})(({x} > 0) - ({x} < 0))"),
            Square => wrap_int(d, format!("fl_prod((fl_i64){x}, (fl_i64){x})")),
            Relu => format!("({x} > 0 ? {x} : ({t})0)"),
            LogicalNot => format!("({t})({x} == 0)"),
            // Float-only ops are rejected by the op table for integers.
            _ => x.to_string(),
        };
    }
    let f = if d == DType::F32 { "f" } else { "" };
    let one = float_literal(d, 1.0);
    match op {
        Neg => format!("(-{x})"),
        Abs => format!("fabs{f}({x})"),
        Sign => format!("fl_sign({x})"),
        Exp => format!("exp{f}({x})"),
        Log => format!("log{f}({x})"),
        Log1p => format!("log1p{f}({x})"),
        Sqrt => format!("sqrt{f}({x})"),
        Rsqrt => format!("({one} / sqrt{f}({x}))"),
        Square => format!("({x} * {x})"),
        Reciprocal => format!("({one} / {x})"),
        Sin => format!("sin{f}({x})"),
        Cos => format!("cos{f}({x})"),
        Tanh => format!("tanh{f}({x})"),
        Sigmoid => format!("fl_sigmoid({x})"),
        Relu => format!(
            "({x} < {zero} ? {zero} : {x})",
            zero = float_literal(d, 0.0)
        ),
        Softplus => format!("fl_softplus({x})"),
        Gelu => format!(
            "({half} * {x} * ({one} + erf{f}({x} / {sqrt2})))",
            half = float_literal(d, 0.5),
            sqrt2 = float_literal(d, std::f64::consts::SQRT_2)
        ),
        Erf => format!("erf{f}({x})"),
        Floor => format!("floor{f}({x})"),
        Ceil => format!("ceil{f}({x})"),
        Round => format!("rint{f}({x})"),
        LogicalNot => format!("({x} == {})", float_literal(d, 0.0)),
        Identity | StopGradient => x.to_string(),
    }
}

/// The binary op `op` on `a`, `b` of operand dtype `d`.
pub fn binary(op: BinaryOp, d: DType, a: &str, b: &str) -> String {
    use BinaryOp::*;
    match op.kind() {
        BinaryKind::Comparison => {
            let sym = match op {
                Equal => "==",
                NotEqual => "!=",
                Less => "<",
                LessEqual => "<=",
                Greater => ">",
                _ => ">=",
            };
            return format!("({a} {sym} {b})");
        }
        BinaryKind::Logical => {
            let sym = if op == LogicalAnd { "&&" } else { "||" };
            return format!("({a} {sym} {b})");
        }
        BinaryKind::Arithmetic => {}
    }
    if d == DType::Bool {
        // Maximum/minimum of bools are or/and; the rest are not defined on bool.
        let sym = if op == Minimum { "&&" } else { "||" };
        return format!("({a} {sym} {b})");
    }
    if d.is_float() {
        let f = if d == DType::F32 { "f" } else { "" };
        return match op {
            Add => format!("({a} + {b})"),
            Sub => format!("({a} - {b})"),
            Mul => format!("({a} * {b})"),
            Div => format!("({a} / {b})"),
            Pow => format!("pow{f}({a}, {b})"),
            Maximum => format!("fl_max({a}, {b})"),
            Minimum => format!("fl_min({a}, {b})"),
            _ => format!("fl_mod({a}, {b})"),
        };
    }
    let (a64, b64) = (format!("(fl_i64){a}"), format!("(fl_i64){b}"));
    match op {
        Add => wrap_int(d, format!("fl_sum({a64}, {b64})")),
        Sub => wrap_int(d, format!("(fl_i64)((fl_u64){a64} - (fl_u64){b64})")),
        Mul => wrap_int(d, format!("fl_prod({a64}, {b64})")),
        Div => wrap_int(d, format!("fl_idiv({a64}, {b64})")),
        Pow => wrap_int(d, format!("fl_ipow({a64}, {b64})")),
        Maximum => format!("({a} > {b} ? {a} : {b})"),
        Minimum => format!("({a} < {b} ? {a} : {b})"),
        _ => wrap_int(d, format!("fl_imod({a64}, {b64})")),
    }
}

/// Convert `x` from dtype `from` to `to` (the semantics of `Value::cast`).
pub fn cast(from: DType, to: DType, x: &str) -> String {
    if from == to {
        return x.to_string();
    }
    match (from, to) {
        (f, DType::Bool) if f.is_float() => format!("({x} != {})", float_literal(f, 0.0)),
        (_, DType::Bool) => format!("({x} != 0)"),
        (DType::Bool, t) if t.is_float() => {
            format!(
                "({x} ? {} : {})",
                float_literal(t, 1.0),
                float_literal(t, 0.0)
            )
        }
        (DType::Bool, t) => format!("({})({x})", c_type(t)),
        (f, t) if f.is_float() => match t {
            DType::F32 => format!("(float)({x})"),
            DType::F64 => format!("(double)({x})"),
            DType::I32 => format!("fl_f2i32((double)({x}))"),
            DType::I64 => format!("fl_f2i64((double)({x}))"),
            _ => format!("fl_f2u8((double)({x}))"),
        },
        // Integers convert to f64 first, then round to f32 (as the interpreter does).
        (_, DType::F32) => format!("(float)(double)({x})"),
        (_, t) => format!("({})({x})", c_type(t)),
    }
}

/// The identity element of reduction `op` over dtype `d`, in the accumulator type.
pub fn reduce_init(op: ReduceOp, d: DType) -> String {
    let acc = |i: i64| match d {
        DType::U8 | DType::Bool => format!("{i}u"),
        other => int_literal(other, i),
    };
    match op {
        ReduceOp::Sum | ReduceOp::Mean if d.is_float() => float_literal(d, 0.0),
        ReduceOp::Prod if d.is_float() => float_literal(d, 1.0),
        ReduceOp::Max if d.is_float() => float_literal(d, f64::NEG_INFINITY),
        ReduceOp::Min if d.is_float() => float_literal(d, f64::INFINITY),
        ReduceOp::Sum | ReduceOp::Mean => acc(0),
        ReduceOp::Prod => acc(1),
        ReduceOp::Max => acc(match d {
            DType::I32 => i32::MIN as i64,
            DType::I64 => i64::MIN,
            _ => 0,
        }),
        ReduceOp::Min => acc(match d {
            DType::I32 => i32::MAX as i64,
            DType::I64 => i64::MAX,
            DType::Bool => 1,
            _ => 255,
        }),
    }
}

/// The prelude's combine function and block reduction for `op`.
pub fn reduce_fns(op: ReduceOp) -> (&'static str, &'static str) {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => ("fl_sum", "fl_block_sum"),
        ReduceOp::Prod => ("fl_prod", "fl_block_prod"),
        ReduceOp::Max => ("fl_max", "fl_block_max"),
        ReduceOp::Min => ("fl_min", "fl_block_min"),
    }
}
