//! The matrix exponential `expm` by scaling and squaring with Padé approximants
//! (N. J. Higham, "The scaling and squaring method for the matrix exponential revisited",
//! SIAM J. Matrix Anal. Appl. 26(4), 2005, Algorithm 2.3 — the algorithm of MATLAB's
//! `expm` before 2009 and of scipy ≤ 0.12):
//!
//! - `‖A‖₁ ≤ θ_m` for m ∈ {3, 5, 7, 9}: the degree-m diagonal Padé approximant `r_m(A)`
//!   directly (fewer products for small matrices; the θ_m bound the backward error by the
//!   unit roundoff exactly as θ₁₃ does for degree 13);
//! - otherwise `s = max(0, ⌈log₂(‖A‖₁/θ₁₃)⌉)`, `r₁₃(A/2ˢ)` squared `s` times.
//!
//! `r_m = (V − U)⁻¹(V + U)` with `U` the odd and `V` the even part of the numerator, solved
//! by LU with partial pivoting ([`super::lu`]). Every matrix is computed in f64 and rounded
//! once to the dtype. A matrix with a NaN or infinite entry has no meaningful exponential
//! here (the scaling count would be unbounded): its result is all NaN.
//!
//! **Why a primitive op, not a composite.** The Padé degree and the number of squarings
//! depend on `‖A‖₁`, a run-time value, and differ per matrix of a batch; Flumen graphs have
//! no data-dependent loops, so a composite would have to unroll to the worst case
//! (`s_max` ≈ 1,000 squarings for f64) or fix `s` when the graph is built. As a primitive,
//! the kernel picks the degree and `s` per matrix, and the compiled backend runs it as an
//! `Interpret` step (like other ops without a fused kernel) whose products go through the
//! same `gemm` crate as its GEMM steps. Its gradient is still a graph (the block-matrix
//! identity, built from `expm` itself), so differentiation works on both backends.

use super::lu::{Lu, axpy, float_value, gemm_strided, matmul_sq, release, zeroed};
use flumen_frontend::Value;

/// θ_m for m = 3, 5, 7, 9, 13 (Higham 2005, Table 2.3).
const THETA: [(usize, f64); 5] = [
    (3, 1.495585217958292e-2),
    (5, 2.53939833006323e-1),
    (7, 9.504178996162932e-1),
    (9, 2.097847961257068e0),
    (13, 5.371920351148152e0),
];

const B3: [f64; 4] = [120.0, 60.0, 12.0, 1.0];
const B5: [f64; 6] = [30240.0, 15120.0, 3360.0, 420.0, 30.0, 1.0];
const B7: [f64; 8] = [
    17297280.0, 8648640.0, 1995840.0, 277200.0, 25200.0, 1512.0, 56.0, 1.0,
];
const B9: [f64; 10] = [
    17643225600.0,
    8821612800.0,
    2075673600.0,
    302702400.0,
    30270240.0,
    2162160.0,
    110880.0,
    3960.0,
    90.0,
    1.0,
];
const B13: [f64; 14] = [
    64764752532480000.0,
    32382376266240000.0,
    7771770303897600.0,
    1187353796428800.0,
    129060195264000.0,
    10559470521600.0,
    670442572800.0,
    33522128640.0,
    1323241920.0,
    40840800.0,
    960960.0,
    16380.0,
    182.0,
    1.0,
];

/// `expm` of every `[n, n]` matrix of `x` (`[.., n, n]`, f32 or f64).
pub(in crate::interpreter) fn expm(x: &Value) -> Result<Value, String> {
    let shape = x.shape();
    let r = shape.len();
    if r < 2 || shape[r - 1] != shape[r - 2] {
        return Err(format!(
            "expm expects square matrices [.., n, n], got shape {shape:?}"
        ));
    }
    let n = shape[r - 1];
    let data = x.to_f64_vec();
    let mut out = Vec::with_capacity(data.len());
    if n > 0 {
        for m in data.chunks(n * n) {
            let e = expm_f64(m, n)?;
            out.extend_from_slice(&e);
            release(e);
        }
    }
    float_value(x.dtype(), shape, out)
}

/// The matrix exponential of one row-major `n × n` f64 matrix.
pub(super) fn expm_f64(a: &[f64], n: usize) -> Result<Vec<f64>, String> {
    let norm = norm1(a, n);
    if !norm.is_finite() {
        return Ok(vec![f64::NAN; n * n]);
    }
    for &(m, theta) in &THETA[..4] {
        if norm <= theta {
            return pade_low(a, n, m);
        }
    }
    let s = (norm / THETA[4].1).log2().ceil().max(0.0) as i32;
    let mut scaled = zeroed(n * n);
    let f = 2f64.powi(-s);
    for (d, &v) in scaled.iter_mut().zip(a) {
        *d = v * f;
    }
    let mut r = pade13(&scaled, n)?;
    release(scaled);
    for _ in 0..s {
        let next = matmul_sq(&r, &r, n);
        release(std::mem::replace(&mut r, next));
    }
    Ok(r)
}

/// The 1-norm (largest absolute column sum); NaN if any entry is NaN.
fn norm1(a: &[f64], n: usize) -> f64 {
    let mut cols = vec![0.0f64; n];
    for row in a.chunks(n) {
        for (c, &v) in cols.iter_mut().zip(row) {
            *c += v.abs();
        }
    }
    cols.into_iter().fold(0.0, |m, c| {
        if c.is_nan() || m.is_nan() {
            f64::NAN
        } else {
            m.max(c)
        }
    })
}

