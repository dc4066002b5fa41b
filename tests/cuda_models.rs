//! The models on a GPU (CUDA device 0), each against the CPU: the MNIST tutorial network
//! trains (200 Adam steps; the loss falls below 30% of its start and the test accuracy
//! passes 0.85, as on the CPU, and the first step's loss equals the CPU's within 1e-4
//! relative); BigBird and dense attention match the interpreter (f32 1e-5 + 1e-4·|want|,
//! f64 1e-12 + 1e-10·|want|); `expm` (a host step between CUDA graphs) matches bit for bit;
//! variables stay on the device across runs and come back on `sync_variables`; replayed
//! CUDA graphs give the same values as the first (captured) run; a gather index out of
//! range is a run-time error naming the op.
//!
//! Every test skips (passing, with a message) when no CUDA device is usable — always the
//! case without `--features cuda`.

mod cuda_common;
#[allow(dead_code)]
#[path = "../examples/mnist.rs"]
mod mnist_example;

use cuda_common::{compare, gpu, tolerance};
use flumen::data::mnist;
use flumen::nn::attention::{AttentionMask, attention};
use flumen::{Backend, DType, Device, Graph, Session, Tensor, Value};
use mnist_example::{BATCH, DEFAULT_SEED, Model, SplitMix64, sampler_seed};

#[test]
fn mnist_trains_on_the_gpu() {
    if !gpu("mnist_trains_on_the_gpu") {
        return;
    }
    let data = mnist::load_embedded_5k().unwrap();
    let model = Model::new(BATCH, data.test.len(), DEFAULT_SEED).unwrap();
    let mut cpu = Session::new(&model.graph);
    let mut gpu_sess = Session::with_device(&model.graph, Device::Cuda(0)).unwrap();
    let mut rng = SplitMix64::new(sampler_seed(DEFAULT_SEED));
    let mut losses = Vec::new();
    for step in 0..200 {
        let indices = rng.indices(data.train.len(), BATCH);
        let l = model.step(&mut gpu_sess, &data.train, &indices).unwrap();
        if step == 0 {
            let c = model.step(&mut cpu, &data.train, &indices).unwrap();
            assert!(
                (l - c).abs() <= 1e-4 * c.abs(),
                "first loss: GPU {l}, CPU {c}"
            );
        }
        losses.push(l);
    }
    let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
    let (first, last) = (mean(&losses[..20]), mean(&losses[180..]));
    assert!(last < 0.3 * first, "loss {first} -> {last}");
    let accuracy = model.accuracy(&mut gpu_sess, &data.test).unwrap();
    assert!(accuracy > 0.85, "test accuracy {accuracy}");
    // The trained weights come back to the host.
    gpu_sess.sync_variables().unwrap();
    assert_eq!(gpu_sess.variables().len(), cpu.variables().len());
}

fn random(dtype: DType, shape: &[usize], seed: u64) -> Value {
    let n: usize = shape.iter().product();
    let mut s = seed;
    let data: Vec<f64> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    Value::from_vec(shape, data).unwrap().cast(dtype)
}

fn against_interpreter(g: &Graph, fetches: &[&Tensor]) {
    let want = Session::with_backend(g, Backend::Interpreter)
        .run(&[], fetches)
        .unwrap();
    let got = Session::with_device(g, Device::Cuda(0))
        .unwrap()
        .run(&[], fetches)
        .unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let (atol, rtol) = tolerance(w.dtype());
        compare(&format!("fetch {i}"), g, w, atol, rtol).unwrap();
    }
}

#[test]
fn attention_on_the_gpu_matches_the_interpreter() {
    if !gpu("attention_on_the_gpu_matches_the_interpreter") {
        return;
    }
    for dtype in [DType::F32, DType::F64] {
        let shape = [2, 2, 64, 16];
        let g = Graph::new();
        let q = g.constant(random(dtype, &shape, 1)).unwrap();
        let k = g.constant(random(dtype, &shape, 2)).unwrap();
        let v = g.constant(random(dtype, &shape, 3)).unwrap();
        let bigbird = AttentionMask::BigBird {
            block: 8,
            window_blocks: 3,
            global_blocks: 2,
            random_blocks: 2,
            seed: 42,
        };
        let a = attention(&q, &k, &v, &bigbird).unwrap();
        let d = attention(&q, &k, &v, &AttentionMask::Dense).unwrap();
        against_interpreter(&g, &[&a, &d]);
    }
}

