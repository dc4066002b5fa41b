//! Math routines built in CLIF, and the C math-library symbols compiled kernels import.
//!
//! # f32: vectorised polynomials
//! Every f32 transcendental is straight-line CLIF that works unchanged on `f32` and `f32x4`
//! (one routine for vector bodies and scalar tails, so both give identical results). All use
//! FMA (cranelift-native enables it on CPUs that have it; elsewhere Cranelift calls `fmaf`).
//! Error bounds, measured against the reference (which computes in f64 and rounds once)
//! by `compiler/tests/codegen_math.rs` over dense sweeps, random inputs and edge values:
//!
//! | op | method | bound tested |
//! |---|---|---|
//! | `exp` | Cody–Waite reduction by ln 2, Cephes degree-6 polynomial, two-step scaling (exact subnormal results) | 2 ulp |
//! | `log` | Cephes `logf` (mantissa in [√½, √2), degree-9 polynomial), subnormals rescaled | 2 ulp |
//! | `log1p` | `log(u)·x/(u−1)` with `u = 1+x` (Goldberg) | 3 ulp |
//! | `tanh` | odd polynomial for \|x\| < 0.625, else `1 − 2/(e^{2\|x\|}+1)` | 3 ulp |
//! | `sigmoid` | `1/(1+e^{−x})` or `e^x/(1+e^x)` | 3 ulp |
//! | `softplus` | `max(x,0) + log1p(e^{−\|x\|})` | 4 ulp |
//! | `sin`, `cos` | reduction by π/2 in three FMA steps (exact up to the last), Cephes polynomials; \|x\| > 16384 calls the f64 C library per lane | 2 ulp + 2⁻⁴⁶·\|x\| absolute |
//! | `erf` | N. Juffa's minimax polynomials (`x·P(x²)` below 0.9277, `1 − e^{P(x)}` above) | 2 ulp |
//! | `gelu` | `½x·(1 + erf(x/√2))` with the erf polynomial for \|x\| < 1.31, else `½x·erfc(−x/√2)` with Numerical Recipes' `erfc = τ·e^{−t²+P(τ)}` and `−x²/2` carried as an exact hi/lo pair | 8 ulp + 2⁻⁵²·\|x\| absolute (the reference's own cancellation in `1 + erf`) |
//! | `rsqrt` | computed in f64 and rounded once | exact |
//! | `pow`, `mod` | promoted to f64, C library `pow`/`fmod` | exact |
//!
//! # f64: the C library
//! f64 `exp`, `log`, `log1p`, `sin`, `cos`, `tanh`, `erf`, `pow` and `mod` call the
//! symbols in [`IMPORTED_SYMBOLS`] (lane by lane in vector code), and `sigmoid`, `softplus`
//! and `gelu` are composed from them exactly as the reference composes them, so f64 results
//! are bit-identical to the reference. An AOT shared library links these names against the
//! platform's `libm`; the JIT binds them to the Rust functions in this module.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32, F32X4, F64, F64X2, I8X16};
use cranelift_codegen::ir::{Endianness, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// A C math-library function that compiled kernels may call (all `f64`, C calling
/// convention).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sym {
    /// `double exp(double)`
    Exp,
    /// `double log(double)`
    Log,
    /// `double log1p(double)`
    Log1p,
    /// `double sin(double)`
    Sin,
    /// `double cos(double)`
    Cos,
    /// `double tanh(double)`
    Tanh,
    /// `double erf(double)`
    Erf,
    /// `double pow(double, double)`
    Pow,
    /// `double fmod(double, double)`
    Fmod,
}

/// Every symbol a compiled kernel may import, in one place: an AOT build must link each of
/// them (`-lm`), and the JIT registers each with [`Sym::host_address`].
pub const IMPORTED_SYMBOLS: [Sym; 9] = [
    Sym::Exp,
    Sym::Log,
    Sym::Log1p,
    Sym::Sin,
    Sym::Cos,
    Sym::Tanh,
    Sym::Erf,
    Sym::Pow,
    Sym::Fmod,
];

