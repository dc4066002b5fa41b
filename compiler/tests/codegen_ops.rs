//! Every elementwise op, select and cast, for every dtype it accepts: compiled code (vector
//! and scalar paths, whole and split ranges) against the reference evaluator on edge values
//! and random inputs.

mod codegen_util;

use codegen_util::*;
use flumen_frontend::DType;
use flumen_frontend::op::{BinaryKind, BinaryOp, UnaryOp};

/// Elements per test buffer: the edge values, random values, and an odd tail.
const N: usize = 203;

/// The tolerance of f32 unary ops (ulps of the reference, plus an absolute term for
/// argument reduction and the reference's own cancellation), see `codegen::math`.
pub fn unary_tol(op: UnaryOp, d: DType, x: f64) -> Tol {
    use UnaryOp::*;
    if d != DType::F32 {
        return EXACT;
    }
    match op {
        Exp | Log => Tol {
            ulps: 2.0,
            abs: 0.0,
        },
        Softplus => Tol {
            ulps: 4.0,
            abs: 0.0,
        },
        Log1p | Tanh | Sigmoid => Tol {
            ulps: 3.0,
            abs: 0.0,
        },
        Sin | Cos => Tol {
            ulps: 2.0,
            abs: x.abs() * 2f64.powi(-46),
        },
        Erf => Tol {
            ulps: 2.0,
            abs: 0.0,
        },
        Gelu => Tol {
            ulps: 8.0,
            abs: x.abs() * 2f64.powi(-52),
        },
        _ => EXACT,
    }
}

#[test]
fn unary_ops_all_dtypes() {
    for op in UnaryOp::ALL {
        for d in DType::ALL {
            if !op.dtypes().accepts(d) {
                continue;
            }
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (op as u64) << 8 ^ d as u64);
            let x = values(d, N, &mut rng);
            let mut pb = PB::new();
            let l = pb.load(0, d);
            let y = pb.un(op, l);
            let k = kernel(
                &format!("{}_{d}", op.name()),
                &[N],
                &[],
                vec![acc(0, d, 0, &[1], &[]), acc(1, d, 0, &[1], &[])],
                vec![pb.store(false, vec![(1, y)])],
            );
            let xs = x.to_f64_vec();
            check(&k, &[x, flumen_frontend::Value::zeros(d, &[N])], &|i, _| {
                unary_tol(op, d, xs[i])
            });
        }
    }
}

/// All pairs of `m` edge values plus random pairs.
fn pairs(d: DType, rng: &mut Rng) -> (flumen_frontend::Value, flumen_frontend::Value) {
    let base = values(d, 64, rng);
    let b = base.to_f64_vec();
    let m = 24.min(b.len());
    let n = m * m + 61;
    let mut xs = Vec::with_capacity(n);
    let mut ys = Vec::with_capacity(n);
    let extra_x = values(d, 128, rng);
    let extra_y = values(d, 128, &mut Rng(rng.next() | 1));
    let (ex, ey) = (index_list(&extra_x), index_list(&extra_y));
    for i in 0..m {
        for j in 0..m {
            xs.push(Src::Base(i));
            ys.push(Src::Base(j));
        }
    }
    for i in 0..61 {
        xs.push(Src::Extra(ex[64 + i % 64]));
        ys.push(Src::Extra(ey[64 + (i * 7) % 64]));
    }
    (gather(&base, &extra_x, &xs), gather(&base, &extra_y, &ys))
}

#[derive(Clone, Copy)]
enum Src {
    Base(usize),
    Extra(usize),
}

fn index_list(v: &flumen_frontend::Value) -> Vec<usize> {
    (0..v.len()).collect()
}

fn gather(
    base: &flumen_frontend::Value,
    extra: &flumen_frontend::Value,
    idx: &[Src],
) -> flumen_frontend::Value {
    use flumen_frontend::Value;
    fn pick<T: Copy>(b: &[T], e: &[T], idx: &[Src]) -> Vec<T> {
        idx.iter()
            .map(|s| match *s {
                Src::Base(i) => b[i],
                Src::Extra(i) => e[i],
            })
            .collect()
    }
    let n = [idx.len()];
    match (base, extra) {
        (Value::F32(b), Value::F32(e)) => {
            Value::from_vec(&n, pick(b.as_slice().unwrap(), e.as_slice().unwrap(), idx))
        }
        (Value::F64(b), Value::F64(e)) => {
            Value::from_vec(&n, pick(b.as_slice().unwrap(), e.as_slice().unwrap(), idx))
        }
        (Value::I32(b), Value::I32(e)) => {
            Value::from_vec(&n, pick(b.as_slice().unwrap(), e.as_slice().unwrap(), idx))
        }
        (Value::I64(b), Value::I64(e)) => {
            Value::from_vec(&n, pick(b.as_slice().unwrap(), e.as_slice().unwrap(), idx))
        }
        (Value::U8(b), Value::U8(e)) => {
            Value::from_vec(&n, pick(b.as_slice().unwrap(), e.as_slice().unwrap(), idx))
        }
        (Value::Bool(b), Value::Bool(e)) => {
            Value::from_vec(&n, pick(b.as_slice().unwrap(), e.as_slice().unwrap(), idx))
        }
        _ => unreachable!(),
    }
    .unwrap()
}

