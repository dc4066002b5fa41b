//! Large random ops draw on several threads (`PARALLEL_DRAWS` elements and up); every
//! element must still be `dist.sample(seed, counter, i)` of its own row-major index, the
//! definition every backend shares, whatever the pool size.

use flumen_frontend::op::{Distribution, Op, TensorType};
use flumen_frontend::{DType, Value};
use flumen_runtime::interpreter::{EvalContext, eval_op};

fn draw(dist: Distribution, dtype: DType, n: usize, threads: usize) -> Value {
    let op = Op::Random {
        dist,
        dtype,
        shape: vec![n],
        seed: 1234,
    };
    let ty = TensorType::new(dtype, vec![n]);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| eval_op(&op, &[], &ty, EvalContext { counter: 7 }).unwrap())
}

#[test]
fn parallel_draws_are_the_per_index_samples() {
    // Odd sizes around the chunking: below the threshold, just above it, not a multiple of
    // the chunk.
    for n in [1000, (1 << 15) + 3, 235_200] {
        for dist in [
            Distribution::Normal {
                mean: 0.0,
                stddev: 0.03,
            },
            Distribution::Uniform {
                low: -1.0,
                high: 2.0,
            },
        ] {
            let one = draw(dist, DType::F32, n, 1);
            let two = draw(dist, DType::F32, n, 2);
            let three = draw(dist, DType::F64, n, 3);
            let (one, two, three) = (
                one.as_f32().unwrap(),
                two.as_f32().unwrap(),
                three.as_f64().unwrap(),
            );
            for i in 0..n {
                let want = dist.sample(1234, 7, i as u64);
                assert_eq!(one[i].to_bits(), (want as f32).to_bits(), "n={n} i={i}");
                assert_eq!(two[i].to_bits(), (want as f32).to_bits(), "n={n} i={i}");
                assert_eq!(three[i].to_bits(), want.to_bits(), "n={n} i={i}");
            }
        }
        let ints = draw(
            Distribution::UniformInt { low: -5, high: 9 },
            DType::I64,
            n,
            2,
        );
        let ints = ints.as_i64().unwrap();
        let d = Distribution::UniformInt { low: -5, high: 9 };
        for i in 0..n {
            assert_eq!(ints[i], d.sample_i64(1234, 7, i as u64), "n={n} i={i}");
        }
    }
}
