//! Loop structure and vectorisation: reductions over many lengths, broadcasts, transposes,
//! negative strides, multi-axis spaces, multi-phase kernels (softmax, layer norm), aliasing,
//! empty spaces, and split ranges (every `check` also runs `[0,k)` + `[k,n)`).

mod codegen_util;

use codegen_util::*;
use flumen_compiler::codegen::{EmitOptions, Strategy, plan};
use flumen_compiler::kernel::Kernel;
use flumen_frontend::op::{BinaryOp, ReduceOp, UnaryOp};
use flumen_frontend::{DType, Value};

fn strategy(k: &Kernel) -> Strategy {
    plan(k, &EmitOptions::default()).unwrap()
}

fn random_values(d: DType, n: usize, rng: &mut Rng, lo: f64, hi: f64) -> Value {
    let shape = [n];
    match d {
        DType::F32 => Value::from_vec(&shape, (0..n).map(|_| rng.uniform(lo, hi) as f32).collect()),
        DType::F64 => Value::from_vec(&shape, (0..n).map(|_| rng.uniform(lo, hi)).collect()),
        DType::I32 => Value::from_vec(&shape, (0..n).map(|_| rng.uniform(lo, hi) as i32).collect()),
        DType::I64 => Value::from_vec(
            &shape,
            (0..n).map(|_| rng.next() as i64 >> rng.below(60)).collect(),
        ),
        DType::U8 => Value::from_vec(&shape, (0..n).map(|_| rng.next() as u8).collect()),
        DType::Bool => Value::from_vec(&shape, (0..n).map(|_| rng.next() & 1 == 1).collect()),
    }
    .unwrap()
}

/// Row reduction `out[r] = op_c x[r, c]` followed by a store phase.
fn row_reduce(op: ReduceOp, d: DType, rows: usize, cols: usize) -> Kernel {
    let mut p0 = PB::new();
    let x = p0.load(0, d);
    let mut p1 = PB::new();
    let r = p1.result(0, d);
    kernel(
        &format!("{}_{d}_{cols}", op.name()),
        &[rows],
        &[cols],
        vec![acc(0, d, 0, &[cols as i64], &[1]), acc(1, d, 0, &[1], &[])],
        vec![p0.reduce(op, x), p1.store(false, vec![(1, r)])],
    )
}

#[test]
fn row_reductions_all_lengths() {
    for op in ReduceOp::ALL {
        for d in [DType::F32, DType::F64, DType::I32, DType::I64, DType::U8] {
            for cols in [0usize, 1, 3, 4, 5, 8, 17, 33, 1000] {
                let rows = 5;
                let k = row_reduce(op, d, rows, cols);
                let mut rng = Rng(1 + cols as u64 * 7 + d as u64);
                let (lo, hi) = if op == ReduceOp::Prod {
                    (0.9, 1.1)
                } else {
                    (-100.0, 100.0)
                };
                let mut x = random_values(d, rows * cols, &mut rng, lo, hi);
                if d.is_float() && cols > 3 && matches!(op, ReduceOp::Max | ReduceOp::Min) {
                    // A NaN in row 1 must propagate; a ±0 pair in row 2.
                    if let Value::F32(a) = &mut x {
                        a[cols + 2] = f32::NAN;
                        a[2 * cols] = -0.0;
                        a[2 * cols + 1] = 0.0;
                    }
                    if let Value::F64(a) = &mut x {
                        a[cols + 2] = f64::NAN;
                    }
                }
                let xs = x.to_f64_vec();
                let sum_abs: Vec<f64> = (0..rows)
                    .map(|r| xs[r * cols..(r + 1) * cols].iter().map(|v| v.abs()).sum())
                    .collect();
                let eps = if d == DType::F32 {
                    2f64.powi(-24)
                } else {
                    2f64.powi(-53)
                };
                let reassoc = matches!(op, ReduceOp::Sum | ReduceOp::Mean) && d.is_float();
                if cols >= 16 && d != DType::U8 && !(op == ReduceOp::Prod && d.is_float()) {
                    assert!(
                        matches!(strategy(&k), Strategy::Inner { .. }),
                        "{}: {:?}",
                        k.name,
                        strategy(&k)
                    );
                }
                let bufs = [x, Value::zeros(d, &[rows])];
                check(&k, &bufs, &|i, _| {
                    if reassoc {
                        Tol {
                            ulps: 0.0,
                            abs: 2.0 * cols as f64 * eps * sum_abs[i],
                        }
                    } else {
                        EXACT
                    }
                });
            }
        }
    }
}

