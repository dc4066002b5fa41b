//! Lowering of the IR's scalar operations to CLIF with the reference's exact semantics, on
//! scalars and on vectors (4 lanes of f32/i32, 2 of f64/i64).
//!
//! Value representation: f32/f64/i32/i64 in their CLIF types; u8 and bool scalars in `i8`
//! (bool is 0 or 1). In vectors a bool is a lane mask (all ones or zero) of the lane width
//! of the other values, so comparisons, `select` and logical ops are single instructions.
//! u8 values and bool loads/stores never appear in vectors (the planner keeps them scalar).
//! Operations without a good vector lowering (integer division, `pow`, f64 library calls,
//! f64↔i64 casts) run lane by lane through the scalar lowering.

use super::CodegenError;
use super::int_ops::int_cc;
use super::math::{self, Fx, Sym};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32, F32X4, F64, F64X2, I8, I32, I32X4, I64, I64X2};
use cranelift_codegen::ir::{BlockArg, FuncRef, InstBuilder, Type, Value};
use cranelift_frontend::FunctionBuilder;
use flumen_frontend::DType;
use flumen_frontend::op::{BinaryKind, BinaryOp, ReduceOp, UnaryOp};

/// Resolves imported C math functions for the function being built.
pub(crate) trait Imports {
    /// A reference to `sym` usable in the current function.
    fn func_ref(&mut self, fb: &mut FunctionBuilder, sym: Sym) -> Result<FuncRef, CodegenError>;
}

/// A compile-time constant, as the reference evaluator represents it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Const {
    F(f64),
    I(i64),
    B(bool),
}

/// The reference's conversion of an f64 to dtype `d` (`from_f64` in the evaluator).
pub(crate) fn const_from_f64(d: DType, x: f64) -> Const {
    match d {
        DType::F32 => Const::F(x as f32 as f64),
        DType::F64 => Const::F(x),
        DType::Bool => Const::B(x != 0.0),
        DType::I64 => Const::I(x as i64),
        DType::I32 => Const::I(x as i32 as i64),
        DType::U8 => Const::I(x as u8 as i64),
    }
}

/// The reference's conversion of an i64 constant to dtype `d`.
pub(crate) fn const_from_i64(d: DType, i: i64) -> Const {
    match d {
        DType::F32 => Const::F(i as f64 as f32 as f64),
        DType::F64 => Const::F(i as f64),
        DType::Bool => Const::B(i != 0),
        DType::I64 => Const::I(i),
        DType::I32 => Const::I(i as i32 as i64),
        DType::U8 => Const::I(i as u8 as i64),
    }
}

/// The CLIF type holding a value of dtype `d` in `lanes` lanes, if representable.
pub(crate) fn repr(d: DType, lanes: u32) -> Option<Type> {
    Some(match (d, lanes) {
        (DType::F32, 1) => F32,
        (DType::F64, 1) => F64,
        (DType::I32, 1) => I32,
        (DType::I64, 1) => I64,
        (DType::U8 | DType::Bool, 1) => I8,
        (DType::F32, 4) => F32X4,
        (DType::I32 | DType::Bool, 4) => I32X4,
        (DType::F64, 2) => F64X2,
        (DType::I64 | DType::Bool, 2) => I64X2,
        _ => return None,
    })
}

/// The lane count of vectors holding `d`, if `d` can be vectorised (not u8; bool adapts).
pub(crate) fn natural_lanes(d: DType) -> Option<u32> {
    match d {
        DType::F32 | DType::I32 => Some(4),
        DType::F64 | DType::I64 => Some(2),
        DType::U8 | DType::Bool => None,
    }
}

/// Emits operations into a function.
pub(crate) struct Ops<'a, 'f> {
    pub fb: &'a mut FunctionBuilder<'f>,
    pub imports: &'a mut dyn Imports,
}

type R = Result<Value, CodegenError>;

impl<'a, 'f> Ops<'a, 'f> {
    pub(super) fn ty(&self, v: Value) -> Type {
        self.fb.func.dfg.value_type(v)
    }

