//! Compile time and kernel speed. Run with `--nocapture` to see the numbers:
//! `cargo test -p flumen-compiler --release --test codegen_perf -- --nocapture`.
//!
//! The compile-time test builds the ~40 kernels of an MNIST MLP training step (784-128-10,
//! batch 64, Adam) by hand and compiles them as one batch; the speed test times a few
//! representative kernels over 1M elements. Only loose sanity bounds are asserted (the
//! machine is shared).

mod codegen_util;

use codegen_util::*;
use flumen_compiler::codegen::{EmitOptions, IsaOptions, JitKernels, plan};
use flumen_compiler::kernel::Kernel;
use flumen_frontend::op::{BinaryOp, ReduceOp, UnaryOp};
use flumen_frontend::{DType, Value};
use std::time::Instant;

const F: DType = DType::F32;

/// `out = relu(x + bias)` over `[rows, cols]` (bias broadcast over rows).
fn bias_act(rows: usize, cols: usize, act: Option<UnaryOp>) -> Kernel {
    let c = cols as i64;
    let mut pb = PB::new();
    let x = pb.load(0, F);
    let b = pb.load(1, F);
    let mut y = pb.bin(BinaryOp::Add, x, b);
    if let Some(op) = act {
        y = pb.un(op, y);
    }
    kernel(
        "bias_act",
        &[rows, cols],
        &[],
        vec![
            acc(0, F, 0, &[c, 1], &[]),
            acc(1, F, 0, &[0, 1], &[]),
            acc(2, F, 0, &[c, 1], &[]),
        ],
        vec![pb.store(false, vec![(2, y)])],
    )
}

/// Softmax cross-entropy forward and its gradient: max, Σexp, per-row loss, dlogits.
fn softmax_xent(rows: usize, cols: usize) -> Kernel {
    let c = cols as i64;
    let mut p0 = PB::new();
    let x = p0.load(0, F);
    let mut p1 = PB::new();
    let x1 = p1.load(0, F);
    let m1 = p1.result(0, F);
    let d1 = p1.bin(BinaryOp::Sub, x1, m1);
    let e1 = p1.un(UnaryOp::Exp, d1);
    let mut p2 = PB::new();
    let x2 = p2.load(0, F);
    let y2 = p2.load(1, F);
    let m2 = p2.result(0, F);
    let s2 = p2.result(1, F);
    let d2 = p2.bin(BinaryOp::Sub, x2, m2);
    let e2 = p2.un(UnaryOp::Exp, d2);
    let sm = p2.bin(BinaryOp::Div, e2, s2);
    let g = p2.bin(BinaryOp::Sub, sm, y2);
    let n = p2.f(rows as f64, F);
    let g = p2.bin(BinaryOp::Div, g, n);
    let mut p3 = PB::new();
    let x3 = p3.load(0, F);
    let y3 = p3.load(1, F);
    let m3 = p3.result(0, F);
    let s3 = p3.result(1, F);
    let ls = p3.un(UnaryOp::Log, s3);
    let lse = p3.bin(BinaryOp::Add, ls, m3);
    let d3 = p3.bin(BinaryOp::Sub, lse, x3);
    let t = p3.bin(BinaryOp::Mul, d3, y3);
    let mut p4 = PB::new();
    let l = p4.result(3, F);
    kernel(
        "softmax_xent",
        &[rows],
        &[cols],
        vec![
            acc(0, F, 0, &[c], &[1]),
            acc(1, F, 0, &[c], &[1]),
            acc(2, F, 0, &[c], &[1]),
            acc(3, F, 0, &[1], &[]),
        ],
        vec![
            p0.reduce(ReduceOp::Max, x),
            p1.reduce(ReduceOp::Sum, e1),
            p2.store(true, vec![(2, g)]),
            p3.reduce(ReduceOp::Sum, t),
            p4.store(false, vec![(3, l)]),
        ],
    )
}

/// Column sum (bias gradient).
fn col_sum(rows: usize, cols: usize) -> Kernel {
    let mut p0 = PB::new();
    let x = p0.load(0, F);
    let mut p1 = PB::new();
    let r = p1.result(0, F);
    kernel(
        "col_sum",
        &[cols],
        &[rows],
        vec![acc(0, F, 0, &[1], &[cols as i64]), acc(1, F, 0, &[1], &[])],
        vec![p0.reduce(ReduceOp::Sum, x), p1.store(false, vec![(1, r)])],
    )
}

