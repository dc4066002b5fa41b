//! Shared helpers for the code generator tests: kernel builders, buffers, running compiled
//! kernels next to the reference evaluator, and tolerant comparison.
#![allow(dead_code)]

use flumen_compiler::codegen::{EmitOptions, IsaOptions, JitKernels};
use flumen_compiler::kernel::eval::eval_kernel;
use flumen_compiler::kernel::{Access, BufId, Expr, ExprId, Kernel, KernelFn, Phase, PhaseKind};
use flumen_frontend::op::{BinaryOp, ReduceOp, UnaryOp};
use flumen_frontend::{DType, Value, map_value};

/// Row-major strides of `shape`.
pub fn contiguous(shape: &[usize]) -> Vec<i64> {
    let mut s = vec![0i64; shape.len()];
    let mut acc = 1i64;
    for k in (0..shape.len()).rev() {
        s[k] = acc;
        acc *= shape[k] as i64;
    }
    s
}

/// An access.
pub fn acc(buf: usize, dtype: DType, offset: i64, outer: &[i64], inner: &[i64]) -> Access {
    Access {
        buf: BufId(buf),
        dtype,
        offset,
        outer_strides: outer.to_vec(),
        inner_strides: inner.to_vec(),
    }
}

/// Builds the expression list of a phase.
#[derive(Default)]
pub struct PB {
    pub exprs: Vec<Expr>,
    pub dtypes: Vec<DType>,
}

impl PB {
    pub fn new() -> PB {
        PB::default()
    }
    pub fn push(&mut self, e: Expr, d: DType) -> ExprId {
        self.exprs.push(e);
        self.dtypes.push(d);
        ExprId(self.exprs.len() - 1)
    }
    pub fn load(&mut self, a: usize, d: DType) -> ExprId {
        self.push(Expr::Load(a), d)
    }
    pub fn f(&mut self, x: f64, d: DType) -> ExprId {
        self.push(Expr::FloatConst(x), d)
    }
    pub fn int(&mut self, x: i64, d: DType) -> ExprId {
        self.push(Expr::IntConst(x), d)
    }
    pub fn un(&mut self, op: UnaryOp, x: ExprId) -> ExprId {
        let d = self.dtypes[x.0];
        self.push(Expr::Unary(op, x), d)
    }
    pub fn bin(&mut self, op: BinaryOp, a: ExprId, b: ExprId) -> ExprId {
        let d = op.output_dtype(self.dtypes[a.0]);
        self.push(Expr::Binary(op, a, b), d)
    }
    pub fn sel(&mut self, c: ExprId, a: ExprId, b: ExprId) -> ExprId {
        let d = self.dtypes[a.0];
        self.push(Expr::Select(c, a, b), d)
    }
    pub fn cast(&mut self, to: DType, x: ExprId) -> ExprId {
        self.push(Expr::Cast(to, x), to)
    }
    pub fn result(&mut self, p: usize, d: DType) -> ExprId {
        self.push(Expr::PhaseResult(p), d)
    }
    pub fn store(self, over_inner: bool, stores: Vec<(usize, ExprId)>) -> Phase {
        Phase {
            over_inner,
            exprs: self.exprs,
            dtypes: self.dtypes,
            kind: PhaseKind::Store { stores },
        }
    }
    pub fn reduce(self, op: ReduceOp, value: ExprId) -> Phase {
        Phase {
            over_inner: true,
            exprs: self.exprs,
            dtypes: self.dtypes,
            kind: PhaseKind::Reduce { op, value },
        }
    }
}

pub fn kernel(
    name: &str,
    outer: &[usize],
    inner: &[usize],
    accesses: Vec<Access>,
    phases: Vec<Phase>,
) -> Kernel {
    Kernel {
        name: name.into(),
        outer: outer.to_vec(),
        inner: inner.to_vec(),
        accesses,
        phases,
        roots: vec![],
    }
}

/// A deterministic xorshift generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Interesting values of each dtype (as f64 / i64 bit patterns via the helpers below).
pub fn edge_f32() -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        1.5,
        -1.5,
        2.5,
        -2.5,
        2.0,
        3.0,
        0.1,
        -0.1,
        1e-3,
        std::f32::consts::PI,
        -std::f32::consts::PI,
        std::f32::consts::FRAC_PI_2,
        1e10,
        -1e10,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        1e-40,
        -1e-40,
        1.4e-45,
        88.72,
        89.0,
        -87.3,
        -103.0,
        -104.0,
        1e-7,
        -1e-7,
        8192.5,
        16384.0,
        16385.0,
        1e5,
        -3e6,
        0.927_734_4,
        -0.927_734_4,
        0.625,
        20.0,
        -20.0,
        100.0,
        255.5,
        256.0,
        -1.0001,
        0.999_999_94,
        16_777_216.0,
        2_147_483_648.0,
        -2_147_483_648.0,
        9.223_372e18,
        -9.3e18,
        4.5,
        -0.75,
        6.0,
        -6.0,
        -9.0,
        12.0,
    ];
    v.extend((0..40).map(|i| i as f32 * 0.37 - 7.0));
    v
}

