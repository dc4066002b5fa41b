//! Random kernels against the reference evaluator: random expression DAGs (exactly rounded
//! ops only, so results must match bit for bit), random outer/inner shapes, random strides
//! (broadcast, transposed, negative), elementwise and reduce-then-store kernels, run whole
//! and split.

mod codegen_util;

use codegen_util::Rng;
use codegen_util::*;
use flumen_compiler::kernel::{Access, ExprId, Kernel};
use flumen_frontend::op::{BinaryOp, ReduceOp, UnaryOp};
use flumen_frontend::{DType, Value};
use proptest::prelude::*;

const EXACT_FLOAT_UNARY: [UnaryOp; 12] = [
    UnaryOp::Neg,
    UnaryOp::Abs,
    UnaryOp::Sign,
    UnaryOp::Sqrt,
    UnaryOp::Rsqrt,
    UnaryOp::Square,
    UnaryOp::Reciprocal,
    UnaryOp::Relu,
    UnaryOp::Floor,
    UnaryOp::Ceil,
    UnaryOp::Round,
    UnaryOp::Identity,
];
const INT_UNARY: [UnaryOp; 6] = [
    UnaryOp::Neg,
    UnaryOp::Abs,
    UnaryOp::Sign,
    UnaryOp::Square,
    UnaryOp::Relu,
    UnaryOp::Identity,
];
const ARITH: [BinaryOp; 8] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Pow,
    BinaryOp::Maximum,
    BinaryOp::Minimum,
    BinaryOp::Mod,
];
const CMP: [BinaryOp; 6] = [
    BinaryOp::Equal,
    BinaryOp::NotEqual,
    BinaryOp::Less,
    BinaryOp::LessEqual,
    BinaryOp::Greater,
    BinaryOp::GreaterEqual,
];

