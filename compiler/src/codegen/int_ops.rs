//! Integer lowering: wrapping arithmetic, `sign`, min/max, and division, floor-modulo and
//! `pow` with the reference's rules (`x/0 = x%0 = 0`, `MIN/−1 = MIN`, negative exponents),
//! which never trap. u8 values live in `i8` and are widened to `i32` where x86 has no byte
//! instruction.

use super::ops::{Ops, iconst, unsupported};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I8, I32, I64};
use cranelift_codegen::ir::{BlockArg, InstBuilder, Type, Value};
use cranelift_frontend::FunctionBuilder;
use flumen_frontend::DType;
use flumen_frontend::op::{BinaryOp, UnaryOp};

type R = Result<Value, super::CodegenError>;

impl Ops<'_, '_> {
    pub(super) fn int_unary(&mut self, op: UnaryOp, d: DType, x: Value) -> R {
        use UnaryOp::*;
        let ty = self.ty(x);
        let vec = ty.is_vector();
        if d == DType::U8 {
            // Values are 0..=255: abs and relu are the identity.
            return Ok(match op {
                Neg => self.fb.ins().ineg(x),
                Abs | Relu => x,
                Sign => self.fb.ins().icmp_imm_s(IntCC::NotEqual, x, 0),
                Square => self.u8_via_i32(x, x, |fb, a, b| fb.ins().imul(a, b)),
                _ => return Err(unsupported(format!("{} on u8", op.name()))),
            });
        }
        Ok(match op {
            Neg => self.fb.ins().ineg(x),
            Abs => self.fb.ins().iabs(x),
            Square => self.fb.ins().imul(x, x),
            Relu => {
                let zero = self.iconst(ty, 0);
                self.fb.ins().smax(x, zero)
            }
            Sign => {
                let zero = self.iconst(ty, 0);
                let gt = self.fb.ins().icmp(IntCC::SignedGreaterThan, x, zero);
                let lt = self.fb.ins().icmp(IntCC::SignedLessThan, x, zero);
                if vec {
                    // Masks are −1 for true: sign = lt − gt.
                    self.fb.ins().isub(lt, gt)
                } else {
                    let gt = self.fb.ins().uextend(ty, gt);
                    let lt = self.fb.ins().uextend(ty, lt);
                    self.fb.ins().isub(gt, lt)
                }
            }
            _ => return Err(unsupported(format!("{} on {d}", op.name()))),
        })
    }

    fn u8_via_i32(
        &mut self,
        a: Value,
        b: Value,
        f: impl FnOnce(&mut FunctionBuilder, Value, Value) -> Value,
    ) -> Value {
        let a = self.fb.ins().uextend(I32, a);
        let b = self.fb.ins().uextend(I32, b);
        let r = f(self.fb, a, b);
        self.fb.ins().ireduce(I8, r)
    }

    pub(super) fn int_binary(
        &mut self,
        op: BinaryOp,
        d: DType,
        lanes: u32,
        a: Value,
        b: Value,
    ) -> R {
        use BinaryOp::*;
        let u8_ = d == DType::U8;
        Ok(match op {
            Add => self.fb.ins().iadd(a, b),
            Sub => self.fb.ins().isub(a, b),
            Mul if u8_ => self.u8_via_i32(a, b, |fb, a, b| fb.ins().imul(a, b)),
            Mul => self.fb.ins().imul(a, b),
            Maximum if u8_ => self.u8_via_i32(a, b, |fb, a, b| fb.ins().smax(a, b)),
            Minimum if u8_ => self.u8_via_i32(a, b, |fb, a, b| fb.ins().smin(a, b)),
            Maximum => self.fb.ins().smax(a, b),
            Minimum => self.fb.ins().smin(a, b),
            Div | Mod | Pow => {
                let args = [(a, d), (b, d)];
                return self.lanewise(lanes, &args, d, |o, s| {
                    o.int_scalar_div_mod_pow(op, d, s[0], s[1])
                });
            }
            _ => return Err(unsupported(format!("{} on {d}", op.name()))),
        })
    }