/// Column reductions vectorise along the outer axis, each lane summing in order: exact.
#[test]
fn column_reductions_exact() {
    for d in [DType::F32, DType::F64, DType::I32] {
        for (rows, cols) in [(7usize, 9usize), (100, 4), (3, 130), (0, 5)] {
            for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Prod] {
                let mut p0 = PB::new();
                let x = p0.load(0, d);
                let sq = p0.bin(BinaryOp::Mul, x, x);
                let mut p1 = PB::new();
                let r = p1.result(0, d);
                let k = kernel(
                    "colsum",
                    &[cols],
                    &[rows],
                    vec![acc(0, d, 0, &[1], &[cols as i64]), acc(1, d, 0, &[1], &[])],
                    vec![p0.reduce(op, sq), p1.store(false, vec![(1, r)])],
                );
                if cols >= 4 && rows > 0 {
                    assert!(
                        matches!(strategy(&k), Strategy::Outer { .. }),
                        "{:?}",
                        strategy(&k)
                    );
                }
                let mut rng = Rng(rows as u64 * 31 + cols as u64);
                let x = random_values(d, rows * cols, &mut rng, -1.5, 1.5);
                check(&k, &[x, Value::zeros(d, &[cols])], &|_, _| EXACT);
            }
        }
    }
}

/// Softmax over the last axis: reduce max, reduce Σexp(x−max), store exp(x−max)/Σ.
fn softmax(d: DType, rows: usize, cols: usize) -> Kernel {
    let c = cols as i64;
    let mut p0 = PB::new();
    let x0 = p0.load(0, d);
    let mut p1 = PB::new();
    let x1 = p1.load(0, d);
    let m1 = p1.result(0, d);
    let s1 = p1.bin(BinaryOp::Sub, x1, m1);
    let e1 = p1.un(UnaryOp::Exp, s1);
    let mut p2 = PB::new();
    let x2 = p2.load(0, d);
    let m2 = p2.result(0, d);
    let sum = p2.result(1, d);
    let s2 = p2.bin(BinaryOp::Sub, x2, m2);
    let e2 = p2.un(UnaryOp::Exp, s2);
    let y = p2.bin(BinaryOp::Div, e2, sum);
    kernel(
        "softmax",
        &[rows],
        &[cols],
        vec![acc(0, d, 0, &[c], &[1]), acc(1, d, 0, &[c], &[1])],
        vec![
            p0.reduce(ReduceOp::Max, x0),
            p1.reduce(ReduceOp::Sum, e1),
            p2.store(true, vec![(1, y)]),
        ],
    )
}

#[test]
fn softmax_multi_phase() {
    for d in [DType::F32, DType::F64] {
        for cols in [1usize, 3, 10, 17, 128, 1000] {
            let rows = 6;
            let k = softmax(d, rows, cols);
            if cols >= 16 {
                let want = if d == DType::F32 {
                    vec![Some(4); 3]
                } else {
                    vec![Some(2), None, None]
                };
                assert_eq!(
                    strategy(&k),
                    Strategy::Inner {
                        phases: want.clone()
                    },
                    "{d} {cols}"
                );
            }
            let mut rng = Rng(cols as u64);
            let x = random_values(d, rows * cols, &mut rng, -20.0, 20.0);
            let ulps = if d == DType::F32 {
                8.0 + cols as f64 / 4.0
            } else {
                4.0 + cols as f64 / 4.0
            };
            check(&k, &[x, Value::zeros(d, &[rows * cols])], &|_, _| Tol {
                ulps,
                abs: 0.0,
            });
        }
    }
}