extern "C" fn host_exp(x: f64) -> f64 {
    x.exp()
}
extern "C" fn host_log(x: f64) -> f64 {
    x.ln()
}
extern "C" fn host_log1p(x: f64) -> f64 {
    x.ln_1p()
}
extern "C" fn host_sin(x: f64) -> f64 {
    x.sin()
}
extern "C" fn host_cos(x: f64) -> f64 {
    x.cos()
}
extern "C" fn host_tanh(x: f64) -> f64 {
    x.tanh()
}
extern "C" fn host_erf(x: f64) -> f64 {
    libm::erf(x)
}
extern "C" fn host_pow(x: f64, y: f64) -> f64 {
    x.powf(y)
}
extern "C" fn host_fmod(x: f64, y: f64) -> f64 {
    x % y
}

impl Sym {
    /// The C symbol name.
    pub fn name(self) -> &'static str {
        match self {
            Sym::Exp => "exp",
            Sym::Log => "log",
            Sym::Log1p => "log1p",
            Sym::Sin => "sin",
            Sym::Cos => "cos",
            Sym::Tanh => "tanh",
            Sym::Erf => "erf",
            Sym::Pow => "pow",
            Sym::Fmod => "fmod",
        }
    }

    /// Number of `f64` parameters (1 or 2).
    pub fn arity(self) -> usize {
        match self {
            Sym::Pow | Sym::Fmod => 2,
            _ => 1,
        }
    }

    /// Address of an in-process implementation with exactly the reference evaluator's
    /// semantics (Rust's `f64` methods and `libm::erf`), for the JIT's symbol table.
    pub fn host_address(self) -> *const u8 {
        let unary = |f: extern "C" fn(f64) -> f64| f as *const u8;
        let binary = |f: extern "C" fn(f64, f64) -> f64| f as *const u8;
        match self {
            Sym::Exp => unary(host_exp),
            Sym::Log => unary(host_log),
            Sym::Log1p => unary(host_log1p),
            Sym::Sin => unary(host_sin),
            Sym::Cos => unary(host_cos),
            Sym::Tanh => unary(host_tanh),
            Sym::Erf => unary(host_erf),
            Sym::Pow => binary(host_pow),
            Sym::Fmod => binary(host_fmod),
        }
    }
}

/// Builds float math in one float type (`f32`, `f32x4`, `f64` or `f64x2`): constants are
/// splatted, comparisons give masks, selects are lane-wise.
pub(crate) struct Fx<'a, 'f> {
    /// The function being built.
    pub fb: &'a mut FunctionBuilder<'f>,
    /// The float type computed in.
    pub ty: Type,
}

/// Flags for bitcasts (vector bitcasts need an explicit byte order).
pub(crate) fn le() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

impl<'a, 'f> Fx<'a, 'f> {
    /// A helper computing in `ty`.
    pub fn new(fb: &'a mut FunctionBuilder<'f>, ty: Type) -> Self {
        Fx { fb, ty }
    }

    fn is_vec(&self) -> bool {
        self.ty.is_vector()
    }

    /// The integer type with the same lane layout.
    pub fn ity(&self) -> Type {
        self.ty.as_int()
    }

    /// A float constant.
    pub fn f(&mut self, x: f64) -> Value {
        let s = if self.ty.lane_type() == F32 {
            self.fb.ins().f32const(x as f32)
        } else {
            self.fb.ins().f64const(x)
        };
        if self.is_vec() {
            self.fb.ins().splat(self.ty, s)
        } else {
            s
        }
    }

    /// An integer constant of the matching integer type.
    pub fn i(&mut self, x: i64) -> Value {
        let ity = self.ity();
        let s = super::ops::iconst(self.fb, ity.lane_type(), x);
        if self.is_vec() {
            self.fb.ins().splat(ity, s)
        } else {
            s
        }
    }

    /// Reinterpret as integers.
    pub fn bits(&mut self, v: Value) -> Value {
        let ity = self.ity();
        self.fb.ins().bitcast(ity, le(), v)
    }

