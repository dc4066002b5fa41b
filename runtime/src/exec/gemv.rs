//! Matrix products with few output rows (m ≤ [`MAX_M`], e.g. batch-1 inference): the
//! `gemm` crate sends these to a GEMV that reads and writes the whole output row once per
//! row of `b`, so they get their own kernels here.
//!
//! - `b` row-major (`[k, n]`): blocks of output columns stay in registers across all of `k`
//!   (`M × V` vector accumulators, `b` streamed once, `a` broadcast one element at a time).
//! - `b` transposed (`[n, k]`, needs `a` contiguous along `k`): blocks of `J` dot products,
//!   vectorised along `k`, reduced horizontally at the end.
//!
//! Two implementations: AVX-512 (`avx512f`, chosen at run time by CPU detection) and a
//! portable one written so that the compiler vectorises it (built with AVX2 + FMA where the
//! CPU has them). The summation order differs from `gemm`'s, so results agree with it to
//! rounding (≈ k·ε·Σ|a·b|), not bit for bit; each element's summation order depends only on
//! the implementation and m, never on the column blocking or the thread count, so a session
//! and an ahead-of-time library on another pool give the same bits. Large products (≥ [`PARALLEL_MACS`]
//! multiply-adds) split their columns over the rayon pool; the epilogue runs on each
//! finished piece.

use super::Shared;
use super::matmul::{Epilogue, MatMulDims};
use std::sync::atomic::{AtomicU8, Ordering};

/// The most output rows the small-m kernels handle.
pub const MAX_M: usize = 4;

/// Products with at least this many multiply-adds split their columns over the pool.
/// (784×300 at batch 1, 235k, is worth it on 2 cores; a fork-join costs a few µs.)
pub const PARALLEL_MACS: usize = 1 << 17;

/// Which small-m implementation to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemvImpl {
    /// AVX-512F intrinsics (x86-64 only; the CPU must have `avx512f`).
    Avx512,
    /// Portable Rust the compiler vectorises (AVX2 + FMA where the CPU has them).
    Portable,
}

/// The best implementation this CPU supports (detected once).
pub fn best_impl() -> GemvImpl {
    static CACHE: AtomicU8 = AtomicU8::new(0);
    match CACHE.load(Ordering::Relaxed) {
        1 => GemvImpl::Avx512,
        2 => GemvImpl::Portable,
        _ => {
            let best = if has_avx512() {
                GemvImpl::Avx512
            } else {
                GemvImpl::Portable
            };
            let code = if best == GemvImpl::Avx512 { 1 } else { 2 };
            CACHE.store(code, Ordering::Relaxed);
            best
        }
    }
}

/// Whether the CPU can run [`GemvImpl::Avx512`].
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the small-m kernels cover `d`: 1 ≤ m ≤ [`MAX_M`], and, for a transposed `b`,
/// `a` contiguous along `k` (not transposed, or m = 1).
pub fn covers(d: &MatMulDims) -> bool {
    (1..=MAX_M).contains(&d.m) && (!d.transpose_b || !d.transpose_a || d.m == 1)
}

/// One product of a batch, restricted to output columns `c0..c1`.
#[derive(Clone, Copy)]
struct Job<T> {
    /// `a(i, p)` at `a + i·a_rs + p·a_cs`.
    a: *const T,
    a_rs: usize,
    a_cs: usize,
    /// Row-major: `b(p, j)` at `b + p·n + j`; transposed: at `b + j·k + p`.
    b: *const T,
    /// `c(i, j)` at `c + i·n + j`.
    c: *mut T,
    m: usize,
    n: usize,
    k: usize,
    transpose_b: bool,
}

/// Element types with small-m kernels.
pub trait GemvElem: Copy + Send + Sync + 'static {
    /// Lanes per 512-bit vector.
    const LANES: usize;
    /// Zero.
    const ZERO: Self;
    /// `acc + x·y` (rounded once or twice; either is within the tolerance).
    fn mul_add(acc: Self, x: Self, y: Self) -> Self;
    /// `x + y`.
    fn add(x: Self, y: Self) -> Self;
    /// Columns `c0..c1` of `job` with AVX-512.
    ///
    /// # Safety
    /// The CPU must have `avx512f`; `job` must address valid buffers.
    #[doc(hidden)]
    unsafe fn avx512(job: &JobRef<'_, Self>, c0: usize, c1: usize);
}

