//! Weighted Greenwald–Khanna quantile summaries (sparklyr 1.6's `WeightedQuantileSummaries`,
//! behind `sdf_weighted_quantile`) — MODELS.md §9.
//!
//! A summary is a sorted list of samples `(x, s, l, r)`: `s` is the weight at `x`, `l`/`r`
//! the weight whose rank relative to `x` is uncertain on the left/right. For sample `i`,
//! `rmin_i = Σ_{j<i}(l_j + s_j) + l_i` and `rmax_i = W − Σ_{j>i} s_j − Σ_{j≥i} r_j` bound the
//! weight below and up to `x_i`. Points are buffered and merged in 50,000 at a time; a summary
//! with 10,000 or more samples is compressed with threshold `εW` (a literal port of
//! sparklyr's `compressImmut`, whose bookkeeping defines the exact sample counts).
//!
//! Two queries:
//! - [`WeightedSummary::query_sparklyr`]: the first `x_i` (of all but the last sample) with
//!   `rmin_i ≥ (q − ε)W` and `rmax_i ≤ (q + ε)W`, as MODELS.md §9 states sparklyr's query
//!   (it reproduces the post's −0.696 and 0.662). It cannot select an atom heavier than
//!   `2εW` and then falls back to the last sample.
//! - [`WeightedSummary::query`]: the first `x_i` with `rmin_i + s_i ≥ (q − ε)W` and
//!   `rmax_i − s_i ≤ (q + ε)W` — bounds on `W(≤ x_i)` and `W(< x_i)` — which is sound with
//!   atoms: its answer `x` satisfies `W(< x) ≤ (q + ε)W` and `W(≤ x) ≥ (q − ε)W`.
//!
//! Unlike sparklyr, a value equal to an existing sample's adds to that sample's weight
//! (sparklyr's `dropRight(1)` there is a no-op, so it keeps both and counts the old weight
//! twice), and equal values within one buffer become one sample.
//!
//! **Graphs.** A summary is a host-side type fed from graph outputs
//! ([`WeightedSummary::insert_values`] takes the `Value`s a `Session` returns), not an op:
//! its size depends on the data (a static-shape tensor cannot hold it), it is updated
//! incrementally across many runs (a stream of batches), and its merge/compress are
//! sequential scans with no tensor parallelism to exploit. Feeding it fetched tensors keeps
//! graphs pure and lets one summary span runs, partitions and sessions ([`merge`]).
//!
//! [`merge`]: WeightedSummary::merge

use crate::{GraphError, Result, Value};

/// Points buffered before they are merged into the samples (sparklyr's
/// `defaultBufferSize`).
pub const BUFFER_SIZE: usize = 50_000;

/// Sample count at which a merge of the buffer also compresses (sparklyr's
/// `defaultCompressThreshold`).
pub const COMPRESS_THRESHOLD: usize = 10_000;

/// One sample of a summary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// The value.
    pub x: f64,
    /// Weight at `x`.
    pub s: f64,
    /// Weight of uncertain rank on the left.
    pub l: f64,
    /// Weight of uncertain rank on the right.
    pub r: f64,
}

/// A weighted Greenwald–Khanna summary with relative error `ε`.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightedSummary {
    epsilon: f64,
    samples: Vec<Sample>,
    total_weight: f64,
    buffer: Vec<(f64, f64)>,
}

fn invalid(msg: String) -> GraphError {
    GraphError::invalid(format!("WeightedSummary: {msg}"))
}

impl WeightedSummary {
    /// An empty summary with relative error `epsilon` (in `[0, 1]`).
    pub fn new(epsilon: f64) -> Result<WeightedSummary> {
        if !(0.0..=1.0).contains(&epsilon) {
            return Err(invalid(format!(
                "relative error {epsilon}; expected a value in [0, 1]"
            )));
        }
        Ok(WeightedSummary {
            epsilon,
            samples: Vec::new(),
            total_weight: 0.0,
            buffer: Vec::new(),
        })
    }

    /// The relative error `ε`.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The total weight inserted (buffered points included).
    pub fn total_weight(&self) -> f64 {
        self.total_weight + self.buffer.iter().map(|&(_, w)| w).sum::<f64>()
    }