    /// Reinterpret integers as floats.
    pub fn float(&mut self, v: Value) -> Value {
        let ty = self.ty;
        self.fb.ins().bitcast(ty, le(), v)
    }

    /// `a·b + c` with one rounding.
    pub fn fma(&mut self, a: Value, b: Value, c: Value) -> Value {
        self.fb.ins().fma(a, b, c)
    }

    /// `a·b + c` with a constant `c`.
    fn fma_c(&mut self, a: Value, b: Value, c: f64) -> Value {
        let c = self.f(c);
        self.fma(a, b, c)
    }

    /// Horner evaluation of `coeffs[0]·x^(n−1) + … + coeffs[n−1]` with FMAs.
    pub fn poly(&mut self, x: Value, coeffs: &[f64]) -> Value {
        let mut acc = self.f(coeffs[0]);
        for &c in &coeffs[1..] {
            acc = self.fma_c(acc, x, c);
        }
        acc
    }

    /// Lane-wise comparison; a mask (vectors) or an `i8` 0/1 (scalars).
    pub fn cmp(&mut self, cc: FloatCC, a: Value, b: Value) -> Value {
        self.fb.ins().fcmp(cc, a, b)
    }

    /// Compare with a constant.
    pub fn cmp_c(&mut self, cc: FloatCC, a: Value, b: f64) -> Value {
        let b = self.f(b);
        self.cmp(cc, a, b)
    }

    /// Lane-wise `mask ? a : b` for a mask from [`Fx::cmp`].
    pub fn sel(&mut self, mask: Value, a: Value, b: Value) -> Value {
        if self.is_vec() {
            let ty = self.ty;
            let m = self.fb.ins().bitcast(ty, le(), mask);
            self.fb.ins().bitselect(m, a, b)
        } else {
            self.fb.ins().select(mask, a, b)
        }
    }

    /// `x` clamped to `[lo, hi]` with compare-and-select (NaN stays NaN; one `maxps` and
    /// one `minps` on x86, unlike `fmax`/`fmin` whose IEEE semantics need a longer sequence).
    pub fn clamp(&mut self, x: Value, lo: Value, hi: Value) -> Value {
        let below = self.cmp(FloatCC::LessThan, x, lo);
        let x = self.sel(below, lo, x);
        let above = self.cmp(FloatCC::GreaterThan, x, hi);
        self.sel(above, hi, x)
    }

    /// Lane-wise `mask ? a : b` on integer values of the matching integer type.
    pub fn sel_int(&mut self, mask: Value, a: Value, b: Value) -> Value {
        if self.is_vec() {
            self.fb.ins().bitselect(mask, a, b)
        } else {
            self.fb.ins().select(mask, a, b)
        }
    }

    /// Lane-wise or of two masks.
    pub fn or(&mut self, a: Value, b: Value) -> Value {
        self.fb.ins().bor(a, b)
    }

    /// The sign bit of `x` as an integer (`0` or `0x80…`).
    pub fn sign_bits(&mut self, x: Value) -> Value {
        let b = self.bits(x);
        let m = self.i(if self.ty.lane_type() == F32 {
            i32::MIN as i64
        } else {
            i64::MIN
        });
        self.fb.ins().band(b, m)
    }

    /// `x` with its sign bit xor-ed with `sign` (from [`Fx::sign_bits`]).
    pub fn xor_sign(&mut self, x: Value, sign: Value) -> Value {
        let b = self.bits(x);
        let r = self.fb.ins().bxor(b, sign);
        self.float(r)
    }
}

// Cephes expf.
const EXP_P: [f64; 6] = [
    1.987_569_150_0e-4,
    1.398_199_950_7e-3,
    8.333_451_907_3e-3,
    4.166_579_589_4e-2,
    1.666_666_545_9e-1,
    5.000_000_120_1e-1,
];
const LN2_HI: f64 = 0.693_359_375;
const LN2_LO: f64 = -2.121_944_4e-4;
/// 1.5·2²³: adding it rounds an f32 in (−2²², 2²²) to an integer held in the low mantissa
/// bits.
const SHIFTER: f64 = 12_582_912.0;

