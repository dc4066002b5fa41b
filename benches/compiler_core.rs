//! Compiler-core benchmarks on the tutorial's MNIST network (784-300-10, `examples/mnist.rs`)
//! and a 1024² GEMM:
//!
//! - `mnist_train_step/{compiled,interpreter}`: one Adam step on a batch of 100 (fetching the
//!   loss to the host every step, as the tutorial's loop does);
//! - `mnist_inference/{1,1000}`: logits of 1 and 1,000 test images (host in, host out; the
//!   batch is fed by reference through `Session::run_views`, so it is not copied per run);
//! - `first_call/train_step`: build the training graph, open a fresh session, run one step
//!   (compile + variable initialisation + the step); the compile report's pass, lowering
//!   and code-generation times are printed as a `FLUMEN_JSON` line;
//! - `gemm_1024/matmul_into/{1,2}`: `c = a·b`, f32, 1024³, in a rayon pool of 1 and 2 threads;
//! - `gemv_784x300/{gemm,avx512,portable}/{1,2}`: the batch-1 layer-1 product alone
//!   (1×784 · 784×300, f32) on each matrix-product kernel, in pools of 1 and 2 threads (with
//!   2, the small-m kernels split the columns over both).
//!
//! Everything but the single-thread GEMM runs in a rayon pool of `FLUMEN_BENCH_THREADS`
//! threads (default 2). `benches/peers/run_all.py` runs this and the Python peers together.
//!
//! Run: `cargo bench --bench compiler_core` (`cargo test --benches` runs each benchmark
//! once as a smoke test).

mod common;

use common::{BATCH, TrainGraph};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flumen::runtime::exec::{GemvImpl, MatMulDims, MatMulKernel, matmul_into, matmul_into_with};
use flumen::{Backend, DType, FeedView, Session, Value};
use std::time::{Duration, Instant};

/// One training step on `batch` (`[loss, train]` fetched); returns the loss.
fn step(sess: &mut Session, m: &TrainGraph, batch: &(Value, Value)) -> f32 {
    let out = sess
        .run(
            &[(&m.x, batch.0.clone()), (&m.y, batch.1.clone())],
            &[&m.loss, &m.train],
        )
        .expect("a training step runs");
    out[0].as_f32().expect("an f32 loss")[[]]
}

fn train_step(c: &mut Criterion) {
    let pool = common::pool(common::threads());
    let data = common::data();
    let batches = common::train_batches(&data, BATCH);
    let mut group = c.benchmark_group("mnist_train_step");
    for (name, backend) in [
        ("compiled", Backend::Compiled),
        ("interpreter", Backend::Interpreter),
    ] {
        if backend == Backend::Interpreter {
            group.sample_size(10);
            group.warm_up_time(Duration::from_secs(1));
        }
        let m = common::train_graph(BATCH).expect("the training graph builds");
        let mut sess = Session::with_backend(&m.graph, backend);
        // The loss of the first step: the peers print theirs, on the same weights and batch.
        let first_loss = pool.install(|| step(&mut sess, &m, &batches[0]));
        println!(
            "FLUMEN_JSON {{\"bench\": \"first_step_loss\", \"backend\": \"{name}\", \
             \"loss\": {first_loss}}}"
        );
        let mut i = 0;
        group.bench_function(name, |b| {
            pool.install(|| {
                b.iter(|| {
                    i += 1;
                    step(&mut sess, &m, &batches[i % batches.len()])
                })
            })
        });
    }
    group.finish();
}

fn inference(c: &mut Criterion) {
    let pool = common::pool(common::threads());
    let data = common::data();
    let mut group = c.benchmark_group("mnist_inference");
    for batch in [1, 1000] {
        let (graph, x, logits) = common::inference_graph(batch).expect("the graph builds");
        let mut sess = Session::new(&graph);
        let images = common::test_images(&data, batch);
        // Borrowed feed: the batch is read in place, not cloned per run.
        let mut run = || {
            sess.run_views(&[(&x, FeedView::from(&images))], &[&logits])
                .unwrap()
        };
        pool.install(&mut run); // compile and initialise outside the measurement
        group.bench_function(BenchmarkId::from_parameter(batch), |b| {
            pool.install(|| b.iter(&mut run))
        });
    }
    group.finish();
}