/// Strides for an access over `dims`: contiguous in a random axis order, with some axes
/// broadcast and some reversed. Returns (offset, strides, buffer length).
fn random_strides(
    rng: &mut Rng,
    dims: &[usize],
    allow_broadcast: bool,
    plain: bool,
) -> (i64, Vec<i64>, usize) {
    let r = dims.len();
    let mut order: Vec<usize> = (0..r).collect();
    for i in (1..r).rev() {
        if !plain {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
    }
    let mut strides = vec![0i64; r];
    let mut acc = 1i64;
    for &ax in order.iter().rev() {
        if allow_broadcast && rng.below(4) == 0 {
            continue;
        }
        strides[ax] = acc * if !plain && rng.below(5) == 0 { 2 } else { 1 };
        acc = strides[ax] * dims[ax].max(1) as i64;
    }
    let mut offset = 0i64;
    for ax in 0..r {
        if !plain && rng.below(4) == 0 && strides[ax] != 0 {
            offset += strides[ax] * (dims[ax] as i64 - 1).max(0);
            strides[ax] = -strides[ax];
        }
    }
    let len = dims
        .iter()
        .zip(&strides)
        .map(|(&n, &s)| (n as i64 - 1).max(0) * s.abs())
        .sum::<i64>() as usize
        + 1;
    (offset, strides, len)
}

struct Gen {
    rng: Rng,
    pb: PB,
    d: DType,
}

impl Gen {
    fn pick(&mut self, d: DType) -> Option<ExprId> {
        let c: Vec<usize> = (0..self.pb.dtypes.len())
            .filter(|&i| self.pb.dtypes[i] == d)
            .collect();
        if c.is_empty() {
            None
        } else {
            Some(ExprId(c[self.rng.below(c.len() as u64) as usize]))
        }
    }

    /// Grow the DAG by `n` random expressions over dtype `self.d`.
    fn grow(&mut self, n: usize) {
        let d = self.d;
        for _ in 0..n {
            let x = self.pick(d).expect("a value of the primary dtype");
            let y = self.pick(d).expect("a value of the primary dtype");
            match self.rng.below(9) {
                0 | 1 => {
                    let ops: &[UnaryOp] = if d.is_float() {
                        &EXACT_FLOAT_UNARY
                    } else {
                        &INT_UNARY
                    };
                    let op = ops[self.rng.below(ops.len() as u64) as usize];
                    self.pb.un(op, x);
                }
                2..=4 => {
                    // Mostly the ops that vectorise; div/pow/mod now and then.
                    let i = self.rng.below(ARITH.len() as u64 * 2) as usize;
                    let op = ARITH[if i < ARITH.len() {
                        i
                    } else {
                        [0, 1, 2, 5, 6][i % 5]
                    }];
                    self.pb.bin(op, x, y);
                }
                5 => {
                    let op = CMP[self.rng.below(CMP.len() as u64) as usize];
                    let c = self.pb.bin(op, x, y);
                    if self.rng.below(2) == 0 {
                        let nc = self.pb.un(UnaryOp::LogicalNot, c);
                        let other = self.pick(DType::Bool).unwrap_or(nc);
                        let op = [BinaryOp::LogicalAnd, BinaryOp::LogicalOr, BinaryOp::Equal]
                            [self.rng.below(3) as usize];
                        self.pb.bin(op, nc, other);
                    }
                }
                6 => {
                    if let Some(c) = self.pick(DType::Bool) {
                        self.pb.sel(c, x, y);
                    }
                }
                7 => {
                    let to = DType::ALL[self.rng.below(6) as usize];
                    let c = self.pb.cast(to, x);
                    if to != DType::Bool || self.rng.below(2) == 0 {
                        self.pb.cast(d, c);
                    }
                }
                _ => {
                    let v =
                        [0.0, 1.0, -1.0, 2.5, -0.5, 3.0, 7.0, -100.0][self.rng.below(8) as usize];
                    if self.rng.below(2) == 0 {
                        self.pb.f(v, d);
                    } else {
                        self.pb.int(v as i64, d);
                    }
                }
            }
        }
    }
}

fn random_kernel(seed: u64) -> (Kernel, Vec<Value>) {
    let mut rng = Rng(seed | 1);
    let d = [
        DType::F32,
        DType::F64,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::F32,
    ][rng.below(6) as usize];
    let outer: Vec<usize> = (0..1 + rng.below(3))
        .map(|_| 1 + rng.below(13) as usize)
        .collect();
    let reduce = rng.below(2) == 0;
    let inner: Vec<usize> = if reduce {
        (0..1 + rng.below(2))
            .map(|_| rng.below(12) as usize)
            .collect()
    } else {
        vec![]
    };
    let all: Vec<usize> = outer.iter().chain(&inner).copied().collect();
    let mut accesses: Vec<Access> = Vec::new();
    let mut bufs: Vec<Value> = Vec::new();
    let plain = rng.below(2) == 0;
    let mut add = |rng: &mut Rng, dt: DType, input: bool| -> usize {
        let (offset, s, len) = random_strides(rng, &all, input, plain);
        let (o, i) = s.split_at(outer.len());
        let b = bufs.len();
        bufs.push(if input {
            values(dt, len, rng)
        } else {
            Value::zeros(dt, &[len])
        });
        // Outputs must not be broadcast along any axis (each element written once).
        accesses.push(acc(b, dt, offset, o, i));
        accesses.len() - 1
    };
    let n_in = 1 + rng.below(3) as usize;
    let ins: Vec<usize> = (0..n_in).map(|_| add(&mut rng, d, true)).collect();
    let bool_in = add(&mut rng, DType::Bool, true);
    let mut phases = Vec::new();
    let mut g = Gen {
        rng: Rng(rng.next() | 1),
        pb: PB::new(),
        d,
    };
    for &a in &ins {
        g.pb.load(a, d);
    }
    if g.rng.below(2) == 0 {
        g.pb.load(bool_in, DType::Bool);
    }
    if reduce {
        let n = 2 + g.rng.below(6) as usize;
        g.grow(n);
        let v = g.pick(d).unwrap();
        let ops: &[ReduceOp] = if d.is_float() {
            &[ReduceOp::Max, ReduceOp::Min]
        } else {
            &ReduceOp::ALL
        };
        let op = ops[g.rng.below(ops.len() as u64) as usize];
        phases.push(std::mem::take(&mut g.pb).reduce(op, v));
        for &a in &ins {
            g.pb.load(a, d);
        }
        g.pb.result(0, d);
    }
    let n = 3 + g.rng.below(10) as usize;
    g.grow(n);
    let out = add(&mut g.rng, d, false);
    let v = g.pick(d).unwrap();
    let mut stores = vec![(out, v)];
    if let Some(b) = g.pick(DType::Bool).filter(|_| g.rng.below(3) == 0) {
        let ob = add(&mut g.rng, DType::Bool, false);
        stores.push((ob, b));
    }
    phases.push(std::mem::take(&mut g.pb).store(reduce, stores));
    (
        kernel(
            &format!("random_{seed:x}"),
            &outer,
            &inner,
            accesses,
            phases,
        ),
        bufs,
    )
}

/// 300 cases, or `PROPTEST_CASES`.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

/// How the random kernels vectorise (`--nocapture`): a sanity check that the generator
/// reaches every strategy.
#[test]
fn random_kernel_strategies() {
    use flumen_compiler::codegen::{Strategy, plan};
    let (mut scalar, mut outer, mut inner) = (0, 0, 0);
    for seed in 0..1000u64 {
        let (k, _) = random_kernel(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        match plan(&k, &Default::default()).unwrap() {
            Strategy::Scalar => scalar += 1,
            Strategy::Outer { .. } => outer += 1,
            Strategy::Inner { .. } => inner += 1,
        }
    }
    println!("strategies of 1000 random kernels: {scalar} scalar, {outer} outer, {inner} inner");
    assert!(outer > 50 && inner > 50 && scalar > 50);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn random_kernels_match_reference(seed in any::<u64>()) {
        let (k, bufs) = random_kernel(seed);
        check(&k, &bufs, &|_, _| EXACT);
    }
}