pub fn edge_f64() -> Vec<f64> {
    let mut v: Vec<f64> = edge_f32().into_iter().map(|x| x as f64).collect();
    v.extend([
        1e300,
        -1e300,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        5e-324,
        -5e-324,
        0.1f64,
        1.0 / 3.0,
        710.0,
        -745.0,
        9.007_199_254_740_993e15,
        1e19,
    ]);
    v
}

pub fn edge_i64() -> Vec<i64> {
    vec![
        0,
        1,
        -1,
        2,
        -2,
        3,
        -3,
        7,
        -7,
        31,
        32,
        63,
        64,
        100,
        -100,
        255,
        256,
        i32::MAX as i64,
        i32::MIN as i64,
        i32::MAX as i64 + 1,
        i64::MAX,
        i64::MIN,
        i64::MIN + 1,
        1 << 32,
        (1 << 53) + 1,
        -(1 << 40),
        u32::MAX as i64,
    ]
}

/// `n` values of dtype `d`: the edge values first, then random ones.
pub fn values(d: DType, n: usize, rng: &mut Rng) -> Value {
    let shape = [n];
    match d {
        DType::F32 => {
            let e = edge_f32();
            let v = (0..n)
                .map(|i| if i < e.len() { e[i] } else { random_f32(rng) })
                .collect();
            Value::from_vec(&shape, v).unwrap()
        }
        DType::F64 => {
            let e = edge_f64();
            let v = (0..n)
                .map(|i| {
                    if i < e.len() {
                        e[i]
                    } else {
                        random_f32(rng) as f64 * (1.0 + rng.uniform(-1e-9, 1e-9))
                    }
                })
                .collect();
            Value::from_vec(&shape, v).unwrap()
        }
        DType::I32 => {
            let e = edge_i64();
            let v = (0..n)
                .map(|i| {
                    if i < e.len() {
                        e[i] as i32
                    } else {
                        random_int(rng) as i32
                    }
                })
                .collect();
            Value::from_vec(&shape, v).unwrap()
        }
        DType::I64 => {
            let e = edge_i64();
            let v = (0..n)
                .map(|i| if i < e.len() { e[i] } else { random_int(rng) })
                .collect();
            Value::from_vec(&shape, v).unwrap()
        }
        DType::U8 => {
            let v = (0..n)
                .map(|i| {
                    if i < 3 {
                        [0u8, 255, 1][i]
                    } else {
                        rng.next() as u8
                    }
                })
                .collect();
            Value::from_vec(&shape, v).unwrap()
        }
        DType::Bool => {
            let v = (0..n).map(|_| rng.next() & 1 == 1).collect();
            Value::from_vec(&shape, v).unwrap()
        }
    }
}

pub fn random_f32(rng: &mut Rng) -> f32 {
    match rng.below(4) {
        0 => rng.uniform(-10.0, 10.0) as f32,
        1 => rng.uniform(-1.0, 1.0) as f32,
        2 => (rng.uniform(-30.0, 30.0).exp() * if rng.next() & 1 == 0 { 1.0 } else { -1.0 }) as f32,
        _ => rng.uniform(-100.0, 100.0) as f32,
    }
}

pub fn random_int(rng: &mut Rng) -> i64 {
    match rng.below(3) {
        0 => rng.below(21) as i64 - 10,
        1 => rng.below(2001) as i64 - 1000,
        _ => rng.next() as i64,
    }
}

/// Base pointer of a value's storage.
pub fn ptr_of(v: &mut Value) -> *mut u8 {
    map_value!(v, a => a.as_slice_memory_order_mut().expect("contiguous").as_mut_ptr().cast::<u8>())
}

/// Call a compiled kernel on `bufs` for outer iterations `[begin, end)`.
pub fn run(f: KernelFn, k: &Kernel, bufs: &mut [Value], begin: usize, end: usize) {
    let ptrs: Vec<*mut u8> = k
        .accesses
        .iter()
        .map(|a| ptr_of(&mut bufs[a.buf.0]))
        .collect();
    // SAFETY: every access addresses elements inside its buffer (the tests build them so),
    // and `ptrs` holds one base pointer per access as the kernel ABI requires.
    unsafe { f(ptrs.as_ptr(), begin, end) }
}