/// The median of `xs` (sorted in place).
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn first_call(c: &mut Criterion) {
    let pool = common::pool(common::threads());
    let data = common::data();
    let batches = common::train_batches(&data, BATCH);
    let mut group = c.benchmark_group("first_call");
    group.sample_size(10);
    // Per fresh session: (build, first run, passes, lowering, codegen) in ms.
    let mut parts: Vec<[f64; 5]> = Vec::new();
    group.bench_function("train_step", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let m = common::train_graph(BATCH).expect("the training graph builds");
                let built = t.elapsed();
                let mut sess = Session::new(&m.graph);
                pool.install(|| step(&mut sess, &m, &batches[0]));
                let elapsed = t.elapsed();
                total += elapsed;
                let r = sess
                    .compile_report(&[&m.x, &m.y], &[&m.loss, &m.train])
                    .expect("compiled")
                    .expect("the compiled backend reports");
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                parts.push([
                    ms(built),
                    ms(elapsed - built),
                    ms(r.passes),
                    ms(r.lowering),
                    ms(r.codegen),
                ]);
            }
            total
        })
    });
    group.finish();
    if parts.is_empty() {
        return; // filtered out
    }
    let keys = [
        "build_ms",
        "first_run_ms",
        "passes_ms",
        "lowering_ms",
        "codegen_ms",
    ];
    let fields: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut xs: Vec<f64> = parts.iter().map(|p| p[i]).collect();
            format!("\"{k}\": {:.3}", median(&mut xs))
        })
        .collect();
    println!(
        "FLUMEN_JSON {{\"bench\": \"compile_report\", \"samples\": {}, {}}}",
        parts.len(),
        fields.join(", ")
    );
}

fn gemm(c: &mut Criterion) {
    const N: usize = 1024;
    let a: Vec<f32> = (0..N * N).map(|i| (i % 17) as f32 * 0.25 - 2.0).collect();
    let b: Vec<f32> = (0..N * N).map(|i| (i % 13) as f32 * 0.5 - 3.0).collect();
    let mut out = vec![0.0f32; N * N];
    let dims = MatMulDims {
        batch: 1,
        m: N,
        n: N,
        k: N,
        transpose_a: false,
        transpose_b: false,
        a_batch_stride: 0,
        b_batch_stride: 0,
    };
    let mut group = c.benchmark_group("gemm_1024");
    group.throughput(Throughput::Elements((2 * N * N * N) as u64));
    for threads in [1, 2] {
        let pool = common::pool(threads);
        group.bench_function(BenchmarkId::new("matmul_into", threads), |bch| {
            pool.install(|| {
                bch.iter(|| {
                    // SAFETY: three distinct N×N f32 buffers, as `dims` says; no epilogue.
                    unsafe {
                        matmul_into(
                            DType::F32,
                            a.as_ptr() as *const u8,
                            b.as_ptr() as *const u8,
                            out.as_mut_ptr() as *mut u8,
                            &dims,
                            None,
                        )
                    }
                })
            })
        });
    }
    group.finish();
    // Once more, so the check holds when a filter skipped the group.
    // SAFETY: as above.
    unsafe {
        matmul_into(
            DType::F32,
            a.as_ptr() as *const u8,
            b.as_ptr() as *const u8,
            out.as_mut_ptr() as *mut u8,
            &dims,
            None,
        )
    };
    let expected: f32 = (0..N).map(|k| a[k] * b[k * N]).sum();
    assert!((out[0] - expected).abs() <= 1e-3 * expected.abs().max(1.0));
}

fn gemv(c: &mut Criterion) {
    let (k, n) = (784, 300);
    let a: Vec<f32> = (0..k).map(|i| (i % 17) as f32 * 0.25 - 2.0).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 * 0.5 - 3.0).collect();
    let dims = MatMulDims {
        batch: 1,
        m: 1,
        n,
        k,
        transpose_a: false,
        transpose_b: false,
        a_batch_stride: 0,
        b_batch_stride: 0,
    };
    let mut kernels = vec![
        ("gemm", MatMulKernel::Gemm),
        ("portable", MatMulKernel::SmallM(GemvImpl::Portable)),
    ];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        kernels.insert(1, ("avx512", MatMulKernel::SmallM(GemvImpl::Avx512)));
    }
    let mut group = c.benchmark_group("gemv_784x300");
    for threads in [1, 2] {
        let pool = common::pool(threads);
        for &(name, kernel) in &kernels {
            let mut out = vec![0.0f32; n];
            let mut run = || {
                // SAFETY: a is 1×k, b is k×n, out is 1×n, as `dims` says.
                unsafe {
                    matmul_into_with(
                        kernel,
                        DType::F32,
                        a.as_ptr() as *const u8,
                        b.as_ptr() as *const u8,
                        out.as_mut_ptr() as *mut u8,
                        &dims,
                        None,
                    )
                }
            };
            assert_eq!(pool.install(&mut run), kernel);
            group.bench_function(BenchmarkId::new(name, threads), |bch| {
                pool.install(|| bch.iter(&mut run))
            });
            let expected: f32 = (0..k).map(|p| a[p] * b[p * n + 7]).sum();
            assert!((out[7] - expected).abs() <= 1e-3 * expected.abs().max(1.0));
        }
    }
    group.finish();
}

criterion_group!(benches, train_step, inference, first_call, gemm, gemv);
criterion_main!(benches);
