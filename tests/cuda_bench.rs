//! GPU benchmarks (ignored by default; `scripts/gpu_check.sh` runs them on the device):
//! - MNIST train step (the tutorial network, Adam) at batch 100 and 4096;
//! - BigBird attention, blockified (B=1, H=2, d=64, block 64, 3 random blocks, the
//!   workload of `benches/peers/bigbird_jax.py`), n = 16384 and 65536, f32;
//! - GEMM 8192² f32 (`FLUMEN_CUDA_TF32=1`: TF32 tensor cores). bf16 has no Flumen dtype,
//!   so only the peers run it.
//!
//! Each prints one line `bench <name> median_ms=<m> min_ms=<m> [tflops=<t>]`: wall time
//! per `Session::run` (feeds in, CUDA-graph replay, fetches out) after warm-up.
//! `FLUMEN_CUDA_PROFILE=1` adds each executable's per-phase breakdown on stderr.
//!
//! `cargo test --release --features cuda --test cuda_bench -- --ignored --nocapture`

mod cuda_common;
#[allow(dead_code)]
#[path = "../examples/mnist.rs"]
mod mnist_example;

use flumen::nn::attention::{BigBirdLayout, bigbird_blockified};
use flumen::{Device, Graph, Session, Value, s};
use mnist_example::{Model, SplitMix64};
use std::time::Instant;

/// Median and minimum milliseconds of `reps` calls of `f` after `warm` calls.
fn time(warm: usize, reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..warm {
        f();
    }
    let mut ms: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[0])
}

fn noise(shape: &[usize], seed: u64) -> Value {
    let n: usize = shape.iter().product();
    let mut s = seed;
    let data: Vec<f32> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Value::from_vec(shape, data).unwrap()
}

#[test]
#[ignore = "GPU benchmark: scripts/gpu_check.sh"]
fn bench_mnist_train_step() {
    if !cuda_common::gpu("bench_mnist_train_step") {
        return;
    }
    let data = flumen::data::mnist::load_embedded_5k().unwrap();
    for batch in [100, 4096] {
        let model = Model::new(batch, data.test.len(), 0).unwrap();
        let mut sess = Session::with_device(&model.graph, Device::Cuda(0)).unwrap();
        let mut rng = SplitMix64::new(1);
        // Eight host batches assembled beforehand, fed in turn (the peers do the same);
        // each run copies its batch to the device and the loss back.
        let batches: Vec<(Value, Value)> = (0..8)
            .map(|_| {
                let (x, y) = data.train.batch(&rng.indices(data.train.len(), batch));
                (x.into(), y.into())
            })
            .collect();
        let mut i = 0;
        let (med, min) = time(10, 100, || {
            let (x, y) = &batches[i % 8];
            let out = sess
                .run(
                    &[(&model.x, x.clone()), (&model.y, y.clone())],
                    &[&model.loss, &model.train],
                )
                .unwrap();
            assert!(out[0].as_f32().unwrap().iter().all(|l| l.is_finite()));
            i += 1;
        });
        println!("bench mnist_train_step_b{batch} median_ms={med:.4} min_ms={min:.4}");
    }
}

#[test]
#[ignore = "GPU benchmark: scripts/gpu_check.sh"]
fn bench_bigbird_attention() {
    if !cuda_common::gpu("bench_bigbird_attention") {
        return;
    }
    for n in [16384, 65536] {
        let shape = [1, 2, n, 64];
        // q, k and v live on the device (variables) and only a corner of the output comes
        // back (the whole output is still computed), as the JAX peer keeps its arrays on
        // the device: this times the layer, not the bus (3 × 32 MiB in and 32 MiB out at
        // n = 65536). Not a sum: a reduction to one value runs on one block (docs/cuda.md).
        let g = Graph::new();
        let q = g.variable("q", noise(&shape, 1)).unwrap();
        let k = g.variable("k", noise(&shape, 2)).unwrap();
        let v = g.variable("v", noise(&shape, 3)).unwrap();
        let layout = BigBirdLayout::generate(2, n, 64, 3, 2, 3, 42).unwrap();
        let out = bigbird_blockified(&q, &k, &v, &layout, None, 1.0 / 8.0).unwrap();
        let total = out.slice(s![0..1, 0..1, 0..1, 0..8]).unwrap();
        let mut sess = Session::with_device(&g, Device::Cuda(0)).unwrap();
        let (med, min) = time(3, 20, || {
            let s = sess.run(&[], &[&total]).unwrap();
            assert!(s[0].as_f32().unwrap().iter().all(|x| x.is_finite()));
        });
        println!("bench bigbird_n{n} median_ms={med:.4} min_ms={min:.4}");
    }
}

#[test]
#[ignore = "GPU benchmark: scripts/gpu_check.sh"]
fn bench_gemm_8192() {
    if !cuda_common::gpu("bench_gemm_8192") {
        return;
    }
    let n = 8192;
    let g = Graph::new();
    let a = g.variable("a", noise(&[n, n], 1)).unwrap();
    let b = g.variable("b", noise(&[n, n], 2)).unwrap();
    let c = a.matmul(&b).unwrap();
    // Fetch a corner so the 256 MiB product does not cross the bus.
    let corner = c.slice(s![0..1, 0..8]).unwrap();
    let mut sess = Session::with_device(&g, Device::Cuda(0)).unwrap();
    let (med, min) = time(3, 20, || {
        sess.run(&[], &[&corner]).unwrap();
    });
    let mode = if std::env::var("FLUMEN_CUDA_TF32").is_ok_and(|v| v == "1") {
        "tf32"
    } else {
        "f32"
    };
    let tflops = 2.0 * (n as f64).powi(3) / (min * 1e-3) / 1e12;
    println!("bench gemm8192_{mode} median_ms={med:.4} min_ms={min:.4} tflops={tflops:.1}");
}