/// Layer norm: mean, variance (of the centred values), normalise with scale and bias
/// (broadcast along rows: outer stride 0).
#[test]
fn layer_norm() {
    let (rows, cols) = (9usize, 67usize);
    let c = cols as i64;
    let d = DType::F32;
    let mut p0 = PB::new();
    let x = p0.load(0, d);
    let mut p1 = PB::new();
    let x1 = p1.load(0, d);
    let s = p1.result(0, d);
    let n1 = p1.f(cols as f64, d);
    let mean = p1.bin(BinaryOp::Div, s, n1);
    let xc = p1.bin(BinaryOp::Sub, x1, mean);
    let sq = p1.un(UnaryOp::Square, xc);
    let mut p2 = PB::new();
    let x2 = p2.load(0, d);
    let s2 = p2.result(0, d);
    let v2 = p2.result(1, d);
    let n2 = p2.f(cols as f64, d);
    let mean2 = p2.bin(BinaryOp::Div, s2, n2);
    let var = p2.bin(BinaryOp::Div, v2, n2);
    let eps = p2.f(1e-5, d);
    let ve = p2.bin(BinaryOp::Add, var, eps);
    let inv = p2.un(UnaryOp::Rsqrt, ve);
    let xc2 = p2.bin(BinaryOp::Sub, x2, mean2);
    let nrm = p2.bin(BinaryOp::Mul, xc2, inv);
    let g = p2.load(2, d);
    let b = p2.load(3, d);
    let sc = p2.bin(BinaryOp::Mul, nrm, g);
    let y = p2.bin(BinaryOp::Add, sc, b);
    let k = kernel(
        "layer_norm",
        &[rows],
        &[cols],
        vec![
            acc(0, d, 0, &[c], &[1]),
            acc(1, d, 0, &[c], &[1]),
            acc(2, d, 0, &[0], &[1]),
            acc(3, d, 0, &[0], &[1]),
        ],
        vec![
            p0.reduce(ReduceOp::Sum, x),
            p1.reduce(ReduceOp::Sum, sq),
            p2.store(true, vec![(1, y)]),
        ],
    );
    assert_eq!(
        strategy(&k),
        Strategy::Inner {
            phases: vec![Some(4); 3]
        }
    );
    let mut rng = Rng(3);
    let bufs = [
        random_values(d, rows * cols, &mut rng, -3.0, 5.0),
        Value::zeros(d, &[rows * cols]),
        random_values(d, cols, &mut rng, 0.5, 1.5),
        random_values(d, cols, &mut rng, -1.0, 1.0),
    ];
    check(&k, &bufs, &|_, _| Tol {
        ulps: 64.0,
        abs: 1e-6,
    });
}