/// f32 `e^(hi+lo)` (`lo` a small correction, e.g. the rounding error of `hi`). Exact
/// subnormal results, overflow to +inf, NaN propagated.
pub(crate) fn exp_f32(fx: &mut Fx, hi: Value, lo: Option<Value>) -> Value {
    let lo_b = fx.f(-104.0);
    let hi_b = fx.f(89.0);
    let x0 = match lo {
        Some(lo) => fx.fb.ins().fadd(hi, lo),
        None => hi,
    };
    let x = fx.clamp(x0, lo_b, hi_b);
    let log2e = fx.f(std::f64::consts::LOG2_E);
    let shifter = fx.f(SHIFTER);
    let t = fx.fma(x, log2e, shifter);
    let n = fx.fb.ins().fsub(t, shifter);
    // r = x − n·ln2 in two exact-ish FMA steps; the low part of the argument goes last.
    let neg_hi = fx.f(-LN2_HI);
    let neg_lo = fx.f(-LN2_LO);
    let base = match lo {
        // Clamp the high part consistently with x (the clamp only matters far out of range).
        Some(_) => fx.clamp(hi, lo_b, hi_b),
        None => x,
    };
    let r = fx.fma(n, neg_hi, base);
    let mut r = fx.fma(n, neg_lo, r);
    if let Some(lo) = lo {
        r = fx.fb.ins().fadd(r, lo);
    }
    let z = fx.fb.ins().fmul(r, r);
    let p = fx.poly(r, &EXP_P);
    let y = fx.fma(p, z, r);
    let one = fx.f(1.0);
    let y = fx.fb.ins().fadd(y, one);
    // 2^n as 2^n1 · 2^n2 so that n down to −150 and up to 129 stay representable.
    let tb = fx.bits(t);
    let sb = fx.bits(shifter);
    let ni = fx.fb.ins().isub(tb, sb);
    let n1 = fx.fb.ins().sshr_imm_u(ni, 1);
    let n2 = fx.fb.ins().isub(ni, n1);
    let bias = fx.i(127);
    let e1 = fx.fb.ins().iadd(n1, bias);
    let e1 = fx.fb.ins().ishl_imm_u(e1, 23);
    let e2 = fx.fb.ins().iadd(n2, bias);
    let e2 = fx.fb.ins().ishl_imm_u(e2, 23);
    let s1 = fx.float(e1);
    let s2 = fx.float(e2);
    let y = fx.fb.ins().fmul(y, s1);
    fx.fb.ins().fmul(y, s2)
}

// Cephes logf.
const LOG_P: [f64; 9] = [
    7.037_683_629_2e-2,
    -1.151_461_031_0e-1,
    1.167_699_874_0e-1,
    -1.242_014_084_6e-1,
    1.424_932_278_7e-1,
    -1.666_805_766_5e-1,
    2.000_071_476_5e-1,
    -2.499_999_399_3e-1,
    3.333_333_117_4e-1,
];