/// Tolerance for comparing floats: `ulps` units in the last place of the reference, plus
/// `abs` absolute (0 and 0 means bit-exact, NaN matching any NaN).
#[derive(Clone, Copy, Debug)]
pub struct Tol {
    pub ulps: f64,
    pub abs: f64,
}

pub const EXACT: Tol = Tol {
    ulps: 0.0,
    abs: 0.0,
};

pub fn ulp32(x: f64) -> f64 {
    let x = (x as f32).abs();
    if !x.is_finite() {
        return 0.0;
    }
    let next = f32::from_bits(x.to_bits() + 1);
    (next - x) as f64
}

pub fn ulp64(x: f64) -> f64 {
    let x = x.abs();
    if !x.is_finite() {
        return 0.0;
    }
    f64::from_bits(x.to_bits() + 1) - x
}

/// Compare two buffers elementwise; `tol(i, reference)` gives the tolerance for element i.
/// Returns the first mismatch as a message.
pub fn compare(got: &Value, want: &Value, tol: &dyn Fn(usize, f64) -> Tol) -> Result<(), String> {
    assert_eq!(got.dtype(), want.dtype());
    let d = got.dtype();
    match d {
        DType::F32 | DType::F64 => {
            let g = got.to_f64_vec();
            let w = want.to_f64_vec();
            for i in 0..g.len() {
                let (a, b) = (g[i], w[i]);
                if a.is_nan() && b.is_nan() {
                    continue;
                }
                let t = tol(i, b);
                // Zeros and exact tolerances compare bits (so −0 ≠ +0).
                let ok = if (a == 0.0 && b == 0.0) || (t.ulps == 0.0 && t.abs == 0.0) {
                    a.to_bits() == b.to_bits()
                } else {
                    let u = if d == DType::F32 { ulp32(b) } else { ulp64(b) };
                    a == b || (a - b).abs() <= t.ulps * u + t.abs
                };
                if !ok {
                    return Err(format!(
                        "element {i}: got {a:e} ({:#x}), want {b:e} ({:#x})",
                        a.to_bits(),
                        b.to_bits()
                    ));
                }
            }
            Ok(())
        }
        _ => {
            if got.bit_eq(want) {
                Ok(())
            } else {
                let g = got.to_f64_vec();
                let w = want.to_f64_vec();
                let i = (0..g.len()).find(|&i| g[i] != w[i]).unwrap_or(0);
                Err(format!("element {i}: got {}, want {}", g[i], w[i]))
            }
        }
    }
}

/// The JITs used by tests: vectorised (default) and scalar-only.
pub fn jits() -> Vec<(&'static str, JitKernels)> {
    let isa = IsaOptions {
        is_pic: false,
        verify: true,
    };
    vec![
        (
            "vector",
            JitKernels::with_options(&isa, EmitOptions::default()).unwrap(),
        ),
        (
            "scalar",
            JitKernels::with_options(
                &isa,
                EmitOptions {
                    vectorize: false,
                    ..EmitOptions::default()
                },
            )
            .unwrap(),
        ),
    ]
}

/// Compile `k` with every JIT of [`jits`], run it on copies of `bufs` (whole range, and split
/// at `split` points), and compare every written buffer with the reference evaluator.
pub fn check(k: &Kernel, bufs: &[Value], tol: &dyn Fn(usize, f64) -> Tol) {
    let mut want = bufs.to_vec();
    eval_kernel(k, &mut want);
    let n = k.outer_len();
    for (label, mut jit) in jits() {
        let f = jit
            .compile_one(k)
            .unwrap_or_else(|e| panic!("{label}: {e}\n{k}"));
        let mut splits = vec![vec![0, n]];
        if n > 2 {
            splits.push(vec![0, n / 3, n / 3 + 1, n]);
            splits.push(vec![0, 1, n - 1, n]);
        }
        for cuts in splits {
            let mut got = bufs.to_vec();
            for w in cuts.windows(2) {
                run(f, k, &mut got, w[0], w[1]);
            }
            for b in k.outputs() {
                if let Err(msg) = compare(&got[b.0], &want[b.0], tol) {
                    panic!("{label} path, ranges {cuts:?}, buffer {}: {msg}\n{k}", b.0);
                }
            }
        }
    }
}