/// `out[r, c] = x[r, c] · row[r] + col[c]` with outer broadcasts (stride 0), and
/// `out = x^T` (a transposed read), `out = reverse(x)` (negative stride), and a stride-2
/// slice.
#[test]
fn broadcast_transpose_negative_strides() {
    for d in [DType::F32, DType::F64, DType::I32, DType::I64, DType::U8] {
        for (r, c) in [(1usize, 1usize), (3, 5), (4, 4), (13, 37), (64, 3)] {
            let (ri, ci) = (r as i64, c as i64);
            let mut rng = Rng(r as u64 * 1000 + c as u64);
            let x = random_values(d, r * c, &mut rng, -50.0, 50.0);
            let row = random_values(d, r, &mut rng, -3.0, 3.0);
            let col = random_values(d, c, &mut rng, -3.0, 3.0);
            // Broadcast.
            let mut pb = PB::new();
            let lx = pb.load(0, d);
            let lr = pb.load(1, d);
            let lc = pb.load(2, d);
            let m = pb.bin(BinaryOp::Mul, lx, lr);
            let y = pb.bin(BinaryOp::Add, m, lc);
            let k = kernel(
                "bcast",
                &[r, c],
                &[],
                vec![
                    acc(0, d, 0, &[ci, 1], &[]),
                    acc(1, d, 0, &[1, 0], &[]),
                    acc(2, d, 0, &[0, 1], &[]),
                    acc(3, d, 0, &[ci, 1], &[]),
                ],
                vec![pb.store(false, vec![(3, y)])],
            );
            if c >= 4 && d != DType::U8 {
                assert!(matches!(strategy(&k), Strategy::Outer { .. }));
            }
            check(
                &k,
                &[x.clone(), row, col, Value::zeros(d, &[r * c])],
                &|_, _| EXACT,
            );
            // Transpose: out[c, r] = x[r, c].
            let mut pb = PB::new();
            let lx = pb.load(0, d);
            let k = kernel(
                "transpose",
                &[c, r],
                &[],
                vec![acc(0, d, 0, &[1, ci], &[]), acc(1, d, 0, &[ri, 1], &[])],
                vec![pb.store(false, vec![(1, lx)])],
            );
            check(&k, &[x.clone(), Value::zeros(d, &[r * c])], &|_, _| EXACT);
            // Reverse (negative stride) and negate.
            let n = (r * c) as i64;
            let mut pb = PB::new();
            let lx = pb.load(0, d);
            let y = pb.un(UnaryOp::Neg, lx);
            let k = kernel(
                "reverse",
                &[r * c],
                &[],
                vec![acc(0, d, n - 1, &[-1], &[]), acc(1, d, 0, &[1], &[])],
                vec![pb.store(false, vec![(1, y)])],
            );
            assert_eq!(strategy(&k), Strategy::Scalar);
            check(&k, &[x.clone(), Value::zeros(d, &[r * c])], &|_, _| EXACT);
            // Every other element, offset 1.
            let half = (r * c) / 2;
            let mut pb = PB::new();
            let lx = pb.load(0, d);
            let k = kernel(
                "slice",
                &[half],
                &[],
                vec![acc(0, d, 1, &[2], &[]), acc(1, d, 0, &[1], &[])],
                vec![pb.store(false, vec![(1, lx)])],
            );
            check(&k, &[x, Value::zeros(d, &[half])], &|_, _| EXACT);
        }
    }
}

/// A rank-3 permutation (no axes merge): the row loop carries the multi-index across two
/// axes, tested with many split points.
#[test]
fn rank3_permutation_carry() {
    let (a, b, c) = (3usize, 5usize, 7usize);
    let d = DType::I32;
    // out[i, j, k] (contiguous [a, b, c]) = x[k, i, j] (contiguous [c, a, b]).
    let mut pb = PB::new();
    let lx = pb.load(0, d);
    let k = kernel(
        "perm",
        &[a, b, c],
        &[],
        vec![
            acc(0, d, 0, &[b as i64, 1, (a * b) as i64], &[]),
            acc(1, d, 0, &contiguous(&[a, b, c]), &[]),
        ],
        vec![pb.store(false, vec![(1, lx)])],
    );
    let x = Value::from_vec(&[a * b * c], (0..(a * b * c) as i32).collect()).unwrap();
    check(&k, &[x.clone(), Value::zeros(d, &[a * b * c])], &|_, _| {
        EXACT
    });
    let mut jit = flumen_compiler::codegen::JitKernels::new().unwrap();
    let f = jit.compile_one(&k).unwrap();
    let mut want = vec![x.clone(), Value::zeros(d, &[a * b * c])];
    flumen_compiler::kernel::eval::eval_kernel(&k, &mut want);
    let n = a * b * c;
    for cut in 0..=n {
        let mut got = vec![x.clone(), Value::zeros(d, &[n])];
        run(f, &k, &mut got, 0, cut);
        run(f, &k, &mut got, cut, n);
        assert!(got[1].bit_eq(&want[1]), "cut at {cut}");
    }
}

