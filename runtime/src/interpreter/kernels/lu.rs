//! Dense f64 linear algebra for `solve` and `expm`: square matrices in row-major `Vec<f64>`s,
//! products through the `gemm` crate, and LU factorisation with partial pivoting (blocked,
//! LAPACK `getrf`/`getrs` style: an unblocked panel, then a GEMM update of the trailing
//! matrix).
//!
//! Unlike the other interpreter kernels these are written for speed as well as clarity: the
//! compiled backend runs `solve` and `expm` through the interpreter too (an `Interpret` step),
//! so this file *is* their implementation on every backend. Floats of either dtype are
//! computed in f64 and rounded once by the caller, like every interpreter kernel.
//!
//! The `solve` kernel itself (batched, with broadcast batch axes) is [`solve`].

use flumen_frontend::{DType, Value};

/// Panel width of the blocked LU.
const BLOCK: usize = 32;

/// Block rows of the triangular solves (the rest of each solve is GEMM).
const SOLVE_BLOCK: usize = 16;

/// Products with at least this many multiply-adds use every core (smaller ones lose more to
/// the hand-off than they gain).
const PARALLEL_FLOPS: usize = 1 << 21;

/// `c = alpha·c + beta·a·b` for row-major `a` `[m, k]` (row stride `lda`), `b` `[k, n]`
/// (row stride `ldb`) and `c` `[m, n]` (row stride `ldc`); `read_c = false` ignores `c`'s
/// old contents (`alpha` unused).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_strided(
    (m, n, k): (usize, usize, usize),
    c: &mut [f64],
    ldc: usize,
    read_c: bool,
    a: &[f64],
    lda: usize,
    b: &[f64],
    ldb: usize,
    alpha: f64,
    beta: f64,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (m - 1) * ldc + n, "gemm: c is too short");
    if k == 0 {
        for row in c.chunks_mut(ldc).take(m) {
            for x in &mut row[..n] {
                *x = if read_c { alpha * *x } else { 0.0 };
            }
        }
        return;
    }
    assert!(a.len() >= (m - 1) * lda + k, "gemm: a is too short");
    assert!(b.len() >= (k - 1) * ldb + n, "gemm: b is too short");
    let par = if m * n * k >= PARALLEL_FLOPS && rayon::current_num_threads() > 1 {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every access of the [m, k]·[k, n] → [m, n] product
    // (row strides lda/ldb/ldc, column stride 1) inside the three slices, and `c` is a
    // unique borrow, so it overlaps neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            read_c,
            a.as_ptr(),
            1,
            lda as isize,
            b.as_ptr(),
            1,
            ldb as isize,
            alpha,
            beta,
            false,
            false,
            false,
            par,
        );
    }
}

/// Buffers of at most this many elements are kept for reuse (1 MiB each).
const POOL_MAX_LEN: usize = 1 << 17;

/// Buffers kept per thread.
const POOL_MAX_BUFFERS: usize = 24;