/// A job as the trait sees it (kept opaque outside this module).
#[doc(hidden)]
pub struct JobRef<'a, T>(&'a Job<T>);

impl GemvElem for f32 {
    const LANES: usize = 16;
    const ZERO: f32 = 0.0;
    #[inline(always)]
    fn mul_add(acc: f32, x: f32, y: f32) -> f32 {
        acc + x * y
    }
    #[inline(always)]
    fn add(x: f32, y: f32) -> f32 {
        x + y
    }
    unsafe fn avx512(job: &JobRef<'_, f32>, c0: usize, c1: usize) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forwarded from the caller.
        unsafe {
            avx512::run_f32(job.0, c0, c1)
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("no AVX-512 off x86-64 ({job:p}, {c0}, {c1})", job = job.0);
    }
}

impl GemvElem for f64 {
    const LANES: usize = 8;
    const ZERO: f64 = 0.0;
    #[inline(always)]
    fn mul_add(acc: f64, x: f64, y: f64) -> f64 {
        acc + x * y
    }
    #[inline(always)]
    fn add(x: f64, y: f64) -> f64 {
        x + y
    }
    unsafe fn avx512(job: &JobRef<'_, f64>, c0: usize, c1: usize) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forwarded from the caller.
        unsafe {
            avx512::run_f64(job.0, c0, c1)
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("no AVX-512 off x86-64 ({job:p}, {c0}, {c1})", job = job.0);
    }
}

/// `c[b] = op(a[b]) · op(b[b])` for every batch `b` with the small-m kernels, then the
/// epilogue on every element (each exactly once, right after it is computed). `d` must be
/// [`covers`]ed; [`GemvImpl::Avx512`] needs [`has_avx512`].
///
/// # Safety
/// As [`matmul_into`](super::matmul_into): the pointers address buffers of the sizes `d`
/// implies, `c` overlaps neither input, and the epilogue's arguments cover its accesses.
pub unsafe fn gemv_into<T: GemvElem>(
    imp: GemvImpl,
    a: *const T,
    b: *const T,
    c: *mut T,
    d: &MatMulDims,
    epilogue: Option<Epilogue>,
) {
    debug_assert!(covers(d));
    debug_assert!(imp != GemvImpl::Avx512 || has_avx512());
    let (m, n, k) = (d.m, d.n, d.k);
    let (a_rs, a_cs) = if d.transpose_a { (1, m) } else { (k, 1) };
    let job = move |bi: usize| Job {
        a: a.wrapping_add(bi * d.a_batch_stride),
        a_rs,
        a_cs,
        b: b.wrapping_add(bi * d.b_batch_stride),
        c: c.wrapping_add(bi * m * n),
        m,
        n,
        k,
        transpose_b: d.transpose_b,
    };
    let threads = rayon::current_num_threads();
    let macs = d.batch * m * n * k;
    // Column pieces per product: enough tasks for every thread, each piece ≥ 4 vectors.
    let pieces = if threads > 1 && macs >= PARALLEL_MACS {
        threads
            .div_ceil(d.batch)
            .min(n.div_ceil(4 * T::LANES))
            .max(1)
    } else {
        1
    };
    let epi = epilogue.map(Shared);
    // SAFETY (both closures): each task writes columns c0..c1 of one product, disjoint from
    // every other task's, then runs the epilogue on exactly those elements.
    let task = move |bi: usize, c0: usize, c1: usize| unsafe {
        let j = job(bi);
        run_cols(imp, &j, c0, c1);
        if let Some((f, args)) = epi.map(Shared::get) {
            if c0 == 0 && c1 == n {
                f(args, bi * m * n, (bi + 1) * m * n);
            } else {
                for i in 0..m {
                    let row = (bi * m + i) * n;
                    f(args, row + c0, row + c1);
                }
            }
        }
    };
    if pieces == 1 && (d.batch == 1 || threads == 1 || macs < PARALLEL_MACS) {
        for bi in 0..d.batch {
            task(bi, 0, n);
        }
        return;
    }
    // Piece boundaries on whole vectors, so only the last piece has a partial one.
    let width = n.div_ceil(pieces).next_multiple_of(T::LANES);
    let tasks: Vec<(usize, usize, usize)> = (0..d.batch)
        .flat_map(|bi| {
            (0..n)
                .step_by(width.max(1))
                .map(move |c0| (bi, c0, (c0 + width).min(n)))
        })
        .collect();
    let task = Shared(task);
    use rayon::prelude::*;
    tasks
        .par_iter()
        .for_each(move |&(bi, c0, c1)| (task.get())(bi, c0, c1));
}

/// Columns `c0..c1` of one product.
///
/// # Safety
/// As [`gemv_into`].
unsafe fn run_cols<T: GemvElem>(imp: GemvImpl, job: &Job<T>, c0: usize, c1: usize) {
    if c0 >= c1 {
        return;
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        if job.k == 0 {
            for i in 0..job.m {
                std::ptr::write_bytes(job.c.add(i * job.n + c0), 0, c1 - c0);
            }
            return;
        }
        match imp {
            GemvImpl::Avx512 => T::avx512(&JobRef(job), c0, c1),
            GemvImpl::Portable => portable::run(job, c0, c1),
        }
    }
}

/// The portable kernels: plain loops over fixed-size accumulator arrays that the compiler
/// keeps in vector registers (monomorphised per m).
mod portable {
    use super::{GemvElem, Job};