/// Reduction over two non-adjacent axes of `[A, R, B]` (inner strides `[R·B, 1]`), with the
/// vectorised innermost axis running many times per outer index.
#[test]
fn multi_axis_inner() {
    for d in [DType::F32, DType::I64] {
        for (a, r, b) in [(3usize, 4usize, 9usize), (5, 2, 16), (2, 3, 1), (4, 1, 33)] {
            let mut p0 = PB::new();
            let x = p0.load(0, d);
            let mut p1 = PB::new();
            let x1 = p1.load(0, d);
            let m = p1.result(0, d);
            let y = p1.bin(BinaryOp::Sub, x1, m);
            let k = kernel(
                "multi_axis",
                &[r],
                &[a, b],
                vec![
                    acc(0, d, 0, &[b as i64], &[(r * b) as i64, 1]),
                    acc(1, d, 0, &[b as i64], &[(r * b) as i64, 1]),
                ],
                vec![p0.reduce(ReduceOp::Max, x), p1.store(true, vec![(1, y)])],
            );
            let mut rng = Rng((a * 100 + r * 10 + b) as u64);
            let xv = random_values(d, a * r * b, &mut rng, -9.0, 9.0);
            check(&k, &[xv, Value::zeros(d, &[a * r * b])], &|_, _| EXACT);
        }
    }
}

/// In-place update (same geometry) vectorises; a shifted in-place update stays scalar and
/// keeps the reference's read-before-write order.
#[test]
fn aliasing() {
    let n = 50usize;
    let d = DType::F32;
    let mut rng = Rng(8);
    let x = random_values(d, n, &mut rng, -5.0, 5.0);
    let mut pb = PB::new();
    let l = pb.load(0, d);
    let y = pb.un(UnaryOp::Relu, l);
    let k = kernel(
        "inplace",
        &[n],
        &[],
        vec![acc(0, d, 0, &[1], &[]), acc(0, d, 0, &[1], &[])],
        vec![pb.store(false, vec![(1, y)])],
    );
    assert!(matches!(strategy(&k), Strategy::Outer { lanes: 4 }));
    check(&k, std::slice::from_ref(&x), &|_, _| EXACT);
    // x[i] = x[i] + x[i+1] for i < n−1.
    let mut pb = PB::new();
    let a = pb.load(0, d);
    let b = pb.load(1, d);
    let y = pb.bin(BinaryOp::Add, a, b);
    let k = kernel(
        "shifted",
        &[n - 1],
        &[],
        vec![
            acc(0, d, 0, &[1], &[]),
            acc(0, d, 1, &[1], &[]),
            acc(0, d, 0, &[1], &[]),
        ],
        vec![pb.store(false, vec![(2, y)])],
    );
    assert_eq!(strategy(&k), Strategy::Scalar);
    check(&k, std::slice::from_ref(&x), &|_, _| EXACT);
    // x[i+1] = x[i] · 2: a loop-carried dependence.
    let mut pb = PB::new();
    let a = pb.load(0, d);
    let two = pb.f(2.0, d);
    let y = pb.bin(BinaryOp::Mul, a, two);
    let k = kernel(
        "carried",
        &[n - 1],
        &[],
        vec![acc(0, d, 0, &[1], &[]), acc(0, d, 1, &[1], &[])],
        vec![pb.store(false, vec![(1, y)])],
    );
    check(&k, &[x], &|_, _| EXACT);
}

/// Empty inner spaces give the reduction's identity; an empty outer space does nothing; a
/// rank-0 outer space runs once.
#[test]
fn empty_and_scalar_spaces() {
    for inner in [vec![0usize], vec![5, 0], vec![0, 5]] {
        let mut p0 = PB::new();
        let x = p0.load(0, DType::F32);
        let mut p1 = PB::new();
        let r = p1.result(0, DType::F32);
        let k = kernel(
            "empty_inner",
            &[4],
            &inner,
            vec![
                acc(0, DType::F32, 0, &[0], &[1, 1]),
                acc(1, DType::F32, 0, &[1], &[]),
            ],
            vec![p0.reduce(ReduceOp::Max, x), p1.store(false, vec![(1, r)])],
        );
        check(
            &k,
            &[
                Value::zeros(DType::F32, &[1]),
                Value::zeros(DType::F32, &[4]),
            ],
            &|_, _| EXACT,
        );
    }
    let k = row_reduce(ReduceOp::Sum, DType::F32, 0, 7);
    check(
        &k,
        &[
            Value::zeros(DType::F32, &[0]),
            Value::zeros(DType::F32, &[0]),
        ],
        &|_, _| EXACT,
    );
    // Total sum: outer = [].
    let n = 1001usize;
    let mut p0 = PB::new();
    let x = p0.load(0, DType::I32);
    let mut p1 = PB::new();
    let r = p1.result(0, DType::I32);
    let k = kernel(
        "total",
        &[],
        &[n],
        vec![
            acc(0, DType::I32, 0, &[], &[1]),
            acc(1, DType::I32, 0, &[], &[]),
        ],
        vec![p0.reduce(ReduceOp::Sum, x), p1.store(false, vec![(1, r)])],
    );
    let mut rng = Rng(5);
    check(
        &k,
        &[
            random_values(DType::I32, n, &mut rng, -1e9, 1e9),
            Value::zeros(DType::I32, &[1]),
        ],
        &|_, _| EXACT,
    );
}