    fn splat_if(&mut self, ty: Type, s: Value) -> Value {
        if ty.is_vector() {
            self.fb.ins().splat(ty, s)
        } else {
            s
        }
    }

    /// An integer constant of type `ty` (a scalar or a splat), `x` wrapped to the lane width.
    pub(super) fn iconst(&mut self, ty: Type, x: i64) -> Value {
        let s = iconst(self.fb, ty.lane_type(), x);
        self.splat_if(ty, s)
    }

    /// A constant of dtype `d` in `lanes` lanes.
    pub fn constant(&mut self, d: DType, lanes: u32, c: Const) -> R {
        let ty = repr(d, lanes).ok_or_else(|| unsupported(format!("{d} in {lanes} lanes")))?;
        let s = match (c, ty.lane_type()) {
            (Const::F(x), F32) => self.fb.ins().f32const(x as f32),
            (Const::F(x), F64) => self.fb.ins().f64const(x),
            (Const::I(i), lt) => iconst(self.fb, lt, i),
            (Const::B(b), I8) => iconst(self.fb, I8, b as i64),
            (Const::B(b), lt) => iconst(self.fb, lt, -(b as i64)),
            (c, lt) => return Err(unsupported(format!("constant {c:?} as {lt}"))),
        };
        Ok(self.splat_if(ty, s))
    }

    /// Splat a scalar of dtype `d` to `lanes` lanes (bools become masks).
    pub fn broadcast(&mut self, d: DType, lanes: u32, s: Value) -> R {
        if lanes == 1 {
            return Ok(s);
        }
        let ty = repr(d, lanes).ok_or_else(|| unsupported(format!("{d} in {lanes} lanes")))?;
        let s = if d == DType::Bool {
            self.bool_to_lane(s, ty.lane_type())
        } else {
            s
        };
        Ok(self.fb.ins().splat(ty, s))
    }

    /// Scalar bool (i8 0/1) to a mask lane (0 / all ones) of type `lt`.
    fn bool_to_lane(&mut self, b: Value, lt: Type) -> Value {
        let w = self.fb.ins().uextend(lt, b);
        self.fb.ins().ineg(w)
    }

    /// Mask lane to scalar bool.
    fn lane_to_bool(&mut self, v: Value) -> Value {
        self.fb.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
    }

    /// Run `f` on each lane of `args` (vectors of the given dtypes) and pack the results
    /// (dtype `out`). With one lane, just `f(args)`.
    pub fn lanewise(
        &mut self,
        lanes: u32,
        args: &[(Value, DType)],
        out: DType,
        mut f: impl FnMut(&mut Self, &[Value]) -> R,
    ) -> R {
        if lanes == 1 {
            let a: Vec<Value> = args.iter().map(|a| a.0).collect();
            return f(self, &a);
        }
        let out_ty =
            repr(out, lanes).ok_or_else(|| unsupported(format!("{out} in {lanes} lanes")))?;
        let mut acc: Option<Value> = None;
        for lane in 0..lanes as u8 {
            let mut scalars = Vec::with_capacity(args.len());
            for &(v, d) in args {
                let x = self.fb.ins().extractlane(v, lane);
                scalars.push(if d == DType::Bool {
                    self.lane_to_bool(x)
                } else {
                    x
                });
            }
            let mut r = f(self, &scalars)?;
            if out == DType::Bool {
                r = self.bool_to_lane(r, out_ty.lane_type());
            }
            acc = Some(match acc {
                None => self.fb.ins().splat(out_ty, r),
                Some(v) => self.fb.ins().insertlane(v, r, lane),
            });
        }
        Ok(acc.expect("lanes > 1"))
    }

    fn call(&mut self, sym: Sym, args: &[Value]) -> R {
        let f = self.imports.func_ref(self.fb, sym)?;
        let inst = self.fb.ins().call(f, args);
        Ok(self.fb.inst_results(inst)[0])
    }