    /// The samples (after the last merge of the buffer; call [`compress`](Self::compress)
    /// first for the final summary).
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Insert `value` with weight `weight` (finite, `>= 0`). A NaN value is skipped, as
    /// sparklyr does; an infinite value or a negative or non-finite weight is an error.
    pub fn insert(&mut self, value: f64, weight: f64) -> Result<()> {
        if value.is_nan() {
            return Ok(());
        }
        if value.is_infinite() || !(weight >= 0.0 && weight.is_finite()) {
            return Err(invalid(format!(
                "insert({value}, {weight}); expected a finite value and a finite weight >= 0"
            )));
        }
        self.buffer.push((value, weight));
        if self.buffer.len() >= BUFFER_SIZE {
            self.flush();
            if self.samples.len() >= COMPRESS_THRESHOLD {
                self.compress_samples();
            }
        }
        Ok(())
    }

    /// Insert every element of `values` with the weight at the same position of `weights`
    /// (f32 or f64 tensors of equal shape, e.g. fetched from a `Session`).
    pub fn insert_values(&mut self, values: &Value, weights: &Value) -> Result<()> {
        if !values.dtype().is_float() || !weights.dtype().is_float() {
            return Err(invalid(format!(
                "insert_values got dtypes {} and {}; expected float values and weights",
                values.dtype(),
                weights.dtype()
            )));
        }
        if values.shape() != weights.shape() {
            return Err(invalid(format!(
                "insert_values got values of shape {:?} and weights of shape {:?}; expected equal shapes",
                values.shape(),
                weights.shape()
            )));
        }
        for (v, w) in values.to_f64_vec().into_iter().zip(weights.to_f64_vec()) {
            self.insert(v, w)?;
        }
        Ok(())
    }

    /// Merge the buffer into the samples: sort it, then merge-sort with the samples; a new
    /// value becomes `(x, w, 0, 0)`, or adds to the weight of an equal sample.
    fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let mut sorted = std::mem::take(&mut self.buffer);
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let old = std::mem::take(&mut self.samples);
        let mut merged: Vec<Sample> = Vec::with_capacity(old.len() + sorted.len());
        let mut src = old.into_iter().peekable();
        for (x, w) in sorted {
            while let Some(s) = src.next_if(|s| s.x <= x) {
                merged.push(s);
            }
            self.total_weight += w;
            match merged.last_mut() {
                Some(last) if last.x == x => last.s += w,
                _ => merged.push(Sample {
                    x,
                    s: w,
                    l: 0.0,
                    r: 0.0,
                }),
            }
        }
        merged.extend(src);
        self.samples = merged;
    }

    /// Merge the buffer and compress: the final form of a summary, required before
    /// [`query`](Self::query) and [`merge`](Self::merge) (which call it themselves).
    pub fn compress(&mut self) {
        self.flush();
        self.compress_samples();
    }

    fn compress_samples(&mut self) {
        let threshold = self.epsilon * self.total_weight;
        self.samples = compress_immut(&mut self.samples, self.total_weight, threshold);
    }

    /// The summary of the union of both inputs (sparklyr's `merge`): samples merge-sorted
    /// (equal values add `s`, `l` and `r`), `ε` the larger, weights added, then compressed.
    pub fn merge(&self, other: &WeightedSummary) -> WeightedSummary {
        let (mut a, mut b) = (self.clone(), other.clone());
        a.compress();
        b.compress();
        if b.samples.is_empty() {
            return a;
        }
        if a.samples.is_empty() {
            return b;
        }
        let epsilon = a.epsilon.max(b.epsilon);
        let total = a.total_weight + b.total_weight;
        let mut merged: Vec<Sample> = Vec::with_capacity(a.samples.len() + b.samples.len());
        let (mut i, mut j) = (0, 0);
        while i < a.samples.len() || j < b.samples.len() {
            let next = if j >= b.samples.len()
                || (i < a.samples.len() && a.samples[i].x < b.samples[j].x)
            {
                i += 1;
                a.samples[i - 1]
            } else {
                j += 1;
                b.samples[j - 1]
            };
            match merged.last_mut() {
                Some(last) if last.x == next.x => {
                    last.s += next.s;
                    last.l += next.l;
                    last.r += next.r;
                }
                _ => merged.push(next),
            }
        }
        let samples = compress_immut(&mut merged, total, epsilon * total);
        WeightedSummary {
            epsilon,
            samples,
            total_weight: total,
            buffer: Vec::new(),
        }
    }

    /// The corrected query (see the module docs): an `x` with `W(< x) ≤ (q + ε)W` and
    /// `W(≤ x) ≥ (q − ε)W`. `None` for an empty summary; `q` outside `[0, 1]` is an error.
    pub fn query(&mut self, q: f64) -> Result<Option<f64>> {
        self.query_with(q, true)
    }

    /// sparklyr's query as MODELS.md §9 states it (see the module docs).
    pub fn query_sparklyr(&mut self, q: f64) -> Result<Option<f64>> {
        self.query_with(q, false)
    }

    fn query_with(&mut self, q: f64, corrected: bool) -> Result<Option<f64>> {
        if !(0.0..=1.0).contains(&q) {
            return Err(invalid(format!("quantile {q}; expected a value in [0, 1]")));
        }
        if !self.buffer.is_empty() {
            self.compress();
        }
        let (Some(first), Some(last)) = (self.samples.first(), self.samples.last()) else {
            return Ok(None);
        };
        let eps = self.epsilon;
        if q <= eps {
            return Ok(Some(first.x));
        }
        if q >= 1.0 - eps {
            return Ok(Some(last.x));
        }
        let w = self.total_weight;
        let (target, tol) = (q * w, eps * w);
        let mut min_rank = 0.0;
        let mut right_sum: f64 = self.samples.iter().map(|s| s.s + s.r).sum();
        for s in &self.samples[..self.samples.len() - 1] {
            min_rank += s.l;
            right_sum -= s.s;
            let max_rank = w - right_sum;
            let ok = if corrected {
                target - tol <= min_rank + s.s && max_rank - s.s <= target + tol
            } else {
                target - tol <= min_rank && max_rank <= target + tol
            };
            if ok {
                return Ok(Some(s.x));
            }
            min_rank += s.s;
            right_sum -= s.r;
        }
        Ok(Some(last.x))
    }
}