/// `Σ cᵢ·Mᵢ + c_I·I` over row-major `n × n` matrices.
fn combo(terms: &[(f64, &[f64])], identity: f64, n: usize) -> Vec<f64> {
    let mut out = zeroed(n * n);
    for &(c, m) in terms {
        axpy(&mut out, -c, m);
    }
    for i in 0..n {
        out[i * n + i] += identity;
    }
    out
}

/// `(V − U)⁻¹ (V + U)`.
fn finish(u: Vec<f64>, v: Vec<f64>, n: usize) -> Result<Vec<f64>, String> {
    let mut p = zeroed(n * n);
    let mut q = zeroed(n * n);
    for ((p, q), (v, u)) in p.iter_mut().zip(q.iter_mut()).zip(v.iter().zip(&u)) {
        *p = v + u;
        *q = v - u;
    }
    release(u);
    release(v);
    let lu = Lu::factor(q, n).map_err(|col| {
        format!("expm: the Padé denominator is singular (zero pivot in column {col})")
    })?;
    let r = lu.solve(&p, n);
    release(p);
    Ok(r)
}

/// `r_m(A)` for m ∈ {3, 5, 7, 9}.
fn pade_low(a: &[f64], n: usize, m: usize) -> Result<Vec<f64>, String> {
    let b: &[f64] = match m {
        3 => &B3,
        5 => &B5,
        7 => &B7,
        _ => &B9,
    };
    // Even powers A², A⁴, …, A^{m−1}.
    let mut powers = vec![matmul_sq(a, a, n)];
    while 2 * (powers.len() + 1) < m + 1 {
        let next = matmul_sq(powers.last().expect("non-empty"), &powers[0], n);
        powers.push(next);
    }
    let odd: Vec<(f64, &[f64])> = powers
        .iter()
        .enumerate()
        .map(|(i, p)| (b[2 * i + 3], p.as_slice()))
        .collect();
    let even: Vec<(f64, &[f64])> = powers
        .iter()
        .enumerate()
        .map(|(i, p)| (b[2 * i + 2], p.as_slice()))
        .collect();
    let inner = combo(&odd, b[1], n);
    let u = matmul_sq(a, &inner, n);
    let v = combo(&even, b[0], n);
    release(inner);
    powers.into_iter().for_each(release);
    finish(u, v, n)
}

/// `r₁₃(A)` with the evaluation scheme of Higham 2005 (six products).
fn pade13(a: &[f64], n: usize) -> Result<Vec<f64>, String> {
    let b = &B13;
    let a2 = matmul_sq(a, a, n);
    let a4 = matmul_sq(&a2, &a2, n);
    let a6 = matmul_sq(&a4, &a2, n);
    // U = A·[A6(b13A6 + b11A4 + b9A2) + b7A6 + b5A4 + b3A2 + b1I]
    let mut inner = combo(&[(b[7], &a6), (b[5], &a4), (b[3], &a2)], b[1], n);
    let w = combo(&[(b[13], &a6), (b[11], &a4), (b[9], &a2)], 0.0, n);
    gemm_strided((n, n, n), &mut inner, n, true, &a6, n, &w, n, 1.0, 1.0);
    let u = matmul_sq(a, &inner, n);
    // V = A6(b12A6 + b10A4 + b8A2) + b6A6 + b4A4 + b2A2 + b0I
    let mut v = combo(&[(b[6], &a6), (b[4], &a4), (b[2], &a2)], b[0], n);
    let z = combo(&[(b[12], &a6), (b[10], &a4), (b[8], &a2)], 0.0, n);
    gemm_strided((n, n, n), &mut v, n, true, &a6, n, &z, n, 1.0, 1.0);
    for t in [a2, a4, a6, inner, w, z] {
        release(t);
    }
    finish(u, v, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Taylor series to 60 terms (accurate for the small norms used here).
    fn taylor(a: &[f64], n: usize) -> Vec<f64> {
        let mut sum = combo(&[], 1.0, n);
        let mut term = sum.clone();
        for k in 1..60 {
            term = matmul_sq(&term, a, n)
                .into_iter()
                .map(|v| v / k as f64)
                .collect();
            for (s, t) in sum.iter_mut().zip(&term) {
                *s += t;
            }
        }
        sum
    }

    #[test]
    fn every_degree_matches_the_taylor_series() {
        let base = [0.3, -0.7, 0.2, 0.5, 0.1, -0.4, -0.6, 0.8, 0.25];
        // Scales that select m = 3, 5, 7, 9 and 13 (with and without squaring).
        for scale in [0.005, 0.1, 0.5, 1.2, 2.5, 6.0] {
            let a: Vec<f64> = base.iter().map(|v| v * scale).collect();
            let got = expm_f64(&a, 3).unwrap();
            let want = taylor(&a, 3);
            let err = got
                .iter()
                .zip(&want)
                .map(|(g, w)| (g - w).abs())
                .fold(0.0, f64::max);
            let size = want.iter().map(|w| w.abs()).fold(0.0, f64::max);
            assert!(err <= 1e-13 * size, "scale {scale}: error {err}");
        }
    }

    #[test]
    fn non_finite_input_gives_nan() {
        let r = expm_f64(&[f64::INFINITY, 0.0, 0.0, 1.0], 2).unwrap();
        assert!(r.iter().all(|v| v.is_nan()));
    }
}