/// f32 natural logarithm: `log(0) = −inf`, `log(x<0) = NaN`, `log(inf) = inf`.
pub(crate) fn log_f32(fx: &mut Fx, x: Value) -> Value {
    // Rescale subnormals by 2^23.
    let tiny = fx.cmp_c(FloatCC::LessThan, x, f32::MIN_POSITIVE as f64);
    let scale = fx.f(8_388_608.0);
    let xs = fx.fb.ins().fmul(x, scale);
    let xn = fx.sel(tiny, xs, x);
    let b = fx.bits(xn);
    let e = fx.fb.ins().ushr_imm_u(b, 23);
    let b126 = fx.i(126);
    let b149 = fx.i(126 + 23);
    let bias = fx.sel_int(tiny, b149, b126);
    let e = fx.fb.ins().isub(e, bias);
    // Mantissa in [0.5, 1).
    let mant_mask = fx.i(0x807f_ffff);
    let half_bits = fx.i(0x3f00_0000);
    let m = fx.fb.ins().band(b, mant_mask);
    let m = fx.fb.ins().bor(m, half_bits);
    let m = fx.float(m);
    let ef = fx.fb.ins().fcvt_from_sint(fx.ty, e);
    // If m < √½: e -= 1, m = 2m − 1, else m = m − 1.
    let small = fx.cmp_c(FloatCC::LessThan, m, std::f64::consts::FRAC_1_SQRT_2);
    let one = fx.f(1.0);
    let zero = fx.f(0.0);
    let e_adj = fx.sel(small, one, zero);
    let ef = fx.fb.ins().fsub(ef, e_adj);
    let m_add = fx.sel(small, m, zero);
    let m = fx.fb.ins().fadd(m, m_add);
    let m = fx.fb.ins().fsub(m, one);
    let z = fx.fb.ins().fmul(m, m);
    let p = fx.poly(m, &LOG_P);
    let p = fx.fb.ins().fmul(p, m);
    let y = fx.fb.ins().fmul(p, z);
    let q1 = fx.f(LN2_LO);
    let y = fx.fma(ef, q1, y);
    let mhalf = fx.f(-0.5);
    let y = fx.fma(z, mhalf, y);
    let r = fx.fb.ins().fadd(m, y);
    let q2 = fx.f(LN2_HI);
    let r = fx.fma(ef, q2, r);
    // Special values.
    let is_zero = fx.cmp_c(FloatCC::Equal, x, 0.0);
    let ninf = fx.f(f64::NEG_INFINITY);
    let r = fx.sel(is_zero, ninf, r);
    let is_inf = fx.cmp_c(FloatCC::Equal, x, f64::INFINITY);
    let inf = fx.f(f64::INFINITY);
    let r = fx.sel(is_inf, inf, r);
    // x < 0 or NaN: "not (x >= 0)".
    let bad = fx.cmp_c(FloatCC::UnorderedOrLessThan, x, 0.0);
    let nan = fx.f(f64::NAN);
    fx.sel(bad, nan, r)
}

/// f32 `ln(1+x)`.
pub(crate) fn log1p_f32(fx: &mut Fx, x: Value) -> Value {
    let one = fx.f(1.0);
    let u = fx.fb.ins().fadd(x, one);
    let lu = log_f32(fx, u);
    let um1 = fx.fb.ins().fsub(u, one);
    let ratio = fx.fb.ins().fdiv(x, um1);
    let r = fx.fb.ins().fmul(lu, ratio);
    let exact = fx.cmp_c(FloatCC::Equal, u, 1.0);
    let r = fx.sel(exact, x, r);
    let inf = fx.cmp_c(FloatCC::Equal, u, f64::INFINITY);
    fx.sel(inf, u, r)
}

const TANH_P: [f64; 5] = [
    -5.704_988_727_45e-3,
    2.063_908_879_54e-2,
    -5.373_971_555_31e-2,
    1.333_144_220_36e-1,
    -3.333_328_194_22e-1,
];

/// f32 hyperbolic tangent.
pub(crate) fn tanh_f32(fx: &mut Fx, x: Value) -> Value {
    // tanh is odd: compute on |x| and restore the sign (keeps tanh(−0) = −0).
    let a = fx.fb.ins().fabs(x);
    // Small: a + a·z·P(z).
    let z = fx.fb.ins().fmul(a, a);
    let p = fx.poly(z, &TANH_P);
    let az = fx.fb.ins().fmul(a, z);
    let small = fx.fma(az, p, a);
    // Large: 1 − 2/(e^{2a} + 1).
    let a2 = fx.fb.ins().fadd(a, a);
    let e = exp_f32(fx, a2, None);
    let one = fx.f(1.0);
    let two = fx.f(2.0);
    let d = fx.fb.ins().fadd(e, one);
    let q = fx.fb.ins().fdiv(two, d);
    let big = fx.fb.ins().fsub(one, q);
    let is_small = fx.cmp_c(FloatCC::LessThan, a, 0.625);
    let r = fx.sel(is_small, small, big);
    let s = fx.sign_bits(x);
    fx.xor_sign(r, s)
}