    /// f64 library call on each lane of an f64 value.
    fn call_f64(&mut self, sym: Sym, lanes: u32, args: &[Value]) -> R {
        let a: Vec<(Value, DType)> = args.iter().map(|&v| (v, DType::F64)).collect();
        self.lanewise(lanes, &a, DType::F64, |o, s| o.call(sym, s))
    }

    /// f32 operation done in f64 (promote, `f`, round once), on each lane.
    fn via_f64(
        &mut self,
        lanes: u32,
        args: &[Value],
        mut f: impl FnMut(&mut Self, &[Value]) -> R,
    ) -> R {
        let a: Vec<(Value, DType)> = args.iter().map(|&v| (v, DType::F32)).collect();
        self.lanewise(lanes, &a, DType::F32, |o, s| {
            let d: Vec<Value> = s.iter().map(|&x| o.fb.ins().fpromote(F64, x)).collect();
            let r = f(o, &d)?;
            Ok(o.fb.ins().fdemote(F32, r))
        })
    }

    /// Unary op on dtype `d`.
    pub fn unary(&mut self, op: UnaryOp, d: DType, lanes: u32, x: Value) -> R {
        use UnaryOp::*;
        if matches!(op, Identity | StopGradient) {
            return Ok(x);
        }
        match d {
            DType::F32 | DType::F64 => self.float_unary(op, d, lanes, x),
            DType::Bool => match op {
                LogicalNot => Ok(self.not(x)),
                _ => Err(unsupported(format!("{} on bool", op.name()))),
            },
            _ => self.int_unary(op, d, x),
        }
    }

    fn not(&mut self, b: Value) -> Value {
        if self.ty(b).is_vector() {
            self.fb.ins().bnot(b)
        } else {
            self.fb.ins().bxor_imm_s(b, 1)
        }
    }

    fn float_unary(&mut self, op: UnaryOp, d: DType, lanes: u32, x: Value) -> R {
        use UnaryOp::*;
        let ty = self.ty(x);
        let f32_ = d == DType::F32;
        let mut fx = Fx::new(self.fb, ty);
        Ok(match op {
            Neg => fx.fb.ins().fneg(x),
            Abs => fx.fb.ins().fabs(x),
            Sign => {
                // NaN and ±0 unchanged, else ±1.
                let s = fx.sign_bits(x);
                let one = fx.f(1.0);
                let one_b = fx.bits(one);
                let r = fx.fb.ins().bor(s, one_b);
                let r = fx.float(r);
                let nan = fx.cmp(FloatCC::Unordered, x, x);
                let zero = fx.cmp_c(FloatCC::Equal, x, 0.0);
                let keep = fx.or(nan, zero);
                fx.sel(keep, x, r)
            }
            Sqrt => fx.fb.ins().sqrt(x),
            Rsqrt if f32_ => math::rsqrt_f32(fx.fb, x),
            Rsqrt => {
                let s = fx.fb.ins().sqrt(x);
                let one = fx.f(1.0);
                fx.fb.ins().fdiv(one, s)
            }
            Square => fx.fb.ins().fmul(x, x),
            Reciprocal => {
                let one = fx.f(1.0);
                fx.fb.ins().fdiv(one, x)
            }
            Relu => {
                let neg = fx.cmp_c(FloatCC::LessThan, x, 0.0);
                let zero = fx.f(0.0);
                fx.sel(neg, zero, x)
            }
            Floor => fx.fb.ins().floor(x),
            Ceil => fx.fb.ins().ceil(x),
            Round => fx.fb.ins().nearest(x),
            Exp if f32_ => math::exp_f32(&mut fx, x, None),
            Log if f32_ => math::log_f32(&mut fx, x),
            Log1p if f32_ => math::log1p_f32(&mut fx, x),
            Tanh if f32_ => math::tanh_f32(&mut fx, x),
            Sigmoid if f32_ => math::sigmoid_f32(&mut fx, x),
            Softplus if f32_ => math::softplus_f32(&mut fx, x),
            Erf if f32_ => math::erf_f32(&mut fx, x),
            Gelu if f32_ => math::gelu_f32(&mut fx, x),
            Sin | Cos if f32_ => return self.trig_f32(op == Cos, lanes, x),
            Exp => return self.call_f64(Sym::Exp, lanes, &[x]),
            Log => return self.call_f64(Sym::Log, lanes, &[x]),
            Log1p => return self.call_f64(Sym::Log1p, lanes, &[x]),
            Tanh => return self.call_f64(Sym::Tanh, lanes, &[x]),
            Erf => return self.call_f64(Sym::Erf, lanes, &[x]),
            Sin => return self.call_f64(Sym::Sin, lanes, &[x]),
            Cos => return self.call_f64(Sym::Cos, lanes, &[x]),
            Sigmoid | Softplus | Gelu => return self.f64_composite(op, lanes, x),
            LogicalNot | Identity | StopGradient => {
                return Err(unsupported(format!("{} on {d}", op.name())));
            }
        })
    }