/// Loop-invariant work (a broadcast load, a transcendental of it, a phase result) is hoisted
/// and splatted; an invariant reduced value is still reduced `n` times.
#[test]
fn hoisted_invariants() {
    let (rows, cols) = (5usize, 23usize);
    let d = DType::F32;
    let mut p0 = PB::new();
    let bias = p0.load(1, d); // one value per row, inner stride 0
    let eb = p0.un(UnaryOp::Exp, bias);
    let mut p1 = PB::new();
    let x = p1.load(0, d);
    let s = p1.result(0, d);
    let b1 = p1.load(1, d);
    let t = p1.un(UnaryOp::Tanh, b1);
    let u = p1.bin(BinaryOp::Mul, x, t);
    let v = p1.bin(BinaryOp::Add, u, s);
    let k = kernel(
        "hoist",
        &[rows],
        &[cols],
        vec![
            acc(0, d, 0, &[cols as i64], &[1]),
            acc(1, d, 0, &[1], &[0]),
            acc(2, d, 0, &[cols as i64], &[1]),
        ],
        vec![p0.reduce(ReduceOp::Sum, eb), p1.store(true, vec![(2, v)])],
    );
    assert!(matches!(strategy(&k), Strategy::Inner { .. }));
    let mut rng = Rng(11);
    let bufs = [
        random_values(d, rows * cols, &mut rng, -2.0, 2.0),
        random_values(d, rows, &mut rng, -2.0, 2.0),
        Value::zeros(d, &[rows * cols]),
    ];
    check(&k, &bufs, &|_, _| Tol {
        ulps: 64.0,
        abs: 1e-5,
    });
}

/// Phases over the inner space mixing f32 and f64 (a cast) stay scalar but still work, and a
/// store phase not over the inner space writes once per outer index.
#[test]
fn mixed_dtypes_and_once_per_outer_store() {
    let (rows, cols) = (6usize, 19usize);
    let mut p0 = PB::new();
    let x = p0.load(0, DType::F32);
    let xd = p0.cast(DType::F64, x);
    let sq = p0.bin(BinaryOp::Mul, xd, xd);
    let mut p1 = PB::new();
    let r = p1.result(0, DType::F64);
    let rs = p1.un(UnaryOp::Sqrt, r);
    let rf = p1.cast(DType::F32, rs);
    let ri = p1.cast(DType::I32, rs);
    let k = kernel(
        "norm",
        &[rows],
        &[cols],
        vec![
            acc(0, DType::F32, 0, &[cols as i64], &[1]),
            acc(1, DType::F32, 0, &[1], &[]),
            acc(2, DType::I32, 0, &[1], &[]),
        ],
        vec![
            p0.reduce(ReduceOp::Sum, sq),
            p1.store(false, vec![(1, rf), (2, ri)]),
        ],
    );
    let mut rng = Rng(12);
    let bufs = [
        random_values(DType::F32, rows * cols, &mut rng, -3.0, 3.0),
        Value::zeros(DType::F32, &[rows]),
        Value::zeros(DType::I32, &[rows]),
    ];
    check(&k, &bufs, &|_, _| EXACT);
}