/// f32 logistic function, like the reference: `1/(1+e^−x)` for x ≥ 0, `e^x/(1+e^x)` below.
pub(crate) fn sigmoid_f32(fx: &mut Fx, x: Value) -> Value {
    let a = fx.fb.ins().fabs(x);
    let na = fx.fb.ins().fneg(a);
    let e = exp_f32(fx, na, None);
    let one = fx.f(1.0);
    let d = fx.fb.ins().fadd(e, one);
    let pos = fx.cmp_c(FloatCC::GreaterThanOrEqual, x, 0.0);
    let num = fx.sel(pos, one, e);
    fx.fb.ins().fdiv(num, d)
}

/// f32 `ln(1+e^x)` as `max(x,0) + log1p(e^−|x|)`.
pub(crate) fn softplus_f32(fx: &mut Fx, x: Value) -> Value {
    let a = fx.fb.ins().fabs(x);
    let na = fx.fb.ins().fneg(a);
    let e = exp_f32(fx, na, None);
    let l = log1p_f32(fx, e);
    let zero = fx.f(0.0);
    let neg = fx.cmp(FloatCC::LessThan, x, zero);
    let m = fx.sel(neg, zero, x);
    fx.fb.ins().fadd(m, l)
}

// sin/cos: π/2 split so that k·PIO2_1 and k·PIO2_2 are exact for |k| < 2^16.
const PIO2_1: f64 = 1.570_312_5;
const PIO2_2: f64 = 4.837_512_969_970_703e-4;
const PIO2_3: f64 = 7.549_789_954_891_882e-8;
const SIN_P: [f64; 3] = [-1.951_529_589_1e-4, 8.332_160_873_6e-3, -1.666_665_461_1e-1];
const COS_P: [f64; 3] = [
    2.443_315_711_809_948e-5,
    -1.388_731_625_493_765e-3,
    4.166_664_568_298_827e-2,
];
/// Above this magnitude f32 sin/cos fall back to the f64 C library.
pub(crate) const TRIG_LIMIT: f64 = 16384.0;

/// f32 sine (`cos == false`) or cosine of `x` for |x| ≤ [`TRIG_LIMIT`] (larger lanes
/// and ±inf give garbage that the caller replaces).
pub(crate) fn sincos_f32(fx: &mut Fx, x: Value, cos: bool) -> Value {
    // sin is odd: work on |x| and restore the sign (keeps sin(−0) = −0); cos is even.
    let a = fx.fb.ins().fabs(x);
    let two_over_pi = fx.f(std::f64::consts::FRAC_2_PI);
    let shifter = fx.f(SHIFTER);
    let t = fx.fma(a, two_over_pi, shifter);
    let k = fx.fb.ins().fsub(t, shifter);
    let c1 = fx.f(-PIO2_1);
    let c2 = fx.f(-PIO2_2);
    let c3 = fx.f(-PIO2_3);
    let r = fx.fma(k, c1, a);
    let r = fx.fma(k, c2, r);
    let r = fx.fma(k, c3, r);
    let z = fx.fb.ins().fmul(r, r);
    // sin r = r + r·z·S(z); cos r = 1 − z/2 + z²·C(z).
    let sp = fx.poly(z, &SIN_P);
    let rz = fx.fb.ins().fmul(r, z);
    let s = fx.fma(rz, sp, r);
    let cp = fx.poly(z, &COS_P);
    let z2 = fx.fb.ins().fmul(z, z);
    let mhalf = fx.f(-0.5);
    let one = fx.f(1.0);
    let c = fx.fma(z, mhalf, one);
    let c = fx.fma(z2, cp, c);
    // Quadrant q = k mod 4 (plus one for cos): odd → the other polynomial; q & 2 → negate.
    let tb = fx.bits(t);
    let sb = fx.bits(shifter);
    let mut q = fx.fb.ins().isub(tb, sb);
    if cos {
        let one_i = fx.i(1);
        q = fx.fb.ins().iadd(q, one_i);
    }
    let one_i = fx.i(1);
    let odd = fx.fb.ins().band(q, one_i);
    let zero_i = fx.i(0);
    let odd_mask = fx.fb.ins().icmp(IntCC::NotEqual, odd, zero_i);
    let v = fx.sel(odd_mask, c, s);
    let two_i = fx.i(2);
    let neg = fx.fb.ins().band(q, two_i);
    let mut sign = fx
        .fb
        .ins()
        .ishl_imm_u(neg, if fx.ty.lane_type() == F32 { 30 } else { 62 });
    if !cos {
        let xs = fx.sign_bits(x);
        sign = fx.fb.ins().bxor(sign, xs);
    }
    fx.xor_sign(v, sign)
}