#[test]
fn binary_ops_all_dtypes() {
    for op in BinaryOp::ALL {
        for d in DType::ALL {
            let bool_minmax =
                d == DType::Bool && matches!(op, BinaryOp::Maximum | BinaryOp::Minimum);
            if !op.dtypes().accepts(d) && !bool_minmax {
                continue;
            }
            let mut rng = Rng(0x1234_5678_9ABC_DEF1 ^ (op as u64) << 16 ^ d as u64);
            let (x, y) = pairs(d, &mut rng);
            let n = x.len();
            let out = op.output_dtype(d);
            let mut pb = PB::new();
            let a = pb.load(0, d);
            let b = pb.load(1, d);
            let r = pb.bin(op, a, b);
            let k = kernel(
                &format!("{}_{d}", op.name()),
                &[n],
                &[],
                vec![
                    acc(0, d, 0, &[1], &[]),
                    acc(1, d, 0, &[1], &[]),
                    acc(2, out, 0, &[1], &[]),
                ],
                vec![pb.store(false, vec![(2, r)])],
            );
            assert!(op.kind() != BinaryKind::Logical || d == DType::Bool);
            check(
                &k,
                &[x, y, flumen_frontend::Value::zeros(out, &[n])],
                &|_, _| EXACT,
            );
        }
    }
}

#[test]
fn select_all_dtypes() {
    for d in DType::ALL {
        let mut rng = Rng(77 + d as u64);
        let c = values(DType::Bool, N, &mut rng);
        let x = values(d, N, &mut rng);
        let y = values(d, N, &mut Rng(5 + d as u64));
        let mut pb = PB::new();
        let lc = pb.load(0, DType::Bool);
        let a = pb.load(1, d);
        let b = pb.load(2, d);
        let s = pb.sel(lc, a, b);
        let k = kernel(
            &format!("select_{d}"),
            &[N],
            &[],
            vec![
                acc(0, DType::Bool, 0, &[1], &[]),
                acc(1, d, 0, &[1], &[]),
                acc(2, d, 0, &[1], &[]),
                acc(3, d, 0, &[1], &[]),
            ],
            vec![pb.store(false, vec![(3, s)])],
        );
        check(
            &k,
            &[c, x, y, flumen_frontend::Value::zeros(d, &[N])],
            &|_, _| EXACT,
        );
    }
}

/// Selects whose condition is computed (a comparison) stay in vector registers as masks.
#[test]
fn select_on_comparison_vectorised() {
    for d in [DType::F32, DType::F64, DType::I32, DType::I64] {
        let mut rng = Rng(99 + d as u64);
        let x = values(d, N, &mut rng);
        let g = values(d, N, &mut rng);
        // relu gradient: select(x > 0, g, 0), and a logical chain on masks.
        let mut pb = PB::new();
        let lx = pb.load(0, d);
        let lg = pb.load(1, d);
        let z = pb.int(0, d);
        let pos = pb.bin(BinaryOp::Greater, lx, z);
        let small = pb.bin(BinaryOp::Less, lx, lg);
        let both = pb.bin(BinaryOp::LogicalOr, pos, small);
        let nb = pb.un(UnaryOp::LogicalNot, both);
        let eq = pb.bin(BinaryOp::Equal, nb, pos);
        let r = pb.sel(eq, lg, z);
        let k = kernel(
            &format!("relu_grad_{d}"),
            &[N],
            &[],
            vec![
                acc(0, d, 0, &[1], &[]),
                acc(1, d, 0, &[1], &[]),
                acc(2, d, 0, &[1], &[]),
            ],
            vec![pb.store(false, vec![(2, r)])],
        );
        let strategy = flumen_compiler::codegen::plan(&k, &Default::default()).unwrap();
        assert!(
            matches!(strategy, flumen_compiler::codegen::Strategy::Outer { .. }),
            "{strategy:?}"
        );
        check(
            &k,
            &[x, g, flumen_frontend::Value::zeros(d, &[N])],
            &|_, _| EXACT,
        );
    }
}

#[test]
fn casts_all_pairs() {
    for from in DType::ALL {
        for to in DType::ALL {
            let mut rng = Rng(31 * from as u64 + to as u64 + 1);
            let x = values(from, N, &mut rng);
            let mut pb = PB::new();
            let l = pb.load(0, from);
            let c = pb.cast(to, l);
            let k = kernel(
                &format!("cast_{from}_{to}"),
                &[N],
                &[],
                vec![acc(0, from, 0, &[1], &[]), acc(1, to, 0, &[1], &[])],
                vec![pb.store(false, vec![(1, c)])],
            );
            check(
                &k,
                &[x, flumen_frontend::Value::zeros(to, &[N])],
                &|_, _| EXACT,
            );
        }
    }
}

#[test]
fn constants_all_dtypes() {
    let floats = [
        0.0,
        -0.0,
        1.5,
        -2.7,
        1e40,
        -1e40,
        f64::NAN,
        f64::INFINITY,
        300.7,
        -1.0,
        0.1,
    ];
    let ints = [
        0i64,
        1,
        -1,
        255,
        256,
        -129,
        i64::MAX,
        i64::MIN,
        1 << 40,
        3_000_000_000,
    ];
    for d in DType::ALL {
        let mut pb = PB::new();
        let mut stores = Vec::new();
        let mut accesses = Vec::new();
        for (i, &x) in floats.iter().enumerate() {
            let e = pb.f(x, d);
            accesses.push(acc(i, d, 0, &[1], &[]));
            stores.push((i, e));
        }
        for (j, &x) in ints.iter().enumerate() {
            let i = floats.len() + j;
            let e = pb.int(x, d);
            accesses.push(acc(i, d, 0, &[1], &[]));
            stores.push((i, e));
        }
        let nb = accesses.len();
        let k = kernel(
            &format!("consts_{d}"),
            &[9],
            &[],
            accesses,
            vec![pb.store(false, stores)],
        );
        let bufs: Vec<_> = (0..nb)
            .map(|_| flumen_frontend::Value::zeros(d, &[9]))
            .collect();
        check(&k, &bufs, &|_, _| EXACT);
    }
}