    /// f64 sigmoid, softplus and gelu composed from library calls exactly as the reference.
    fn f64_composite(&mut self, op: UnaryOp, lanes: u32, x: Value) -> R {
        self.lanewise(lanes, &[(x, DType::F64)], DType::F64, |o, s| {
            let x = s[0];
            let one = o.fb.ins().f64const(1.0);
            Ok(match op {
                UnaryOp::Sigmoid => {
                    // x ≥ 0: 1/(1+e^−x); else e^x/(1+e^x); both have e = e^−|x|.
                    let a = o.fb.ins().fabs(x);
                    let na = o.fb.ins().fneg(a);
                    let e = o.call(Sym::Exp, &[na])?;
                    let d = o.fb.ins().fadd(one, e);
                    let zero = o.fb.ins().f64const(0.0);
                    let pos = o.fb.ins().fcmp(FloatCC::GreaterThanOrEqual, x, zero);
                    let num = o.fb.ins().select(pos, one, e);
                    o.fb.ins().fdiv(num, d)
                }
                UnaryOp::Softplus => {
                    let a = o.fb.ins().fabs(x);
                    let na = o.fb.ins().fneg(a);
                    let e = o.call(Sym::Exp, &[na])?;
                    let l = o.call(Sym::Log1p, &[e])?;
                    let zero = o.fb.ins().f64const(0.0);
                    let m = o.fb.ins().fmax(x, zero);
                    o.fb.ins().fadd(m, l)
                }
                _ => {
                    let sqrt2 = o.fb.ins().f64const(std::f64::consts::SQRT_2);
                    let t = o.fb.ins().fdiv(x, sqrt2);
                    let e = o.call(Sym::Erf, &[t])?;
                    let half = o.fb.ins().f64const(0.5);
                    let hx = o.fb.ins().fmul(half, x);
                    let c = o.fb.ins().fadd(one, e);
                    o.fb.ins().fmul(hx, c)
                }
            })
        })
    }

    /// f32 sin/cos: the polynomial path, with a cold branch calling the f64 library when
    /// some |x| exceeds [`math::TRIG_LIMIT`] (or is inf). Only those lanes take the
    /// library's value, so a lane's result never depends on the other lanes of its vector
    /// (and so not on vectorisation or fusion).
    fn trig_f32(&mut self, cos: bool, lanes: u32, x: Value) -> R {
        let ty = self.ty(x);
        let mut fx = Fx::new(self.fb, ty);
        let fast = math::sincos_f32(&mut fx, x, cos);
        let a = fx.fb.ins().fabs(x);
        let big = fx.cmp_c(FloatCC::GreaterThan, a, math::TRIG_LIMIT);
        let any = if lanes > 1 {
            self.fb.ins().vany_true(big)
        } else {
            big
        };
        let slow = self.fb.create_block();
        let join = self.fb.create_block();
        let res = self.fb.append_block_param(join, ty);
        self.fb.set_cold_block(slow);
        self.fb
            .ins()
            .brif(any, slow, &[], join, &[BlockArg::Value(fast)]);
        self.fb.seal_block(slow);
        self.fb.switch_to_block(slow);
        let sym = if cos { Sym::Cos } else { Sym::Sin };
        let exact = self.via_f64(lanes, &[x], |o, s| o.call(sym, s))?;
        let merged = self.select(big, exact, fast)?;
        self.fb.ins().jump(join, &[BlockArg::Value(merged)]);
        self.fb.seal_block(join);
        self.fb.switch_to_block(join);
        Ok(res)
    }