/// Total mean of a vector.
fn mean(n: usize) -> Kernel {
    let mut p0 = PB::new();
    let x = p0.load(0, F);
    let mut p1 = PB::new();
    let r = p1.result(0, F);
    let c = p1.f(n as f64, F);
    let m = p1.bin(BinaryOp::Div, r, c);
    kernel(
        "mean",
        &[],
        &[n],
        vec![acc(0, F, 0, &[], &[1]), acc(1, F, 0, &[], &[])],
        vec![p0.reduce(ReduceOp::Sum, x), p1.store(false, vec![(1, m)])],
    )
}

/// Relu backward: `dx = dy · (h > 0)`.
fn relu_grad(n: usize) -> Kernel {
    let mut pb = PB::new();
    let dy = pb.load(0, F);
    let h = pb.load(1, F);
    let z = pb.f(0.0, F);
    let pos = pb.bin(BinaryOp::Greater, h, z);
    let dx = pb.sel(pos, dy, z);
    kernel(
        "relu_grad",
        &[n],
        &[],
        vec![
            acc(0, F, 0, &[1], &[]),
            acc(1, F, 0, &[1], &[]),
            acc(2, F, 0, &[1], &[]),
        ],
        vec![pb.store(false, vec![(2, dx)])],
    )
}

/// One Adam update of a parameter of `n` elements: m, v and the parameter in place.
fn adam(n: usize) -> Kernel {
    let mut pb = PB::new();
    let g = pb.load(0, F);
    let m = pb.load(1, F);
    let v = pb.load(2, F);
    let p = pb.load(3, F);
    let b1 = pb.f(0.9, F);
    let b1c = pb.f(0.1, F);
    let b2 = pb.f(0.999, F);
    let b2c = pb.f(0.001, F);
    let t1 = pb.bin(BinaryOp::Mul, b1, m);
    let t2 = pb.bin(BinaryOp::Mul, b1c, g);
    let m2 = pb.bin(BinaryOp::Add, t1, t2);
    let gg = pb.un(UnaryOp::Square, g);
    let t3 = pb.bin(BinaryOp::Mul, b2, v);
    let t4 = pb.bin(BinaryOp::Mul, b2c, gg);
    let v2 = pb.bin(BinaryOp::Add, t3, t4);
    let sq = pb.un(UnaryOp::Sqrt, v2);
    let eps = pb.f(1e-8, F);
    let den = pb.bin(BinaryOp::Add, sq, eps);
    let step = pb.bin(BinaryOp::Div, m2, den);
    let lr = pb.f(1e-3, F);
    let upd = pb.bin(BinaryOp::Mul, lr, step);
    let p2 = pb.bin(BinaryOp::Sub, p, upd);
    kernel(
        "adam",
        &[n],
        &[],
        vec![
            acc(0, F, 0, &[1], &[]),
            acc(1, F, 0, &[1], &[]),
            acc(2, F, 0, &[1], &[]),
            acc(3, F, 0, &[1], &[]),
            acc(1, F, 0, &[1], &[]),
            acc(2, F, 0, &[1], &[]),
            acc(3, F, 0, &[1], &[]),
        ],
        vec![pb.store(false, vec![(4, m2), (5, v2), (6, p2)])],
    )
}

/// Transpose (layout op before a matmul).
fn transpose(r: usize, c: usize) -> Kernel {
    let mut pb = PB::new();
    let x = pb.load(0, F);
    kernel(
        "transpose",
        &[c, r],
        &[],
        vec![
            acc(0, F, 0, &[1, c as i64], &[]),
            acc(1, F, 0, &[r as i64, 1], &[]),
        ],
        vec![pb.store(false, vec![(1, x)])],
    )
}

/// Accuracy: argmax-free check `x[label] >= max(x)` as f32, plus a u8 → f32 input cast.
fn cast_normalize(n: usize) -> Kernel {
    let mut pb = PB::new();
    let x = pb.load(0, DType::U8);
    let f = pb.cast(F, x);
    let s = pb.f(1.0 / 255.0, F);
    let y = pb.bin(BinaryOp::Mul, f, s);
    kernel(
        "u8_to_f32",
        &[n],
        &[],
        vec![acc(0, DType::U8, 0, &[1], &[]), acc(1, F, 0, &[1], &[])],
        vec![pb.store(false, vec![(1, y)])],
    )
}

