//! Random ops and the Philox-4x32-10 counter-based generator that defines their numbers.
//!
//! Every backend reproduces the same numbers: element `i` of the `k`-th execution of a random
//! op with seed `s` is derived from `philox(key = s, counter = [i, attempt, k_lo, k_hi])`.
//! `k` counts how many times the session has executed that op (TF1 semantics: a random op
//! gives new numbers on every run, the sequence fixed by its seed).

use crate::dtype::DType;

/// The distribution of a random op (compared bitwise, like every float attribute).
#[derive(Clone, Copy, Debug)]
pub enum Distribution {
    /// Normal with the given mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        stddev: f64,
    },
    /// Normal, redrawn when farther than two standard deviations from the mean.
    TruncatedNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation (before truncation).
        stddev: f64,
    },
    /// Uniform on `[low, high)`.
    Uniform {
        /// Lower bound (inclusive).
        low: f64,
        /// Upper bound (exclusive).
        high: f64,
    },
    /// Uniform integers on `[low, high)`.
    UniformInt {
        /// Lower bound (inclusive).
        low: i64,
        /// Upper bound (exclusive).
        high: i64,
    },
}

impl PartialEq for Distribution {
    fn eq(&self, other: &Self) -> bool {
        use Distribution::*;
        let b = |x: f64| x.to_bits();
        match (*self, *other) {
            (Normal { mean: a, stddev: s }, Normal { mean: c, stddev: t })
            | (TruncatedNormal { mean: a, stddev: s }, TruncatedNormal { mean: c, stddev: t })
            | (Uniform { low: a, high: s }, Uniform { low: c, high: t }) => {
                b(a) == b(c) && b(s) == b(t)
            }
            (UniformInt { low: a, high: s }, UniformInt { low: c, high: t }) => a == c && s == t,
            _ => false,
        }
    }
}

impl Distribution {
    /// The op name in the text IR.
    pub fn name(&self) -> &'static str {
        match self {
            Distribution::Normal { .. } => "random_normal",
            Distribution::TruncatedNormal { .. } => "truncated_normal",
            Distribution::Uniform { .. } => "random_uniform",
            Distribution::UniformInt { .. } => "random_int",
        }
    }

    /// Whether the distribution can produce `dtype`.
    pub fn accepts(&self, dtype: DType) -> bool {
        match self {
            Distribution::UniformInt { .. } => matches!(dtype, DType::I32 | DType::I64),
            _ => dtype.is_float(),
        }
    }

    /// Element `index` of execution `counter` of an op with `seed`, as f64 (ints exactly).
    pub fn sample(&self, seed: u64, counter: u64, index: u64) -> f64 {
        match *self {
            Distribution::Normal { mean, stddev } => {
                mean + stddev * normal(philox(seed, [index, 0, counter]))
            }
            Distribution::TruncatedNormal { mean, stddev } => {
                for attempt in 0..64 {
                    let z = normal(philox(seed, [index, attempt, counter]));
                    if z.abs() <= 2.0 {
                        return mean + stddev * z;
                    }
                }
                mean
            }
            Distribution::Uniform { low, high } => {
                low + (high - low) * uniform01(philox(seed, [index, 0, counter]))
            }
            Distribution::UniformInt { .. } => self.sample_i64(seed, counter, index) as f64,
        }
    }

    /// Element `index` as an exact integer (for [`Distribution::UniformInt`]; other
    /// distributions are truncated toward zero).
    pub fn sample_i64(&self, seed: u64, counter: u64, index: u64) -> i64 {
        match *self {
            Distribution::UniformInt { low, high } => {
                let w = philox(seed, [index, 0, counter]);
                let r = ((w[0] as u64) << 32) | w[1] as u64;
                let range = high.wrapping_sub(low) as u64 as u128;
                low.wrapping_add(((r as u128 * range) >> 64) as i64)
            }
            _ => self.sample(seed, counter, index) as i64,
        }
    }
}