// N. Juffa's erff (max. error < 1 ulp in f32 arithmetic).
const ERF_SMALL: [f64; 6] = [
    -5.967_617_03e-4,
    4.991_194_23e-3,
    -2.676_813_49e-2,
    1.128_199_25e-1,
    -3.761_253_36e-1,
    1.283_791_66e-1,
];

/// f32 error function.
pub(crate) fn erf_f32(fx: &mut Fx, x: Value) -> Value {
    let t0 = fx.fb.ins().fabs(x);
    let four = fx.f(4.0);
    let big = fx.cmp(FloatCC::GreaterThan, t0, four);
    let t = fx.sel(big, four, t0);
    let s = fx.fb.ins().fmul(t, t);
    // Large: 1 − exp(P(t)).
    let r = fx.f(-1.728_534_70e-5);
    let c = fx.f(3.831_971_26e-4);
    let r = fx.fma(r, t, c);
    let u = fx.f(-3.883_964_38e-3);
    let c = fx.f(2.425_462_19e-2);
    let u = fx.fma(u, t, c);
    let r = fx.fma(r, s, u);
    let r = fx.fma_c(r, t, -1.067_778_77e-1);
    let r = fx.fma_c(r, t, -6.348_466_87e-1);
    let r = fx.fma_c(r, t, -1.287_175_12e-1);
    let nt = fx.fb.ins().fneg(t);
    let r = fx.fma(r, t, nt);
    let e = exp_f32(fx, r, None);
    let one = fx.f(1.0);
    let big = fx.fb.ins().fsub(one, e);
    let sign = fx.sign_bits(x);
    let big = fx.xor_sign(big, sign);
    // Small: x + x·P(x²).
    let xx = fx.fb.ins().fmul(x, x);
    let p = fx.poly(xx, &ERF_SMALL);
    let small = fx.fma(p, x, x);
    let is_big = fx.cmp_c(FloatCC::GreaterThan, t0, 0.927_734_375);
    fx.sel(is_big, big, small)
}

// Numerical Recipes' erfcc: erfc(t) = τ·exp(−t² + P(τ)), τ = 1/(1 + t/2), rel. err. 1.2e-7.
const ERFC_P: [f64; 10] = [
    0.170_872_77,
    -0.822_152_23,
    1.488_515_87,
    -1.135_203_98,
    0.278_868_07,
    -0.186_288_06,
    0.096_784_18,
    0.374_091_96,
    1.000_023_68,
    -1.265_512_23,
];