fn mnist_step_kernels() -> Vec<Kernel> {
    let b = 64;
    let params = [784 * 128, 128, 128 * 10, 10];
    let mut ks = vec![
        cast_normalize(b * 784),
        bias_act(b, 128, Some(UnaryOp::Relu)),
        bias_act(b, 10, None),
        softmax_xent(b, 10),
        mean(b),
        col_sum(b, 10),
        transpose(b, 128),
        transpose(128, 10),
        relu_grad(b * 128),
        col_sum(b, 128),
        transpose(784, 128),
        transpose(b, 784),
    ];
    for n in params {
        ks.push(adam(n));
    }
    // An evaluation pass and a second model variant (sigmoid / tanh / gelu layers), as a
    // larger graph would contain.
    for act in [
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Gelu,
        UnaryOp::Softplus,
        UnaryOp::Exp,
        UnaryOp::Log1p,
    ] {
        ks.push(bias_act(b, 128, Some(act)));
        ks.push(relu_grad(b * 128));
    }
    ks.push(softmax_xent(b, 10));
    ks.push(mean(b));
    for n in params {
        ks.push(col_sum(n / 16, 16));
    }
    ks.push(bias_act(b, 10, Some(UnaryOp::Relu)));
    ks.push(transpose(10, b));
    ks
}

#[test]
fn compile_time_mnist_training_step() {
    let ks = mnist_step_kernels();
    println!("{} kernels", ks.len());
    for verify in [false, true] {
        let mut jit = JitKernels::with_options(
            &IsaOptions {
                is_pic: false,
                verify,
            },
            EmitOptions::default(),
        )
        .unwrap();
        let t = Instant::now();
        let fns = jit.compile(&ks).unwrap();
        let total = t.elapsed();
        assert_eq!(fns.len(), ks.len());
        let stats = jit.last_stats();
        if !verify {
            for ((name, d), k) in stats.per_kernel.iter().zip(&ks) {
                println!(
                    "  {name:>14}: {:>6.2} ms  {:?}",
                    d.as_secs_f64() * 1e3,
                    plan(k, &EmitOptions::default()).unwrap()
                );
            }
        }
        println!(
            "verifier {}: {} kernels in {:.1} ms (finalize {:.2} ms)",
            if verify { "on " } else { "off" },
            ks.len(),
            total.as_secs_f64() * 1e3,
            stats.finalize.as_secs_f64() * 1e3
        );
        // Loose bound for a shared machine and unoptimised test builds.
        assert!(total.as_secs_f64() < 5.0);
    }
}

fn time_kernel(jit: &mut JitKernels, k: &Kernel, bufs: &mut [Value], reps: usize) -> f64 {
    let f = jit.compile_one(k).unwrap();
    let n = k.outer_len();
    run(f, k, bufs, 0, n);
    let t = Instant::now();
    for _ in 0..reps {
        run(f, k, bufs, 0, n);
    }
    t.elapsed().as_secs_f64() / reps as f64
}