/// A uniform number in `[0, 1)` with 53 random bits, from the first two words of a block.
pub fn uniform01(w: [u32; 4]) -> f64 {
    let bits = (((w[0] as u64) << 32) | w[1] as u64) >> 11;
    bits as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A standard normal number by Box–Muller from one Philox block.
pub fn normal(w: [u32; 4]) -> f64 {
    let u1 = 1.0 - uniform01(w); // (0, 1]
    let u2 = uniform01([w[2], w[3], 0, 0]);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Philox-4x32-10 (Salmon et al., 2011) with a 64-bit key and a 128-bit counter given as
/// `[element index, attempt, execution counter]` (the index and counter take 64 bits each
/// across words; the attempt number is folded into the high word of the index).
pub fn philox(seed: u64, ctr: [u64; 3]) -> [u32; 4] {
    const M0: u64 = 0xD251_1F53;
    const M1: u64 = 0xCD9E_8D57;
    const W0: u32 = 0x9E37_79B9;
    const W1: u32 = 0xBB67_AE85;
    let idx = ctr[0] ^ (ctr[1] << 48);
    let mut c = [
        idx as u32,
        (idx >> 32) as u32,
        ctr[2] as u32,
        (ctr[2] >> 32) as u32,
    ];
    let mut k = [seed as u32, (seed >> 32) as u32];
    for _ in 0..10 {
        let p0 = M0 * c[0] as u64;
        let p1 = M1 * c[2] as u64;
        c = [
            ((p1 >> 32) as u32) ^ c[1] ^ k[0],
            p1 as u32,
            ((p0 >> 32) as u32) ^ c[3] ^ k[1],
            p0 as u32,
        ];
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    c
}

/// Sample one category from unnormalised log-probabilities by inverse CDF with a uniform
/// drawn from `philox(seed, [index, 0, counter])`.
pub fn sample_categorical(logits: &[f64], seed: u64, counter: u64, index: u64) -> usize {
    let m = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    // With +inf logits, the +inf classes share all the probability.
    let weights: Vec<f64> = if m == f64::INFINITY {
        logits
            .iter()
            .map(|&l| (l == f64::INFINITY) as u8 as f64)
            .collect()
    } else {
        logits.iter().map(|&l| (l - m).exp()).collect()
    };
    let total: f64 = weights.iter().sum();
    let u = uniform01(philox(seed, [index, 0, counter])) * total;
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += w;
        if u < acc {
            return i;
        }
    }
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_known_answer() {
        // Random123's known-answer test for philox4x32-10, key (0,0), counter 0.
        let mut c = [0u32; 4];
        let mut k = [0u32; 2];
        for _ in 0..10 {
            let p0 = 0xD251_1F53u64 * c[0] as u64;
            let p1 = 0xCD9E_8D57u64 * c[2] as u64;
            c = [
                ((p1 >> 32) as u32) ^ c[1] ^ k[0],
                p1 as u32,
                ((p0 >> 32) as u32) ^ c[3] ^ k[1],
                p0 as u32,
            ];
            k = [
                k[0].wrapping_add(0x9E37_79B9),
                k[1].wrapping_add(0xBB67_AE85),
            ];
        }
        assert_eq!(c, [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
        assert_eq!(philox(0, [0, 0, 0]), c);
    }

    #[test]
    fn normal_moments() {
        let n = 20000;
        let xs: Vec<f64> = (0..n)
            .map(|i| {
                Distribution::Normal {
                    mean: 1.0,
                    stddev: 2.0,
                }
                .sample(7, 0, i)
            })
            .collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.05, "{mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn truncated_normal_is_bounded() {
        let d = Distribution::TruncatedNormal {
            mean: 0.0,
            stddev: 1.0,
        };
        assert!((0..5000).all(|i| d.sample(3, 1, i).abs() <= 2.0));
    }

    #[test]
    fn uniform_int_range() {
        let d = Distribution::UniformInt { low: -3, high: 4 };
        let xs: Vec<i64> = (0..2000).map(|i| d.sample(9, 0, i) as i64).collect();
        assert!(xs.iter().all(|&x| (-3..4).contains(&x)));
        for v in -3..4 {
            assert!(xs.contains(&v));
        }
    }
}