    /// Scalar integer div / mod / pow with the reference's rules (never traps).
    fn int_scalar_div_mod_pow(&mut self, op: BinaryOp, d: DType, a: Value, b: Value) -> R {
        if d == DType::U8 {
            let a32 = self.fb.ins().uextend(I32, a);
            let b32 = self.fb.ins().uextend(I32, b);
            let r = match op {
                BinaryOp::Pow => self.int_pow(I32, a32, b32, false)?,
                _ => {
                    // Unsigned: x/0 = x%0 = 0, no overflow case.
                    let one = self.fb.ins().iconst(I32, 1);
                    let zero = self.fb.ins().iconst(I32, 0);
                    let bz = self.fb.ins().icmp_imm_s(IntCC::Equal, b32, 0);
                    let bs = self.fb.ins().select(bz, one, b32);
                    let q = if op == BinaryOp::Div {
                        self.fb.ins().udiv(a32, bs)
                    } else {
                        self.fb.ins().urem(a32, bs)
                    };
                    self.fb.ins().select(bz, zero, q)
                }
            };
            return Ok(self.fb.ins().ireduce(I8, r));
        }
        let ty = self.ty(a);
        if op == BinaryOp::Pow {
            return self.int_pow(ty, a, b, true);
        }
        let one = self.fb.ins().iconst(ty, 1);
        let zero = self.fb.ins().iconst(ty, 0);
        let bz = self.fb.ins().icmp_imm_s(IntCC::Equal, b, 0);
        let m1 = iconst(self.fb, ty, -1);
        let bm1 = self.fb.ins().icmp(IntCC::Equal, b, m1);
        let special = self.fb.ins().bor(bz, bm1);
        let bs = self.fb.ins().select(special, one, b);
        Ok(if op == BinaryOp::Div {
            // x/0 = 0; x/−1 = wrapping −x (MIN/−1 = MIN).
            let q = self.fb.ins().sdiv(a, bs);
            let na = self.fb.ins().ineg(a);
            let q = self.fb.ins().select(bm1, na, q);
            self.fb.ins().select(bz, zero, q)
        } else {
            // x%0 = 0 and x%−1 = 0 both come out of srem(x, 1); then floor-mod fix-up.
            let r = self.fb.ins().srem(a, bs);
            let rnz = self.fb.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
            let x = self.fb.ins().bxor(r, bs);
            let differ = self.fb.ins().icmp_imm_s(IntCC::SignedLessThan, x, 0);
            let fix = self.fb.ins().band(rnz, differ);
            let rb = self.fb.ins().iadd(r, bs);
            self.fb.ins().select(fix, rb, r)
        })
    }

    /// Wrapping `a^b` by squaring; `b < 0` gives 1 for a = 1, ±1 for a = −1, else 0.
    fn int_pow(&mut self, ty: Type, a: Value, b: Value, signed: bool) -> R {
        let zero = self.fb.ins().iconst(ty, 0);
        let one = self.fb.ins().iconst(ty, 1);
        let neg = if signed {
            self.fb.ins().icmp_imm_s(IntCC::SignedLessThan, b, 0)
        } else {
            self.fb.ins().iconst(I8, 0)
        };
        // Exponent min(b, u32::MAX), 0 when negative (the loop is then skipped).
        let mut e = self.fb.ins().select(neg, zero, b);
        if ty == I64 {
            let cap = iconst(self.fb, I64, u32::MAX as i64);
            e = self.fb.ins().smin(e, cap);
        }
        let header = self.fb.create_block();
        let body = self.fb.create_block();
        let exit = self.fb.create_block();
        for blk in [header, body] {
            for _ in 0..3 {
                self.fb.append_block_param(blk, ty);
            }
        }
        let out = self.fb.append_block_param(exit, ty);
        let args = |v: &[Value]| v.iter().map(|&x| BlockArg::Value(x)).collect::<Vec<_>>();
        self.fb.ins().jump(header, &args(&[one, a, e]));
        self.fb.switch_to_block(header);
        let p = self.fb.block_params(header).to_vec();
        self.fb
            .ins()
            .brif(p[2], body, &args(&p), exit, &args(&[p[0]]));
        self.fb.switch_to_block(body);
        self.fb.seal_block(body);
        let q = self.fb.block_params(body).to_vec();
        let (r, base, e) = (q[0], q[1], q[2]);
        let bit = self.fb.ins().band_imm_s(e, 1);
        let rb = self.fb.ins().imul(r, base);
        let r2 = self.fb.ins().select(bit, rb, r);
        let base2 = self.fb.ins().imul(base, base);
        let e2 = self.fb.ins().ushr_imm_u(e, 1);
        self.fb.ins().jump(header, &args(&[r2, base2, e2]));
        self.fb.seal_block(header);
        self.fb.seal_block(exit);
        self.fb.switch_to_block(exit);
        if !signed {
            return Ok(out);
        }
        // Negative exponent.
        let is1 = self.fb.ins().icmp_imm_s(IntCC::Equal, a, 1);
        let m1 = iconst(self.fb, ty, -1);
        let ism1 = self.fb.ins().icmp(IntCC::Equal, a, m1);
        let odd = self.fb.ins().band_imm_s(b, 1);
        let pm1 = self.fb.ins().select(odd, m1, one);
        let s = self.fb.ins().select(ism1, pm1, zero);
        let s = self.fb.ins().select(is1, one, s);
        Ok(self.fb.ins().select(neg, s, out))
    }
}

pub(super) fn int_cc(op: BinaryOp, unsigned: bool) -> IntCC {
    match (op, unsigned) {
        (BinaryOp::Equal, _) => IntCC::Equal,
        (BinaryOp::NotEqual, _) => IntCC::NotEqual,
        (BinaryOp::Less, false) => IntCC::SignedLessThan,
        (BinaryOp::LessEqual, false) => IntCC::SignedLessThanOrEqual,
        (BinaryOp::Greater, false) => IntCC::SignedGreaterThan,
        (BinaryOp::GreaterEqual, false) => IntCC::SignedGreaterThanOrEqual,
        (BinaryOp::Less, true) => IntCC::UnsignedLessThan,
        (BinaryOp::LessEqual, true) => IntCC::UnsignedLessThanOrEqual,
        (BinaryOp::Greater, true) => IntCC::UnsignedGreaterThan,
        _ => IntCC::UnsignedGreaterThanOrEqual,
    }
}