#[test]
fn kernel_speed() {
    let n = 1 << 20;
    let mut rng = Rng(1);
    let rand = |rng: &mut Rng, n: usize, lo: f64, hi: f64| {
        Value::from_vec(
            &[n],
            (0..n)
                .map(|_| rng.uniform(lo, hi) as f32)
                .collect::<Vec<_>>(),
        )
        .unwrap()
    };
    let x = rand(&mut rng, n, -5.0, 5.0);
    let y = rand(&mut rng, n, -5.0, 5.0);
    let reps = 20;
    for vectorize in [true, false] {
        let mut jit = JitKernels::with_options(
            &IsaOptions::default(),
            EmitOptions {
                vectorize,
                ..EmitOptions::default()
            },
        )
        .unwrap();
        let label = if vectorize { "vector" } else { "scalar" };
        // Elementwise add: 12 bytes per element.
        let mut pb = PB::new();
        let a = pb.load(0, F);
        let b = pb.load(1, F);
        let s = pb.bin(BinaryOp::Add, a, b);
        let k = kernel(
            "add",
            &[n],
            &[],
            vec![
                acc(0, F, 0, &[1], &[]),
                acc(1, F, 0, &[1], &[]),
                acc(2, F, 0, &[1], &[]),
            ],
            vec![pb.store(false, vec![(2, s)])],
        );
        let mut bufs = vec![x.clone(), y.clone(), Value::zeros(F, &[n])];
        let t = time_kernel(&mut jit, &k, &mut bufs, reps);
        println!(
            "{label}: f32 add 1M: {:.3} ms, {:.1} GB/s",
            t * 1e3,
            12.0 * n as f64 / t / 1e9
        );
        for op in [UnaryOp::Exp, UnaryOp::Tanh, UnaryOp::Gelu, UnaryOp::Sin] {
            let mut pb = PB::new();
            let a = pb.load(0, F);
            let e = pb.un(op, a);
            let k = kernel(
                op.name(),
                &[n],
                &[],
                vec![acc(0, F, 0, &[1], &[]), acc(1, F, 0, &[1], &[])],
                vec![pb.store(false, vec![(1, e)])],
            );
            let mut bufs = vec![x.clone(), Value::zeros(F, &[n])];
            let t = time_kernel(&mut jit, &k, &mut bufs, reps);
            println!(
                "{label}: f32 {} 1M: {:.3} ms, {:.0} M elem/s",
                op.name(),
                t * 1e3,
                n as f64 / t / 1e6
            );
        }
        // Row sums (inner-vectorised, 4 accumulators) and softmax over rows of 1024.
        let rows = n / 1024;
        let k = mean_rows(rows, 1024);
        let mut bufs = vec![x.clone(), Value::zeros(F, &[rows])];
        let t = time_kernel(&mut jit, &k, &mut bufs, reps);
        println!(
            "{label}: f32 row sums 1024×1024: {:.3} ms, {:.1} GB/s",
            t * 1e3,
            4.0 * n as f64 / t / 1e9
        );
        let k = col_sum(1024, rows);
        let t = time_kernel(&mut jit, &k, &mut bufs, reps);
        println!(
            "{label}: f32 column sums 1024×1024: {:.3} ms, {:.1} GB/s",
            t * 1e3,
            4.0 * n as f64 / t / 1e9
        );
        let k = softmax_rows(rows, 1024);
        let mut bufs = vec![x.clone(), Value::zeros(F, &[n])];
        let t = time_kernel(&mut jit, &k, &mut bufs, reps);
        println!(
            "{label}: f32 softmax 1024×1024: {:.3} ms, {:.0} M elem/s",
            t * 1e3,
            n as f64 / t / 1e6
        );
    }
}

fn mean_rows(rows: usize, cols: usize) -> Kernel {
    let mut p0 = PB::new();
    let x = p0.load(0, F);
    let mut p1 = PB::new();
    let r = p1.result(0, F);
    kernel(
        "row_sum",
        &[rows],
        &[cols],
        vec![acc(0, F, 0, &[cols as i64], &[1]), acc(1, F, 0, &[1], &[])],
        vec![p0.reduce(ReduceOp::Sum, x), p1.store(false, vec![(1, r)])],
    )
}

fn softmax_rows(rows: usize, cols: usize) -> Kernel {
    let c = cols as i64;
    let mut p0 = PB::new();
    let x0 = p0.load(0, F);
    let mut p1 = PB::new();
    let x1 = p1.load(0, F);
    let m1 = p1.result(0, F);
    let s1 = p1.bin(BinaryOp::Sub, x1, m1);
    let e1 = p1.un(UnaryOp::Exp, s1);
    let mut p2 = PB::new();
    let x2 = p2.load(0, F);
    let m2 = p2.result(0, F);
    let sum = p2.result(1, F);
    let s2 = p2.bin(BinaryOp::Sub, x2, m2);
    let e2 = p2.un(UnaryOp::Exp, s2);
    let y = p2.bin(BinaryOp::Div, e2, sum);
    kernel(
        "softmax",
        &[rows],
        &[cols],
        vec![acc(0, F, 0, &[c], &[1]), acc(1, F, 0, &[c], &[1])],
        vec![
            p0.reduce(ReduceOp::Max, x0),
            p1.reduce(ReduceOp::Sum, e1),
            p2.store(true, vec![(1, y)]),
        ],
    )
}