thread_local! {
    /// Released buffers, reused by [`zeroed`]: an `expm` of a 64 × 64 matrix allocates a
    /// dozen 32 KiB temporaries, and when they are all freed the allocator returns the pages
    /// to the OS, so the next call spends more time in page faults than in arithmetic.
    static FREE: std::cell::RefCell<Vec<Vec<f64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer of `len` zeros, reusing a released one when there is one.
pub(super) fn zeroed(len: usize) -> Vec<f64> {
    let reused = if len <= POOL_MAX_LEN {
        FREE.with(|f| f.borrow_mut().pop())
    } else {
        None
    };
    match reused {
        Some(mut v) => {
            v.clear();
            v.resize(len, 0.0);
            v
        }
        None => vec![0.0; len],
    }
}

/// Give a buffer back for reuse by [`zeroed`] (dropped when the pool is full or it is big).
pub(super) fn release(v: Vec<f64>) {
    if v.capacity() <= POOL_MAX_LEN {
        FREE.with(|f| {
            let mut f = f.borrow_mut();
            if f.len() < POOL_MAX_BUFFERS {
                f.push(v);
            }
        });
    }
}

/// `y -= a·x` elementwise over the common length. Vectorised with AVX2 where the CPU has it
/// (the crate is built for baseline x86-64); no FMA contraction, so every path rounds the
/// same way and results do not depend on the CPU.
#[inline]
pub(super) fn axpy(y: &mut [f64], a: f64, x: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected.
        return unsafe { axpy_avx2(y, a, x) };
    }
    axpy_generic(y, a, x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn axpy_avx2(y: &mut [f64], a: f64, x: &[f64]) {
    axpy_generic(y, a, x)
}

#[inline(always)]
fn axpy_generic(y: &mut [f64], a: f64, x: &[f64]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y -= a * x;
    }
}

/// `a · b` for square `n × n` row-major matrices.
pub(super) fn matmul_sq(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = zeroed(n * n);
    gemm_strided((n, n, n), &mut c, n, false, a, n, b, n, 0.0, 1.0);
    c
}

/// An LU factorisation `P·A = L·U` in place: `lu` holds `L` (unit diagonal, not stored)
/// below the diagonal and `U` on and above it; `perm[i]` is the row of `A` that became
/// row `i`.
pub(super) struct Lu {
    n: usize,
    lu: Vec<f64>,
    perm: Vec<usize>,
}

impl Lu {
    /// Factor the `n × n` row-major matrix `a`, or name the column whose pivot is exactly
    /// zero (the matrix is singular). NaNs do not stop the factorisation: they propagate.
    pub(super) fn factor(mut a: Vec<f64>, n: usize) -> Result<Lu, usize> {
        let mut perm: Vec<usize> = (0..n).collect();
        for k0 in (0..n).step_by(BLOCK) {
            let kb = BLOCK.min(n - k0);
            // Unblocked panel: columns k0..k0+kb, rows k0..n; whole rows are swapped.
            for j in k0..k0 + kb {
                let mut p = j;
                let mut best = a[j * n + j].abs();
                for i in j + 1..n {
                    let v = a[i * n + j].abs();
                    if v > best {
                        best = v;
                        p = i;
                    }
                }
                if a[p * n + j] == 0.0 {
                    return Err(j);
                }
                if p != j {
                    for c in 0..n {
                        a.swap(j * n + c, p * n + c);
                    }
                    perm.swap(j, p);
                }
                let pivot = a[j * n + j];
                let (top, rest) = a.split_at_mut((j + 1) * n);
                let prow = &top[j * n + j + 1..j * n + k0 + kb];
                for row in rest.chunks_mut(n) {
                    let l = row[j] / pivot;
                    row[j] = l;
                    axpy(&mut row[j + 1..k0 + kb], l, prow);
                }
            }
            let k1 = k0 + kb;
            if k1 == n {
                break;
            }
            // U12 = L11⁻¹ A12 (rows k0..k1, columns k1..n).
            for i in k0 + 1..k1 {
                let (top, rest) = a.split_at_mut(i * n);
                let row = &mut rest[..n];
                for j in k0..i {
                    let l = row[j];
                    if l != 0.0 {
                        axpy(&mut row[k1..], l, &top[j * n + k1..j * n + n]);
                    }
                }
            }
            // A22 -= L21 · U12.
            let (top, rest) = a.split_at_mut(k1 * n);
            let mut l21 = zeroed((n - k1) * kb);
            for (dst, r) in l21.chunks_mut(kb).zip(rest.chunks(n)) {
                dst.copy_from_slice(&r[k0..k1]);
            }
            gemm_strided(
                (n - k1, n - k1, kb),
                &mut rest[k1..],
                n,
                true,
                &l21,
                kb,
                &top[k0 * n + k1..],
                n,
                1.0,
                -1.0,
            );
            release(l21);
        }
        Ok(Lu { n, lu: a, perm })
    }

    /// Solve `A · X = B` for the row-major `n × m` right-hand side `b`.
    pub(super) fn solve(&self, b: &[f64], m: usize) -> Vec<f64> {
        let n = self.n;
        let lu = &self.lu;
        let mut x = zeroed(n * m);
        for (dst, &p) in x.chunks_mut(m.max(1)).zip(&self.perm) {
            dst.copy_from_slice(&b[p * m..(p + 1) * m]);
        }
        if m == 0 {
            return x;
        }
        // Forward: L · Y = P·B, block row by block row.
        for i0 in (0..n).step_by(SOLVE_BLOCK) {
            let i1 = (i0 + SOLVE_BLOCK).min(n);
            let (done, cur) = x.split_at_mut(i0 * m);
            if i0 > 0 {
                gemm_strided(
                    (i1 - i0, m, i0),
                    cur,
                    m,
                    true,
                    &lu[i0 * n..],
                    n,
                    done,
                    m,
                    1.0,
                    -1.0,
                );
            }
            for i in i0 + 1..i1 {
                let (above, row) = cur.split_at_mut((i - i0) * m);
                for j in i0..i {
                    let l = lu[i * n + j];
                    if l != 0.0 {
                        axpy(&mut row[..m], l, &above[(j - i0) * m..]);
                    }
                }
            }
        }
        // Backward: U · X = Y, from the last block row up.
        let mut i1 = n;
        while i1 > 0 {
            let i0 = i1.saturating_sub(SOLVE_BLOCK);
            let (head, below) = x.split_at_mut(i1 * m);
            let cur = &mut head[i0 * m..];
            if i1 < n {
                gemm_strided(
                    (i1 - i0, m, n - i1),
                    cur,
                    m,
                    true,
                    &lu[i0 * n + i1..],
                    n,
                    below,
                    m,
                    1.0,
                    -1.0,
                );
            }
            for i in (i0..i1).rev() {
                let (row_part, after) = cur.split_at_mut((i - i0 + 1) * m);
                let row = &mut row_part[(i - i0) * m..];
                for j in i + 1..i1 {
                    let u = lu[i * n + j];
                    if u != 0.0 {
                        axpy(row, u, &after[(j - i - 1) * m..]);
                    }
                }
                let d = lu[i * n + i];
                row.iter_mut().for_each(|y| *y /= d);
            }
            i1 = i0;
        }
        x
    }
}

impl Drop for Lu {
    fn drop(&mut self) {
        release(std::mem::take(&mut self.lu));
    }
}

/// For each matrix of a `[batch.., r, c]` output, the index of the operand matrix it reads
/// when the operand's batch axes `own` broadcast (numpy rules) to `out`.
pub(super) fn broadcast_batches(own: &[usize], out: &[usize]) -> Result<Vec<usize>, String> {
    let lead = out
        .len()
        .checked_sub(own.len())
        .ok_or_else(|| format!("batch axes {own:?} do not broadcast to {out:?}"))?;
    let total: usize = out.iter().product();
    let mut result = Vec::with_capacity(total);
    for flat in 0..total {
        let (mut rem, mut idx, mut stride) = (flat, 0usize, 1usize);
        for ax in (0..out.len()).rev() {
            let i = rem % out[ax];
            rem /= out[ax];
            if ax >= lead {
                let d = own[ax - lead];
                if d != 1 && d != out[ax] {
                    return Err(format!("batch axes {own:?} do not broadcast to {out:?}"));
                }
                idx += if d == 1 { 0 } else { i * stride };
                stride *= d;
            }
        }
        result.push(idx);
    }
    Ok(result)
}

/// Round f64 results to `dtype` (f32 or f64) as a value of `shape`.
pub(super) fn float_value(dtype: DType, shape: &[usize], data: Vec<f64>) -> Result<Value, String> {
    let v = match dtype {
        DType::F64 => Value::from_vec(shape, data),
        DType::F32 => Value::from_vec(shape, data.into_iter().map(|x| x as f32).collect()),
        d => return Err(format!("expected a float dtype, got {d}")),
    };
    v.map_err(|e| format!("internal error: {e}"))
}

/// `solve(a, b)`: `x` with `a · x = b` for every matrix of the (broadcast) batch; `a` is
/// `[.., n, n]`, `b` is `[.., n, k]`, the output `[out_batch.., n, k]`.
pub(in crate::interpreter) fn solve(
    a: &Value,
    b: &Value,
    out_shape: &[usize],
) -> Result<Value, String> {
    let (ra, rb) = (a.ndim_checked()?, b.ndim_checked()?);
    let n = a.shape()[ra - 1];
    let k = b.shape()[rb - 1];
    let out_batch = &out_shape[..out_shape.len() - 2];
    let a_idx = broadcast_batches(&a.shape()[..ra - 2], out_batch)?;
    let b_idx = broadcast_batches(&b.shape()[..rb - 2], out_batch)?;
    let (ad, bd) = (a.to_f64_vec(), b.to_f64_vec());
    let mut out = Vec::with_capacity(out_shape.iter().product());
    // Consecutive output matrices often share `a` (a broadcast over b's batch): factor once.
    let mut cached: Option<(usize, Lu)> = None;
    for (batch, (&ia, &ib)) in a_idx.iter().zip(&b_idx).enumerate() {
        if cached.as_ref().is_none_or(|(i, _)| *i != ia) {
            let m = ad[ia * n * n..(ia + 1) * n * n].to_vec();
            let lu = Lu::factor(m, n).map_err(|col| {
                format!(
                    "solve: matrix {batch} of a (shape {:?}) is singular: the pivot of column {col} is exactly zero after partial pivoting; expected an invertible matrix",
                    a.shape()
                )
            })?;
            cached = Some((ia, lu));
        }
        let lu = &cached.as_ref().expect("just set").1;
        let x = lu.solve(&bd[ib * n * k..(ib + 1) * n * k], k);
        out.extend_from_slice(&x);
        release(x);
    }
    float_value(a.dtype(), out_shape, out)
}

/// The rank of a value that must be a (batched) matrix.
trait NdimChecked {
    fn ndim_checked(&self) -> Result<usize, String>;
}

impl NdimChecked for Value {
    fn ndim_checked(&self) -> Result<usize, String> {
        let r = self.shape().len();
        if r < 2 {
            Err(format!("expected a matrix, got shape {:?}", self.shape()))
        } else {
            Ok(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], n: usize, m: usize, k: usize) -> Vec<f64> {
        let mut c = vec![0.0; n * m];
        for i in 0..n {
            for j in 0..m {
                c[i * m + j] = (0..k).map(|t| a[i * k + t] * b[t * m + j]).sum();
            }
        }
        c
    }

    #[test]
    fn blocked_lu_solves_across_block_boundaries() {
        let mut s = 1u64;
        let mut r = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        for &(n, m) in &[(1, 1), (3, 2), (33, 5), (70, 70), (100, 3)] {
            let a: Vec<f64> = (0..n * n).map(|_| r()).collect();
            let x: Vec<f64> = (0..n * m).map(|_| r()).collect();
            let b = naive(&a, &x, n, m, n);
            let got = Lu::factor(a, n).unwrap().solve(&b, m);
            let err = got
                .iter()
                .zip(&x)
                .map(|(g, w)| (g - w).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-9, "n={n} m={m}: error {err}");
        }
    }

    #[test]
    fn singular_matrix_names_the_column() {
        let a = vec![1.0, 2.0, 2.0, 4.0];
        assert_eq!(Lu::factor(a, 2).err(), Some(1));
        assert_eq!(Lu::factor(vec![0.0; 9], 3).err(), Some(0));
    }

    #[test]
    fn batches_broadcast() {
        assert_eq!(broadcast_batches(&[], &[2, 3]).unwrap(), vec![0; 6]);
        assert_eq!(
            broadcast_batches(&[3], &[2, 3]).unwrap(),
            vec![0, 1, 2, 0, 1, 2]
        );
        assert_eq!(
            broadcast_batches(&[2, 1], &[2, 3]).unwrap(),
            vec![0, 0, 0, 1, 1, 1]
        );
        assert!(broadcast_batches(&[4], &[2, 3]).is_err());
    }
}
