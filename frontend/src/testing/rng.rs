//! The deterministic generator behind [`super`]: SplitMix64 plus helpers that draw dtypes,
//! shapes, values with special floats, slices, permutations and broadcastable shapes.

use crate::dtype::{DType, Scalar};
use crate::op::{SliceDim, SliceSpec};
use crate::value::{Element, Value};

/// SplitMix64: a tiny deterministic generator driven by a step's seed.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    pub(super) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// True with probability `1/n`.
    pub(super) fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub(super) fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    pub(super) fn dtype(&mut self) -> DType {
        self.pick(&DType::ALL)
    }

    pub(super) fn float_dtype(&mut self) -> DType {
        self.pick(&[DType::F32, DType::F64])
    }

    pub(super) fn index_dtype(&mut self) -> DType {
        self.pick(&[DType::I32, DType::I64])
    }

    pub(super) fn numeric_dtype(&mut self) -> DType {
        self.pick(&[DType::F32, DType::F64, DType::I32, DType::I64, DType::U8])
    }

    /// Rank 0..=3; dimensions 1..=4, or 0 now and then.
    pub(super) fn shape(&mut self) -> Vec<usize> {
        let rank = self.below(4);
        (0..rank).map(|_| self.dim()).collect()
    }

    pub(super) fn dim(&mut self) -> usize {
        if self.one_in(10) {
            0
        } else {
            1 + self.below(4)
        }
    }

    /// A float attribute: never NaN (see the module docs), but `-0.0`, infinities and
    /// extremes are in.
    pub(super) fn float_attr(&mut self) -> f64 {
        match self.below(8) {
            0 => -0.0,
            1 => f64::INFINITY,
            2 => f64::NEG_INFINITY,
            3 => f64::MIN_POSITIVE / 4.0,
            4 => f64::MAX,
            5 => 0.1,
            _ => (self.below(2001) as f64 - 1000.0) / 8.0,
        }
    }

    /// A float element, as f64 bits to be narrowed or used as is.
    pub(super) fn f64_elem(&mut self) -> f64 {
        match self.below(12) {
            0 => f64::NAN,
            1 => -f64::NAN,
            2 => f64::from_bits(0x7ff8_0000_0000_0001 | (self.next() & 0xffff)),
            3 => f64::INFINITY,
            4 => f64::NEG_INFINITY,
            5 => -0.0,
            6 => f64::from_bits(self.next()),
            _ => self.float_attr(),
        }
    }

    pub(super) fn f32_elem(&mut self) -> f32 {
        match self.below(12) {
            0 => f32::NAN,
            1 => -f32::NAN,
            2 => f32::from_bits(0x7fc0_0001 | (self.next() as u32 & 0xff)),
            3 => f32::from_bits(self.next() as u32),
            4 => f32::MIN_POSITIVE / 8.0,
            _ => self.f64_elem() as f32,
        }
    }

    pub(super) fn int_elem(&mut self) -> i64 {
        match self.below(6) {
            0 => i64::MIN,
            1 => i64::MAX,
            2 => self.next() as i64,
            _ => self.below(21) as i64 - 10,
        }
    }

    pub(super) fn vec<T: Element>(
        &mut self,
        n: usize,
        mut f: impl FnMut(&mut Self) -> T,
    ) -> Vec<T> {
        (0..n).map(|_| f(self)).collect()
    }

    /// A random value of `dtype` and `shape`.
    pub(super) fn value(&mut self, dtype: DType, shape: &[usize]) -> Value {
        let n = shape.iter().product();
        let v = match dtype {
            DType::F32 => Value::from_vec(shape, self.vec(n, Rng::f32_elem)),
            DType::F64 => Value::from_vec(shape, self.vec(n, Rng::f64_elem)),
            DType::I32 => Value::from_vec(shape, self.vec(n, |r| r.int_elem() as i32)),
            DType::I64 => Value::from_vec(shape, self.vec(n, Rng::int_elem)),
            DType::U8 => Value::from_vec(shape, self.vec(n, |r| r.int_elem() as u8)),
            DType::Bool => Value::from_vec(shape, self.vec(n, |r| r.one_in(2))),
        };
        v.expect("the element count matches the shape")
    }

    /// Valid indices into an axis of length `dim` (shape given), as i32 or i64.
    pub(super) fn indices(&mut self, dtype: DType, shape: &[usize], dim: usize) -> Value {
        let n = shape.iter().product();
        let xs: Vec<i64> = (0..n).map(|_| self.below(dim) as i64).collect();
        Value::from_vec(shape, xs)
            .expect("the element count matches the shape")
            .cast(dtype)
    }

    /// A shape that broadcasts with `shape`: a suffix of it with some axes set to 1, or it
    /// with a leading axis added.
    pub(super) fn broadcastable(&mut self, shape: &[usize]) -> Vec<usize> {
        if self.one_in(4) {
            let mut s = vec![1 + self.below(3)];
            s.extend_from_slice(shape);
            return s;
        }
        let skip = self.below(shape.len() + 1);
        shape[skip..]
            .iter()
            .map(|&d| if self.one_in(3) { 1 } else { d })
            .collect()
    }

    /// A random permutation of `0..n`.
    pub(super) fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            p.swap(i, self.below(i + 1));
        }
        p
    }

    /// A valid strided slice of `shape` (negative steps and empty ranges included).
    pub(super) fn slice(&mut self, shape: &[usize]) -> SliceSpec {
        self.slice_with(shape, false)
    }

    /// A valid strided slice of `shape` that keeps at least one element of every non-empty
    /// axis (so that slices of it still have room).
    pub(super) fn slice_nonempty(&mut self, shape: &[usize]) -> SliceSpec {
        self.slice_with(shape, true)
    }

    fn slice_with(&mut self, shape: &[usize], nonempty: bool) -> SliceSpec {
        let dims = shape
            .iter()
            .map(|&n| {
                let step = self.pick(&[1, 1, 2, -1, -2, 3]);
                if n == 0 {
                    return SliceDim {
                        start: 0,
                        step,
                        len: 0,
                    };
                }
                let start = self.below(n);
                let max_len = if step > 0 {
                    (n - 1 - start) / step as usize + 1
                } else {
                    start / (-step) as usize + 1
                };
                let len = if nonempty {
                    1 + self.below(max_len)
                } else {
                    self.below(max_len + 1)
                };
                SliceDim {
                    start: if len == 0 { 0 } else { start },
                    step,
                    len,
                }
            })
            .collect();
        SliceSpec { dims }
    }

    /// A new shape with the same element count as `shape`.
    pub(super) fn reshape(&mut self, shape: &[usize]) -> Vec<usize> {
        let n: usize = shape.iter().product();
        match self.below(5) {
            0 => vec![n],
            1 => shape.iter().rev().copied().collect(),
            2 => {
                let mut s = shape.to_vec();
                s.insert(self.below(s.len() + 1), 1);
                s
            }
            3 if n == 0 => vec![self.below(3), 0],
            3 => {
                let divisors: Vec<usize> =
                    (1..=n.min(16)).filter(|&d| n.is_multiple_of(d)).collect();
                let d = self.pick(&divisors);
                vec![d, n / d]
            }
            _ => shape.iter().copied().filter(|&d| d != 1).collect(),
        }
    }

    /// A pad value: usually one that fits `dtype`, sometimes one of another kind.
    pub(super) fn pad_value(&mut self, dtype: DType) -> Scalar {
        match (dtype, self.below(4)) {
            (_, 0) => Scalar::Int(self.below(3) as i64),
            (DType::Bool, _) => Scalar::Bool(self.one_in(2)),
            (DType::U8, _) => Scalar::Int(self.below(256) as i64),
            (d, _) if d.is_float() => Scalar::Float(self.float_attr()),
            _ => Scalar::Int(self.below(2001) as i64 - 1000),
        }
    }
}
