//! Random ops: `random_*` (a [`Distribution`] sampled per element) and `categorical`.
//!
//! The numbers are defined by the frontend's Philox stream
//! ([`flumen_frontend::op::random`]): element `i` (row-major) of execution `counter` of an op
//! with `seed` is `dist.sample(seed, counter, i)`, so every backend reproduces them.

use super::{from_vec, with_dtype};
use flumen_frontend::op::Distribution;
use flumen_frontend::op::random::sample_categorical;
use flumen_frontend::{DType, Element, Value};
use ndarray::Axis;

/// A tensor of `shape` and `dtype` whose element `i` is `dist.sample(seed, counter, i)`
/// converted to the dtype (integers are sampled as exact integers).
pub(in crate::interpreter) fn random(
    dist: &Distribution,
    dtype: DType,
    shape: &[usize],
    seed: u64,
    counter: u64,
) -> Result<Value, String> {
    let numel: usize = shape.iter().product();
    with_dtype!(dtype, T => {
        let mut data: Vec<T> = vec![T::default(); numel];
        random_into(dist, seed, counter, &mut data)?;
        from_vec(shape, data).map(Value::from)
    })
}

/// Fill `out` (row-major) with the samples of execution `counter` of a random op: element
/// `i` is `dist.sample(seed, counter, i)` converted to the dtype (integers are sampled as
/// exact integers). Errors when the distribution cannot produce the dtype.
pub(crate) fn random_into<T: Element + Send>(
    dist: &Distribution,
    seed: u64,
    counter: u64,
    out: &mut [T],
) -> Result<(), String> {
    let dtype = T::DTYPE;
    if !dist.accepts(dtype) {
        return Err(format!("{} cannot produce {dtype}", dist.name()));
    }
    if let Distribution::UniformInt { low, high } = *dist {
        // The sampler computes `high - low` in i64.
        if high.checked_sub(low).is_none_or(|range| range <= 0) {
            return Err(format!(
                "random_int needs low < high with high - low representable in i64, got [{low}, {high})"
            ));
        }
    }
    let fill = |first: u64, chunk: &mut [T]| {
        for (i, o) in (first..).zip(chunk.iter_mut()) {
            *o = if dtype.is_int() {
                T::from_i64(dist.sample_i64(seed, counter, i))
            } else {
                T::from_f64(dist.sample(seed, counter, i))
            };
        }
    };
    // Every element is a function of its index alone (counter-based Philox), so chunks can
    // be drawn on several threads with the same values: a large initialiser (MNIST's W1 is
    // 235,200 normal draws) was most of a first call.
    if out.len() >= PARALLEL_DRAWS && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        out.par_chunks_mut(DRAW_CHUNK)
            .enumerate()
            .for_each(|(c, chunk)| fill((c * DRAW_CHUNK) as u64, chunk));
    } else {
        fill(0, out);
    }
    Ok(())
}

/// Random ops with at least this many elements draw on the rayon pool.
const PARALLEL_DRAWS: usize = 1 << 15;
/// Elements per parallel task.
const DRAW_CHUNK: usize = 1 << 13;

/// `num_samples` category indices per row of `logits` `[batch, classes]`: sample `(b, s)`
/// is `sample_categorical(row b, seed, counter, b·num_samples + s)`, as `dtype` (i32/i64).
pub(in crate::interpreter) fn categorical(
    logits: &Value,
    num_samples: usize,
    dtype: DType,
    seed: u64,
    counter: u64,
) -> Result<Value, String> {
    if !matches!(dtype, DType::I32 | DType::I64) {
        return Err(format!("categorical outputs i32 or i64, not {dtype}"));
    }
    let (logits, classes) = match (logits, logits.shape()) {
        (Value::F32(_) | Value::F64(_), &[_, classes]) if classes > 0 => {
            (logits.cast(DType::F64), classes)
        }
        _ => {
            return Err(format!(
                "categorical needs float logits [batch, classes > 0], got {}{:?}",
                logits.dtype(),
                logits.shape()
            ));
        }
    };
    let Value::F64(logits) = logits else {
        return Err("internal error: logits did not widen to f64".into());
    };
    let batch = logits.len() / classes;
    with_dtype!(dtype, I => {
        let mut data: Vec<I> = Vec::with_capacity(batch * num_samples);
        for (b, row) in logits.axis_iter(Axis(0)).enumerate() {
            let row: Vec<f64> = row.iter().copied().collect();
            for s in 0..num_samples {
                let index = (b * num_samples + s) as u64;
                let class = sample_categorical(&row, seed, counter, index);
                data.push(I::from_i64(class as i64));
            }
        }
        from_vec(&[batch, num_samples], data).map(Value::from)
    })
}