#[test]
fn expm_runs_as_a_host_step_between_gpu_graphs() {
    if !gpu("expm_runs_as_a_host_step_between_gpu_graphs") {
        return;
    }
    let g = Graph::new();
    let a = g.constant(random(DType::F64, &[6, 6], 7)).unwrap();
    let e = (&a * 0.5).unwrap().expm().unwrap();
    let y = (&e + 1.0).unwrap();
    let want = Session::with_backend(&g, Backend::Interpreter)
        .run(&[], &[&y])
        .unwrap();
    let mut sess = Session::with_device(&g, Device::Cuda(0)).unwrap();
    for _ in 0..3 {
        let got = sess.run(&[], &[&y]).unwrap();
        assert!(got[0].bit_eq(&want[0]), "{:?}\n{:?}", got[0], want[0]);
    }
}

#[test]
fn variables_stay_on_the_device_and_graphs_replay() {
    if !gpu("variables_stay_on_the_device_and_graphs_replay") {
        return;
    }
    let g = Graph::new();
    let v = g.variable("v", ndarray::arr1(&[1.0f32, 2.0, 3.0])).unwrap();
    let x = g.placeholder("x", DType::F32, &[3]).unwrap();
    let step = v.assign((&v + &x).unwrap()).unwrap();
    let mut sess = Session::with_device(&g, Device::Cuda(0)).unwrap();
    let one = Value::from(ndarray::arr1(&[1.0f32, 1.0, 1.0]));
    for i in 1..=5 {
        let out = sess.run(&[(&x, one.clone())], &[&step]).unwrap();
        let want: Vec<f64> = [1.0, 2.0, 3.0].iter().map(|b| b + i as f64).collect();
        assert_eq!(out[0].to_f64_vec(), want, "run {i} (graph replay)");
    }
    // The host copy is as of the start until synchronised.
    sess.sync_variables().unwrap();
    assert_eq!(sess.variables()["v"].to_f64_vec(), vec![6.0, 7.0, 8.0]);
    // A host change is uploaded before the next run.
    sess.set_variable(&v, Value::from(ndarray::arr1(&[0.0f32, 0.0, 0.0])))
        .unwrap();
    let out = sess.run(&[(&x, one)], &[&step]).unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![1.0, 1.0, 1.0]);
}

#[test]
fn gather_out_of_range_is_an_error() {
    if !gpu("gather_out_of_range_is_an_error") {
        return;
    }
    let g = Graph::new();
    let p = g.placeholder("p", DType::F32, &[4, 2]).unwrap();
    let i = g.placeholder("i", DType::I32, &[3]).unwrap();
    let y = p.gather(&i, 0, 0).unwrap();
    let mut sess = Session::with_device(&g, Device::Cuda(0)).unwrap();
    let pv = random(DType::F32, &[4, 2], 3);
    let ok = sess
        .run(
            &[
                (&p, pv.clone()),
                (&i, Value::from(ndarray::arr1(&[3i32, 0, 1]))),
            ],
            &[&y],
        )
        .unwrap();
    let want = Session::with_backend(&g, Backend::Interpreter)
        .run(
            &[
                (&p, pv.clone()),
                (&i, Value::from(ndarray::arr1(&[3i32, 0, 1]))),
            ],
            &[&y],
        )
        .unwrap();
    assert!(ok[0].bit_eq(&want[0]));
    let err = sess
        .run(
            &[(&p, pv), (&i, Value::from(ndarray::arr1(&[0i32, 4, 1])))],
            &[&y],
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gather") && err.contains("out of range"),
        "{err}"
    );
}