/// f32 GELU `½x·(1 + erf(x/√2))`, evaluated as `½x·erfc(−x/√2)` so that the negative tail
/// keeps its relative accuracy.
pub(crate) fn gelu_f32(fx: &mut Fx, x: Value) -> Value {
    // Beyond |x| = 20, erfc(|x|/√2) underflows; clamp so that x² stays finite.
    let lim = fx.f(20.0);
    let ax = fx.fb.ins().fabs(x);
    let big = fx.cmp(FloatCC::GreaterThan, ax, lim);
    let ax = fx.sel(big, lim, ax);
    let c = fx.f(std::f64::consts::FRAC_1_SQRT_2);
    let t = fx.fb.ins().fmul(ax, c);
    let half = fx.f(0.5);
    let one = fx.f(1.0);
    let d = fx.fma(t, half, one);
    let tau = fx.fb.ins().fdiv(one, d);
    let p = fx.poly(tau, &ERFC_P);
    // −t² = −x²/2 exactly as hi + lo.
    let sq = fx.fb.ins().fmul(ax, ax);
    let nsq = fx.fb.ins().fneg(sq);
    let sq_lo = fx.fma(ax, ax, nsq);
    let mhalf = fx.f(-0.5);
    let hi = fx.fb.ins().fmul(sq, mhalf);
    let lo = fx.fma(sq_lo, mhalf, p);
    let e = exp_f32(fx, hi, Some(lo));
    let erfc = fx.fb.ins().fmul(tau, e);
    // Φ(x)·2 = erfc(|x|/√2) for x < 0, 2 − erfc(|x|/√2) otherwise.
    let two = fx.f(2.0);
    let upper = fx.fb.ins().fsub(two, erfc);
    let neg = fx.cmp_c(FloatCC::LessThan, x, 0.0);
    let cdf2 = fx.sel(neg, erfc, upper);
    // Near 0, 1 + erf(x/√2) from the erf polynomial is more accurate.
    let c = fx.f(std::f64::consts::FRAC_1_SQRT_2);
    let ts = fx.fb.ins().fmul(x, c);
    let tt = fx.fb.ins().fmul(ts, ts);
    let p = fx.poly(tt, &ERF_SMALL);
    let erf_small = fx.fma(p, ts, ts);
    let cdf_small = fx.fb.ins().fadd(one, erf_small);
    let near = fx.cmp_c(FloatCC::LessThan, t, 0.927_734_375);
    let cdf2 = fx.sel(near, cdf_small, cdf2);
    let hx = fx.fb.ins().fmul(x, half);
    fx.fb.ins().fmul(hx, cdf2)
}

/// f32 `1/√x` computed in f64 and rounded once, exactly like the reference.
pub(crate) fn rsqrt_f32(fb: &mut FunctionBuilder, x: Value) -> Value {
    let vec = fb.func.dfg.value_type(x).is_vector();
    let one_over_sqrt = |fb: &mut FunctionBuilder, d: Value| {
        let s = fb.ins().sqrt(d);
        let one = fb.ins().f64const(1.0);
        let one = if vec { fb.ins().splat(F64X2, one) } else { one };
        fb.ins().fdiv(one, s)
    };
    if !vec {
        let d = fb.ins().fpromote(F64, x);
        let r = one_over_sqrt(fb, d);
        return fb.ins().fdemote(F32, r);
    }
    let (lo, hi) = split_f32x4(fb, x);
    let lo = one_over_sqrt(fb, lo);
    let hi = one_over_sqrt(fb, hi);
    join_f64x2(fb, lo, hi)
}

/// The low and high halves of an `f32x4` as two `f64x2`.
pub(crate) fn split_f32x4(fb: &mut FunctionBuilder, x: Value) -> (Value, Value) {
    let lo = fb.ins().fvpromote_low(x);
    // Move lanes 2, 3 down (a 64-bit lane swap) and promote again.
    let bytes = fb.ins().bitcast(I8X16, le(), x);
    let mask: [u8; 16] = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];
    let imm = fb.func.dfg.immediates.push(mask.to_vec().into());
    let sw = fb.ins().shuffle(bytes, bytes, imm);
    let sw = fb.ins().bitcast(F32X4, le(), sw);
    let hi = fb.ins().fvpromote_low(sw);
    (lo, hi)
}

/// Two `f64x2` rounded to f32 and packed into one `f32x4` (lanes lo0, lo1, hi0, hi1).
pub(crate) fn join_f64x2(fb: &mut FunctionBuilder, lo: Value, hi: Value) -> Value {
    let l = fb.ins().fvdemote(lo);
    let h = fb.ins().fvdemote(hi);
    let l = fb.ins().bitcast(I8X16, le(), l);
    let h = fb.ins().bitcast(I8X16, le(), h);
    // Take the low 8 bytes of each.
    let mask: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
    let imm = fb.func.dfg.immediates.push(mask.to_vec().into());
    let r = fb.ins().shuffle(l, h, imm);
    fb.ins().bitcast(F32X4, le(), r)
}