    /// Binary op with operands of dtype `d`.
    pub fn binary(&mut self, op: BinaryOp, d: DType, lanes: u32, a: Value, b: Value) -> R {
        match (d, op.kind()) {
            (DType::Bool, _) => self.bool_binary(op, a, b),
            (DType::F32 | DType::F64, BinaryKind::Comparison) => {
                Ok(self.fb.ins().fcmp(float_cc(op), a, b))
            }
            (_, BinaryKind::Comparison) => {
                let cc = int_cc(op, d == DType::U8);
                Ok(self.fb.ins().icmp(cc, a, b))
            }
            (DType::F32 | DType::F64, _) => self.float_binary(op, d, lanes, a, b),
            _ => self.int_binary(op, d, lanes, a, b),
        }
    }

    fn bool_binary(&mut self, op: BinaryOp, a: Value, b: Value) -> R {
        use BinaryOp::*;
        Ok(match op {
            LogicalAnd | Minimum => self.fb.ins().band(a, b),
            LogicalOr | Maximum => self.fb.ins().bor(a, b),
            Equal => {
                let x = self.fb.ins().bxor(a, b);
                self.not(x)
            }
            NotEqual => self.fb.ins().bxor(a, b),
            // false < true.
            Less => {
                let na = self.not(a);
                self.fb.ins().band(na, b)
            }
            LessEqual => {
                let na = self.not(a);
                self.fb.ins().bor(na, b)
            }
            Greater => {
                let nb = self.not(b);
                self.fb.ins().band(a, nb)
            }
            GreaterEqual => {
                let nb = self.not(b);
                self.fb.ins().bor(a, nb)
            }
            _ => return Err(unsupported(format!("{} on bool", op.name()))),
        })
    }

    fn float_binary(&mut self, op: BinaryOp, d: DType, lanes: u32, a: Value, b: Value) -> R {
        use BinaryOp::*;
        Ok(match op {
            Add => self.fb.ins().fadd(a, b),
            Sub => self.fb.ins().fsub(a, b),
            Mul => self.fb.ins().fmul(a, b),
            Div => self.fb.ins().fdiv(a, b),
            // Cranelift's fmax/fmin propagate NaN and order −0 < +0, like the reference.
            Maximum => self.fb.ins().fmax(a, b),
            Minimum => self.fb.ins().fmin(a, b),
            Pow if d == DType::F32 => self.via_f64(lanes, &[a, b], |o, s| o.call(Sym::Pow, s))?,
            Pow => self.call_f64(Sym::Pow, lanes, &[a, b])?,
            Mod => {
                let f = |o: &mut Self, s: &[Value]| -> R {
                    let r = o.call(Sym::Fmod, s)?;
                    Ok(o.float_mod_fixup(r, s[1]))
                };
                if d == DType::F32 {
                    self.via_f64(lanes, &[a, b], f)?
                } else {
                    let args = [(a, DType::F64), (b, DType::F64)];
                    self.lanewise(lanes, &args, DType::F64, f)?
                }
            }
            _ => return Err(unsupported(format!("{} on {d}", op.name()))),
        })
    }

    /// Floor-modulo fix-up of an f64 `fmod` result `r` with divisor `b`.
    fn float_mod_fixup(&mut self, r: Value, b: Value) -> Value {
        let zero = self.fb.ins().f64const(0.0);
        let nz = self.fb.ins().fcmp(FloatCC::NotEqual, r, zero);
        let rneg = self.fb.ins().fcmp(FloatCC::LessThan, r, zero);
        let bneg = self.fb.ins().fcmp(FloatCC::LessThan, b, zero);
        let differ = self.fb.ins().bxor(rneg, bneg);
        let fix = self.fb.ins().band(nz, differ);
        let rb = self.fb.ins().fadd(r, b);
        self.fb.ins().select(fix, rb, r)
    }