/// sparklyr's `compressImmut`, ported literally: sweep from the second-to-last sample down to
/// index 1 keeping a head; a sample whose gap is below `threshold` is folded into the head.
fn compress_immut(samples: &mut [Sample], total: f64, threshold: f64) -> Vec<Sample> {
    let len = samples.len();
    if len < 3 {
        return samples.to_vec();
    }
    let mut res: Vec<Sample> = Vec::new(); // built back to front, reversed at the end
    let mut head = samples[len - 1];
    let mut i = len - 2;
    let mut left_sum: f64 =
        samples[..i - 1].iter().map(|s| s.s + s.l).sum::<f64>() + samples[i - 1].l;
    let mut right_sum = head.r;
    let (mut left_inc, mut right_inc) = (0.0, 0.0);
    let mut head_right_sum = right_sum;
    while i >= 1 {
        let gap = total - head_right_sum - left_sum;
        left_sum -= samples[i - 1].l;
        if i > 1 {
            left_sum -= samples[i - 2].s;
        }
        right_sum += samples[i + 1].s + samples[i].r;
        if gap >= threshold {
            head.l += left_inc;
            samples[i].r += right_inc;
            res.push(head);
            head = samples[i];
            head_right_sum = right_sum;
            left_inc = 0.0;
            right_inc = 0.0;
        } else {
            left_inc += samples[i].l + samples[i].s;
            right_inc += samples[i].r + samples[i].s;
        }
        i -= 1;
    }
    res.push(head);
    res.push(samples[0]);
    res.reverse();
    res
}

/// The exact weighted `q`-quantile of `(value, weight)` pairs: the smallest `x` with
/// `W(≤ x) ≥ qW` (sort + cumulative sum); `None` without positive total weight.
pub fn exact_weighted_quantile(points: &[(f64, f64)], q: f64) -> Option<f64> {
    let mut sorted: Vec<(f64, f64)> = points.iter().copied().filter(|p| !p.0.is_nan()).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = sorted.iter().map(|p| p.1).sum();
    if total <= 0.0 {
        return None;
    }
    let mut cum = 0.0;
    for &(x, w) in &sorted {
        cum += w;
        if cum >= q * total {
            return Some(x);
        }
    }
    sorted.last().map(|p| p.0)
}