    /// Output columns per register block.
    const W: usize = 32;
    /// Dot products per block (transposed `b`).
    const J: usize = 4;
    /// Partial sums per dot product (so the compiler can vectorise along `k`).
    const P: usize = 16;

    /// Columns `c0..c1` of `job`.
    ///
    /// # Safety
    /// `job` addresses valid buffers; 1 ≤ m ≤ 4, k ≥ 1.
    pub(super) unsafe fn run<T: GemvElem>(job: &Job<T>, c0: usize, c1: usize) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA; the rest is forwarded.
            return unsafe { run_avx2(job, c0, c1) };
        }
        // SAFETY: forwarded from the caller.
        unsafe { run_any(job, c0, c1) }
    }

    /// [`run_any`] compiled for AVX2 + FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2<T: GemvElem>(job: &Job<T>, c0: usize, c1: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { run_any(job, c0, c1) }
    }

    #[inline(always)]
    unsafe fn run_any<T: GemvElem>(job: &Job<T>, c0: usize, c1: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            match (job.m, job.transpose_b) {
                (1, false) => rows::<T, 1>(job, c0, c1),
                (2, false) => rows::<T, 2>(job, c0, c1),
                (3, false) => rows::<T, 3>(job, c0, c1),
                (4, false) => rows::<T, 4>(job, c0, c1),
                (1, true) => dots::<T, 1>(job, c0, c1),
                (2, true) => dots::<T, 2>(job, c0, c1),
                (3, true) => dots::<T, 3>(job, c0, c1),
                (4, true) => dots::<T, 4>(job, c0, c1),
                _ => unreachable!("m is checked by `covers`"),
            }
        }
    }

    /// Row-major `b`: `W` columns at a time, accumulated across all of `k`.
    #[inline(always)]
    unsafe fn rows<T: GemvElem, const M: usize>(job: &Job<T>, c0: usize, c1: usize) {
        let mut j = c0;
        // SAFETY (both calls): columns j..j+W (or j..c1) lie below c1 ≤ n.
        unsafe {
            while j + W <= c1 {
                row_block::<T, M>(job, j);
                j += W;
            }
            if j < c1 {
                row_tail::<T, M>(job, j, c1);
            }
        }
    }

    /// Row-major `b`, columns `j..j + W`: fixed-size rows, so the compiler vectorises the
    /// inner loop and keeps `acc` in registers.
    #[inline(always)]
    unsafe fn row_block<T: GemvElem, const M: usize>(job: &Job<T>, j: usize) {
        let (n, k) = (job.n, job.k);
        let mut acc = [[T::ZERO; W]; M];
        // SAFETY: row p of b at columns j..j+W, a(i, p), and row i of c are inside the
        // buffers (j + W ≤ n).
        unsafe {
            for p in 0..k {
                let brow = &*(job.b.add(p * n + j) as *const [T; W]);
                for (i, acc) in acc.iter_mut().enumerate() {
                    let x = *job.a.add(i * job.a_rs + p * job.a_cs);
                    for q in 0..W {
                        acc[q] = T::mul_add(acc[q], x, brow[q]);
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                std::ptr::copy_nonoverlapping(acc.as_ptr(), job.c.add(i * n + j), W);
            }
        }
    }

    /// Row-major `b`, the last columns `j..c1` (fewer than `W`).
    #[inline(always)]
    unsafe fn row_tail<T: GemvElem, const M: usize>(job: &Job<T>, j: usize, c1: usize) {
        let (n, k, w) = (job.n, job.k, c1 - j);
        let mut acc = [[T::ZERO; W]; M];
        // SAFETY: as `row_block`, for columns j..c1.
        unsafe {
            for p in 0..k {
                let brow = std::slice::from_raw_parts(job.b.add(p * n + j), w);
                for (i, acc) in acc.iter_mut().enumerate() {
                    let x = *job.a.add(i * job.a_rs + p * job.a_cs);
                    for (s, &y) in acc.iter_mut().zip(brow) {
                        *s = T::mul_add(*s, x, y);
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                std::ptr::copy_nonoverlapping(acc.as_ptr(), job.c.add(i * n + j), w);
            }
        }
    }

    /// Transposed `b` (`a` contiguous along `k`): `J` dot products at a time.
    #[inline(always)]
    unsafe fn dots<T: GemvElem, const M: usize>(job: &Job<T>, c0: usize, c1: usize) {
        let (n, k) = (job.n, job.k);
        // SAFETY: row i of a has k contiguous elements (checked by `covers`).
        let arow = |i: usize| unsafe { std::slice::from_raw_parts(job.a.add(i * job.a_rs), k) };
        let brow = |j: usize| unsafe { std::slice::from_raw_parts(job.b.add(j * k), k) };
        let mut j = c0;
        while j < c1 {
            let jw = (c1 - j).min(J);
            let mut acc = [[[T::ZERO; P]; J]; M];
            for (i, acc) in acc.iter_mut().enumerate() {
                let ai = arow(i);
                for (jj, acc) in acc.iter_mut().enumerate().take(jw) {
                    let bj = brow(j + jj);
                    let mut ca = ai.chunks_exact(P);
                    let mut cb = bj.chunks_exact(P);
                    for (xa, xb) in (&mut ca).zip(&mut cb) {
                        for q in 0..P {
                            acc[q] = T::mul_add(acc[q], xa[q], xb[q]);
                        }
                    }
                    for (q, (&x, &y)) in ca.remainder().iter().zip(cb.remainder()).enumerate() {
                        acc[q] = T::mul_add(acc[q], x, y);
                    }
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                for (jj, acc) in acc.iter().enumerate().take(jw) {
                    let mut s = T::ZERO;
                    for &x in acc {
                        s = T::add(s, x);
                    }
                    // SAFETY: c(i, j + jj) is inside c.
                    unsafe { *job.c.add(i * n + j + jj) = s };
                }
            }
            j += jw;
        }
    }
}

/// The AVX-512 kernels, one copy per element type (`f32` in 16 lanes, `f64` in 8).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Job;

    macro_rules! kernels {
        ($name:ident, $t:ty, $vec:ty, $mask:ty, $lanes:expr,
         $zero:ident, $set1:ident, $load:ident, $mload:ident, $fmadd:ident, $addv:ident,
         $store:ident, $mstore:ident, $reduce:ident) => {
            /// Columns `c0..c1` of `job` (1 ≤ m ≤ 4, k ≥ 1).
            ///
            /// # Safety
            /// The CPU has `avx512f`; `job` addresses valid buffers.
            #[target_feature(enable = "avx512f")]
            pub(super) unsafe fn $name(job: &Job<$t>, c0: usize, c1: usize) {
                #[allow(unused_imports)]
                use std::arch::x86_64::*;
                const L: usize = $lanes;

                /// A mask of the first `r` lanes (1 ≤ r ≤ L).
                #[inline(always)]
                fn lanes(r: usize) -> $mask {
                    if r >= L {
                        !0
                    } else {
                        ((1u32 << r) - 1) as $mask
                    }
                }

                /// Row-major `b`: columns `j..j + NV·L` (the last vector masked by `last`),
                /// all `M` rows, accumulated across all of `k` in registers. For m ≤ 2,
                /// two independent sets of accumulators (even and odd `p`) let the FMAs of
                /// short blocks overlap. The set count depends on `M` only, never on the
                /// block, so every column is summed in the same order however the columns
                /// are split into blocks and threads (results do not depend on the pool).
                #[target_feature(enable = "avx512f")]
                #[inline]
                unsafe fn block<const M: usize, const NV: usize>(
                    job: &Job<$t>,
                    j: usize,
                    last: $mask,
                ) {
                    let sets = if M <= 2 { 2 } else { 1 };
                    let (n, k) = (job.n, job.k);
                    let mut acc = [[[$zero(); NV]; M]; 2];
                    // SAFETY: rows 0..k of b at columns j..j+NV·L (last vector masked),
                    // a(i, p) for i < M, p < k, and row i of c are inside the buffers.
                    unsafe {
                        let b = job.b.add(j);
                        let step = |p: usize, acc: &mut [[$vec; NV]; M]| {
                            let bp = b.add(p * n);
                            let mut bv = [$zero(); NV];
                            for (v, bv) in bv.iter_mut().enumerate() {
                                *bv = if v + 1 < NV {
                                    $load(bp.add(v * L))
                                } else {
                                    $mload(last, bp.add(v * L))
                                };
                            }
                            for (i, acc) in acc.iter_mut().enumerate() {
                                let x = $set1(*job.a.add(i * job.a_rs + p * job.a_cs));
                                for (s, &y) in acc.iter_mut().zip(&bv) {
                                    *s = $fmadd(x, y, *s);
                                }
                            }
                        };
                        let mut p = 0;
                        while p + sets <= k {
                            for (s, acc) in acc.iter_mut().enumerate().take(sets) {
                                step(p + s, acc);
                            }
                            p += sets;
                        }
                        while p < k {
                            step(p, &mut acc[0]);
                            p += 1;
                        }
                        for s in 1..sets {
                            for i in 0..M {
                                for v in 0..NV {
                                    acc[0][i][v] = $addv(acc[0][i][v], acc[s][i][v]);
                                }
                            }
                        }
                        for (i, acc) in acc[0].iter().enumerate() {
                            let cp = job.c.add(i * n + j);
                            for (v, &x) in acc.iter().enumerate() {
                                if v + 1 < NV {
                                    $store(cp.add(v * L), x);
                                } else {
                                    $mstore(cp.add(v * L), last, x);
                                }
                            }
                        }
                    }
                }

                /// Row-major `b`, columns `c0..c1`: full blocks of `V` vectors, then one
                /// block of the vectors left.
                #[target_feature(enable = "avx512f")]
                #[inline]
                unsafe fn rows<const M: usize, const V: usize>(
                    job: &Job<$t>,
                    c0: usize,
                    c1: usize,
                ) {
                    let mut j = c0;
                    // SAFETY (all calls): columns j.. stay below c1 ≤ n.
                    unsafe {
                        while j + V * L <= c1 {
                            block::<M, V>(job, j, !0);
                            j += V * L;
                        }
                        let rem = c1 - j;
                        if rem == 0 {
                            return;
                        }
                        let nv = rem.div_ceil(L);
                        let last = lanes(rem - (nv - 1) * L);
                        match nv {
                            1 => block::<M, 1>(job, j, last),
                            2 => block::<M, 2>(job, j, last),
                            3 => block::<M, 3>(job, j, last),
                            4 => block::<M, 4>(job, j, last),
                            5 => block::<M, 5>(job, j, last),
                            6 => block::<M, 6>(job, j, last),
                            7 => block::<M, 7>(job, j, last),
                            _ => block::<M, 8>(job, j, last),
                        }
                    }
                }

                /// Transposed `b`: dot products of the `M` rows of `a` with rows
                /// `j..j + J` of `b`, vectorised along `k` (the tail masked).
                #[target_feature(enable = "avx512f")]
                #[inline]
                unsafe fn dot_block<const M: usize, const J: usize>(job: &Job<$t>, j: usize) {
                    let (n, k) = (job.n, job.k);
                    let mut acc = [[$zero(); J]; M];
                    // SAFETY: rows i < M of a and rows j..j+J of b hold k contiguous
                    // elements each; loads past k are masked off.
                    unsafe {
                        let step = |p: usize, mask: $mask, acc: &mut [[$vec; J]; M]| {
                            let mut av = [$zero(); M];
                            for (i, av) in av.iter_mut().enumerate() {
                                *av = $mload(mask, job.a.add(i * job.a_rs + p));
                            }
                            for jj in 0..J {
                                let bv = $mload(mask, job.b.add((j + jj) * k + p));
                                for i in 0..M {
                                    acc[i][jj] = $fmadd(av[i], bv, acc[i][jj]);
                                }
                            }
                        };
                        let mut p = 0;
                        while p + L <= k {
                            step(p, !0, &mut acc);
                            p += L;
                        }
                        if p < k {
                            step(p, lanes(k - p), &mut acc);
                        }
                        for (i, acc) in acc.iter().enumerate() {
                            for (jj, &x) in acc.iter().enumerate() {
                                *job.c.add(i * n + j + jj) = $reduce(x);
                            }
                        }
                    }
                }

                /// Transposed `b`, columns `c0..c1`.
                #[target_feature(enable = "avx512f")]
                #[inline]
                unsafe fn dots<const M: usize, const J: usize>(
                    job: &Job<$t>,
                    c0: usize,
                    c1: usize,
                ) {
                    let mut j = c0;
                    // SAFETY (all calls): columns j.. stay below c1 ≤ n.
                    unsafe {
                        while j + J <= c1 {
                            dot_block::<M, J>(job, j);
                            j += J;
                        }
                        match c1 - j {
                            0 => {}
                            1 => dot_block::<M, 1>(job, j),
                            2 => dot_block::<M, 2>(job, j),
                            3 => dot_block::<M, 3>(job, j),
                            4 => dot_block::<M, 4>(job, j),
                            5 => dot_block::<M, 5>(job, j),
                            6 => dot_block::<M, 6>(job, j),
                            _ => dot_block::<M, 7>(job, j),
                        }
                    }
                }

                // SAFETY: forwarded from the caller; m ≤ 4 is checked by `covers`.
                unsafe {
                    match (job.m, job.transpose_b) {
                        (1, false) => rows::<1, 8>(job, c0, c1),
                        (2, false) => rows::<2, 4>(job, c0, c1),
                        (3, false) => rows::<3, 5>(job, c0, c1),
                        (4, false) => rows::<4, 4>(job, c0, c1),
                        (1, true) => dots::<1, 8>(job, c0, c1),
                        (2, true) => dots::<2, 8>(job, c0, c1),
                        (3, true) => dots::<3, 4>(job, c0, c1),
                        (4, true) => dots::<4, 4>(job, c0, c1),
                        _ => unreachable!("m is checked by `covers`"),
                    }
                }
            }
        };
    }

    kernels!(
        run_f32,
        f32,
        __m512,
        __mmask16,
        16,
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_maskz_loadu_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_storeu_ps,
        _mm512_mask_storeu_ps,
        _mm512_reduce_add_ps
    );
    kernels!(
        run_f64,
        f64,
        __m512d,
        __mmask8,
        8,
        _mm512_setzero_pd,
        _mm512_set1_pd,
        _mm512_loadu_pd,
        _mm512_maskz_loadu_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_storeu_pd,
        _mm512_mask_storeu_pd,
        _mm512_reduce_add_pd
    );
}