    /// `c ? a : b` (c a bool of the same lane count).
    pub fn select(&mut self, c: Value, a: Value, b: Value) -> R {
        let ty = self.ty(a);
        if ty.is_vector() {
            let m = self.fb.ins().bitcast(ty, math::le(), c);
            Ok(self.fb.ins().bitselect(m, a, b))
        } else {
            Ok(self.fb.ins().select(c, a, b))
        }
    }

    /// Convert `x` from dtype `from` to `to` (the rules of `Value::cast`).
    pub fn cast(&mut self, from: DType, to: DType, lanes: u32, x: Value) -> R {
        use DType::*;
        use cranelift_codegen::ir::types as t;
        if from == to {
            return Ok(x);
        }
        let vec = lanes > 1;
        let to_ty = repr(to, lanes).ok_or_else(|| unsupported(format!("{to} in {lanes} lanes")))?;
        Ok(match (from, to) {
            (F32 | F64, Bool) => {
                let ty = self.ty(x);
                let zero = Fx::new(self.fb, ty).f(0.0);
                self.fb.ins().fcmp(FloatCC::NotEqual, x, zero)
            }
            (_, Bool) => {
                let ty = self.ty(x);
                let zero = self.iconst(ty, 0);
                self.fb.ins().icmp(IntCC::NotEqual, x, zero)
            }
            (Bool, F32 | F64) => {
                let mut fx = Fx::new(self.fb, to_ty);
                let one = fx.f(1.0);
                let zero = fx.f(0.0);
                if vec {
                    fx.sel(x, one, zero)
                } else {
                    fx.fb.ins().select(x, one, zero)
                }
            }
            (Bool, _) if vec => {
                let one = self.iconst(to_ty, 1);
                self.fb.ins().band(x, one)
            }
            (Bool | U8, I32 | I64) => self.fb.ins().uextend(to_ty, x),
            (Bool, U8) => x,
            (F32, F64) => self.fb.ins().fpromote(t::F64, x),
            (F64, F32) => self.fb.ins().fdemote(t::F32, x),
            (F32, I32) if vec => self.fb.ins().fcvt_to_sint_sat(t::I32X4, x),
            (I32, F32) if vec => self.fb.ins().fcvt_from_sint(t::F32X4, x),
            _ if vec => {
                return self.lanewise(lanes, &[(x, from)], to, |o, s| o.cast(from, to, 1, s[0]));
            }
            (F32 | F64, I32 | I64) => self.fb.ins().fcvt_to_sint_sat(to_ty, x),
            (F32 | F64, U8) => {
                // Saturate to 0..=255 (NaN → 0) through i32.
                let i = self.fb.ins().fcvt_to_sint_sat(t::I32, x);
                let lo = self.fb.ins().iconst(t::I32, 0);
                let hi = self.fb.ins().iconst(t::I32, 255);
                let i = self.fb.ins().smax(i, lo);
                let i = self.fb.ins().smin(i, hi);
                self.fb.ins().ireduce(t::I8, i)
            }
            (I32, F32) => self.fb.ins().fcvt_from_sint(t::F32, x),
            // i64 → f32 rounds through f64, like the reference (double rounding included).
            (I64, F32) => {
                let f = self.fb.ins().fcvt_from_sint(t::F64, x);
                self.fb.ins().fdemote(t::F32, f)
            }
            (I32 | I64, F64) => self.fb.ins().fcvt_from_sint(t::F64, x),
            (U8, F32 | F64) => {
                let w = self.fb.ins().uextend(t::I32, x);
                self.fb.ins().fcvt_from_sint(to_ty, w)
            }
            (I32, I64) => self.fb.ins().sextend(t::I64, x),
            (I64, I32) | (I32 | I64, U8) => self.fb.ins().ireduce(to_ty, x),
            (f, t) => return Err(unsupported(format!("cast {f} → {t}"))),
        })
    }

