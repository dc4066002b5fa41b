//! Strided slices in normalised form: per axis a start, a step and an output length.
//!
//! Python-style `begin:end:stride` (negative indices, clamping, negative strides) is turned
//! into this form once, in the DSL, so every backend sees element `j` of an axis at index
//! `start + j·step` and nothing else.

use crate::error::BuildError;

/// One axis of a normalised slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SliceDim {
    /// Index of the first selected element (meaningless when `len == 0`).
    pub start: usize,
    /// Distance between selected elements (nonzero; may be negative).
    pub step: i64,
    /// Number of selected elements.
    pub len: usize,
}

/// A strided slice over every axis of a tensor.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SliceSpec {
    /// One entry per axis.
    pub dims: Vec<SliceDim>,
}

impl SliceSpec {
    /// The full range of every axis of `shape`.
    pub fn full(shape: &[usize]) -> SliceSpec {
        SliceSpec {
            dims: shape
                .iter()
                .map(|&d| SliceDim {
                    start: 0,
                    step: 1,
                    len: d,
                })
                .collect(),
        }
    }

    /// Output shape of the slice.
    pub fn out_shape(&self) -> Vec<usize> {
        self.dims.iter().map(|d| d.len).collect()
    }

    /// Check the spec against the sliced shape.
    pub fn check(&self, shape: &[usize]) -> Result<(), BuildError> {
        let bad = |msg: String| BuildError::BadSlice {
            shape: shape.to_vec(),
            msg,
        };
        if self.dims.len() != shape.len() {
            return Err(bad(format!(
                "slice has {} axes but the tensor has rank {}",
                self.dims.len(),
                shape.len()
            )));
        }
        for (axis, (d, &n)) in self.dims.iter().zip(shape).enumerate() {
            if d.step == 0 {
                return Err(bad(format!("axis {axis}: step must be nonzero")));
            }
            if d.len == 0 {
                continue;
            }
            let last = i64::try_from(d.len - 1)
                .ok()
                .and_then(|l| l.checked_mul(d.step))
                .and_then(|o| o.checked_add(d.start as i64));
            let Some(last) = last.filter(|_| d.start < n) else {
                return Err(bad(format!(
                    "axis {axis}: start {} with {} steps of {} leaves 0..{n}",
                    d.start, d.len, d.step
                )));
            };
            if last < 0 || last >= n as i64 {
                return Err(bad(format!(
                    "axis {axis}: indices {}..={} (step {}) fall outside 0..{n}",
                    d.start, last, d.step
                )));
            }
        }
        Ok(())
    }

    /// Normalise Python-style bounds for one axis of length `n`: `begin`/`end` may be
    /// negative (counted from the end) or `None` (the natural end for the stride's sign);
    /// out-of-range bounds clamp like Python's.
    pub fn normalize_axis(
        n: usize,
        begin: Option<i64>,
        end: Option<i64>,
        step: i64,
    ) -> Result<SliceDim, String> {
        if step == 0 {
            return Err("slice step must be nonzero".into());
        }
        let n = n as i64;
        let resolve = |x: i64| if x < 0 { x + n } else { x };
        let (b, e) = if step > 0 {
            let b = begin.map(resolve).unwrap_or(0).clamp(0, n);
            let e = end.map(resolve).unwrap_or(n).clamp(0, n);
            (b, e)
        } else {
            let b = begin.map(resolve).unwrap_or(n - 1).clamp(-1, n - 1);
            let e = end.map(resolve).unwrap_or(-1).clamp(-1, n - 1);
            (b, e)
        };
        let len = if step > 0 {
            if e > b { (e - b + step - 1) / step } else { 0 }
        } else if b > e {
            (b - e + (-step) - 1) / (-step)
        } else {
            0
        };
        Ok(SliceDim {
            start: if len == 0 { 0 } else { b as usize },
            step,
            len: len as usize,
        })
    }
}