    /// The identity of reduction `op` on `d` (the reference's initial accumulator).
    pub fn reduce_init(&mut self, op: ReduceOp, d: DType, lanes: u32) -> R {
        let c = match (op, d) {
            (ReduceOp::Sum | ReduceOp::Mean, DType::F32 | DType::F64) => Const::F(0.0),
            (ReduceOp::Prod, DType::F32 | DType::F64) => Const::F(1.0),
            (ReduceOp::Max, DType::F32 | DType::F64) => Const::F(f64::NEG_INFINITY),
            (ReduceOp::Min, DType::F32 | DType::F64) => Const::F(f64::INFINITY),
            (ReduceOp::Sum | ReduceOp::Mean, _) => Const::I(0),
            (ReduceOp::Prod, _) => Const::I(1),
            (ReduceOp::Max, DType::I32) => Const::I(i32::MIN as i64),
            (ReduceOp::Max, DType::I64) => Const::I(i64::MIN),
            (ReduceOp::Max, _) => Const::I(0),
            (ReduceOp::Min, DType::I32) => Const::I(i32::MAX as i64),
            (ReduceOp::Min, DType::I64) => Const::I(i64::MAX),
            (ReduceOp::Min, _) => Const::I(255),
        };
        self.constant(d, lanes, c)
    }

    /// One reduction step `acc ⊕ x`.
    pub fn reduce_step(&mut self, op: ReduceOp, d: DType, lanes: u32, acc: Value, x: Value) -> R {
        let b = match op {
            ReduceOp::Sum | ReduceOp::Mean => BinaryOp::Add,
            ReduceOp::Prod => BinaryOp::Mul,
            ReduceOp::Max => BinaryOp::Maximum,
            ReduceOp::Min => BinaryOp::Minimum,
        };
        self.binary(b, d, lanes, acc, x)
    }
}

fn float_cc(op: BinaryOp) -> FloatCC {
    match op {
        BinaryOp::Equal => FloatCC::Equal,
        BinaryOp::NotEqual => FloatCC::NotEqual,
        BinaryOp::Less => FloatCC::LessThan,
        BinaryOp::LessEqual => FloatCC::LessThanOrEqual,
        BinaryOp::Greater => FloatCC::GreaterThan,
        _ => FloatCC::GreaterThanOrEqual,
    }
}

/// An "unsupported" error without the kernel name (the emitter adds it).
pub(crate) fn unsupported(msg: String) -> CodegenError {
    CodegenError::Unsupported {
        kernel: String::new(),
        msg,
    }
}

/// Whether `op` on `d` has a native vector lowering (otherwise it runs lane by lane, which
/// still works but is slow; the planner prefers scalar code for such phases).
pub(crate) fn vector_friendly_unary(op: UnaryOp, d: DType) -> bool {
    use UnaryOp::*;
    d != DType::F64
        || !matches!(
            op,
            Exp | Log | Log1p | Sin | Cos | Tanh | Erf | Sigmoid | Softplus | Gelu
        )
}

/// See [`vector_friendly_unary`].
pub(crate) fn vector_friendly_binary(op: BinaryOp, d: DType) -> bool {
    match op {
        BinaryOp::Pow | BinaryOp::Mod => d == DType::Bool,
        BinaryOp::Div => d.is_float() || d == DType::Bool,
        _ => true,
    }
}

fn mask(ty: Type) -> i64 {
    match ty.lane_type().bits() {
        64 => -1,
        b => ((1u64 << b) - 1) as i64,
    }
}

/// `iconst` of a scalar integer type with `x` wrapped to its width (Cranelift wants the
/// immediate zero-extended).
pub(crate) fn iconst(fb: &mut FunctionBuilder, ty: Type, x: i64) -> Value {
    fb.ins().iconst(ty, x & mask(ty))
}
