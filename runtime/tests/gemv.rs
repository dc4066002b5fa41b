//! The small-m matrix-product kernels (m ≤ 4: AVX-512 and portable) and `gemm`, through
//! `matmul_into_with`, against a naive reference and the interpreter: every m, k and n
//! around the vector widths (incl. 1), both transposes, batches with broadcast operands,
//! the fused-epilogue contract (every element exactly once, after it is computed), split
//! columns in multi-thread pools, f32 and f64.
//!
//! Tolerances: the kernels sum in another order than the reference, so an element may
//! differ by up to `k·ε·Σₚ|a(i,p)·b(p,j)|` (ε = machine epsilon of the dtype: twice the
//! worst-case rounding bound of a length-k dot product). With small integer inputs every
//! partial sum is exact, and the results must match bit for bit.

use flumen_frontend::op::{Op, TensorType};
use flumen_frontend::{DType, Value};
use flumen_runtime::exec::{
    GemvImpl, KernelFn, MatMulDims, MatMulKernel, choose_kernel, matmul_into_with,
};
use flumen_runtime::{EvalContext, eval_op};
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};

/// f32 or f64.
trait Float: Copy + Default + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    const DTYPE: DType;
    const EPS: f64;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn value(shape: &[usize], data: Vec<Self>) -> Value;
    fn data(v: &Value) -> Vec<Self>;
    const EPILOGUE: KernelFn;
}

macro_rules! float {
    ($t:ty, $dt:ident, $epi:ident) => {
        impl Float for $t {
            const DTYPE: DType = DType::$dt;
            const EPS: f64 = <$t>::EPSILON as f64;
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn value(shape: &[usize], data: Vec<Self>) -> Value {
                Value::$dt(ArrayD::from_shape_vec(IxDyn(shape), data).unwrap())
            }
            fn data(v: &Value) -> Vec<Self> {
                match v {
                    Value::$dt(a) => a.iter().copied().collect(),
                    other => panic!("expected {}, got {}", DType::$dt, other.dtype()),
                }
            }
            const EPILOGUE: KernelFn = $epi;
        }

        /// Epilogue `out[i] = max(c[i] + bias[i mod n], 0)`, counting visits in `hits`.
        /// args: [c, bias, out, hits (AtomicU32), n (one usize)].
        unsafe extern "C" fn $epi(args: *const *mut u8, begin: usize, end: usize) {
            unsafe {
                let c = *args as *const $t;
                let bias = *args.add(1) as *const $t;
                let out = *args.add(2) as *mut $t;
                let hits = *args.add(3) as *const AtomicU32;
                let n = *(*args.add(4) as *const usize);
                for i in begin..end {
                    *out.add(i) = (*c.add(i) + *bias.add(i % n)).max(0.0);
                    (*hits.add(i)).fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    };
}
float!(f32, F32, epilogue_f32);
float!(f64, F64, epilogue_f64);

/// One product's operands, stored as `dims` says.
struct Case<T> {
    d: MatMulDims,
    a: Vec<T>,
    b: Vec<T>,
}

/// Deterministic values: small integers (exact sums) or uniform in [-1, 1).
fn fill<T: Float>(len: usize, seed: u64, ints: bool) -> Vec<T> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            T::from_f64(if ints {
                (u * 7.0).floor() - 3.0
            } else {
                2.0 * u - 1.0
            })
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn case<T: Float>(
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
    broadcast: (bool, bool),
    seed: u64,
    ints: bool,
) -> Case<T> {
    let d = MatMulDims {
        batch,
        m,
        n,
        k,
        transpose_a: ta,
        transpose_b: tb,
        a_batch_stride: if broadcast.0 { 0 } else { m * k },
        b_batch_stride: if broadcast.1 { 0 } else { k * n },
    };
    let a_len = if broadcast.0 { m * k } else { batch * m * k };
    let b_len = if broadcast.1 { k * n } else { batch * k * n };
    Case {
        d,
        a: fill(a_len, seed, ints),
        b: fill(b_len, seed ^ 0xABCD, ints),
    }
}

impl<T: Float> Case<T> {
    fn a_at(&self, bi: usize, i: usize, p: usize) -> f64 {
        let base = bi * self.d.a_batch_stride;
        let off = if self.d.transpose_a {
            p * self.d.m + i
        } else {
            i * self.d.k + p
        };
        self.a[base + off].to_f64()
    }
    fn b_at(&self, bi: usize, p: usize, j: usize) -> f64 {
        let base = bi * self.d.b_batch_stride;
        let off = if self.d.transpose_b {
            j * self.d.k + p
        } else {
            p * self.d.n + j
        };
        self.b[base + off].to_f64()
    }

    /// The naive product in f64 and, per element, the tolerance `k·ε·Σ|a·b|`.
    fn reference(&self) -> (Vec<f64>, Vec<f64>) {
        let MatMulDims { batch, m, n, k, .. } = self.d;
        let mut out = Vec::with_capacity(batch * m * n);
        let mut tol = Vec::with_capacity(batch * m * n);
        for bi in 0..batch {
            for i in 0..m {
                for j in 0..n {
                    let (mut s, mut abs) = (0.0, 0.0);
                    for p in 0..k {
                        let x = self.a_at(bi, i, p) * self.b_at(bi, p, j);
                        s += x;
                        abs += x.abs();
                    }
                    out.push(s);
                    tol.push(k as f64 * T::EPS * abs);
                }
            }
        }
        (out, tol)
    }

    /// Run `kernel` (with the test epilogue when `bias` is given); returns the kernel that
    /// ran, `c`, and the epilogue's output and visit counts.
    fn run(
        &self,
        kernel: MatMulKernel,
        bias: Option<&[T]>,
    ) -> (MatMulKernel, Vec<T>, Vec<T>, Vec<u32>) {
        let numel = self.d.batch * self.d.m * self.d.n;
        // NaN-filled, so an element the kernel never writes cannot pass.
        let mut c = vec![T::from_f64(f64::NAN); numel];
        let mut out = vec![T::from_f64(f64::NAN); numel];
        let hits: Vec<AtomicU32> = (0..numel).map(|_| AtomicU32::new(0)).collect();
        let n = self.d.n;
        let args: [*mut u8; 5] = [
            c.as_mut_ptr().cast(),
            bias.map_or(std::ptr::null(), |b| b.as_ptr()) as *mut u8,
            out.as_mut_ptr().cast(),
            hits.as_ptr() as *mut u8,
            &n as *const usize as *mut u8,
        ];
        let epi = bias.map(|_| (T::EPILOGUE, args.as_ptr()));
        // SAFETY: a, b and c have the sizes `d` implies; the epilogue's buffers hold
        // batch·m·n elements (bias n).
        let ran = unsafe {
            matmul_into_with(
                kernel,
                T::DTYPE,
                self.a.as_ptr().cast(),
                self.b.as_ptr().cast(),
                c.as_mut_ptr().cast(),
                &self.d,
                epi,
            )
        };
        let hits = hits.into_iter().map(AtomicU32::into_inner).collect();
        (ran, c, out, hits)
    }
}

/// Whether this CPU runs the AVX-512 kernels.
fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The kernels to compare on this CPU (AVX-512 only where it runs).
fn kernels() -> Vec<MatMulKernel> {
    let mut ks = vec![MatMulKernel::SmallM(GemvImpl::Portable), MatMulKernel::Gemm];
    if has_avx512() {
        ks.insert(0, MatMulKernel::SmallM(GemvImpl::Avx512));
    } else {
        eprintln!("note: this CPU has no AVX-512; only the portable kernels are checked");
    }
    ks
}

fn close(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= tol || (got.is_nan() && want.is_nan())
}

/// Check one case on every kernel (and the epilogue when `with_epilogue`).
fn check<T: Float>(c: &Case<T>, exact: bool, with_epilogue: bool) {
    let (want, tol) = c.reference();
    let n = c.d.n;
    let bias: Vec<T> = fill(n, 77, true);
    for kernel in kernels() {
        let (ran, got, out, hits) = c.run(kernel, with_epilogue.then_some(&bias[..]));
        // Transposed a and b with m > 1 is the one layout the small-m kernels leave to gemm.
        let covered = !(c.d.transpose_a && c.d.transpose_b && c.d.m > 1);
        let expected = if covered { kernel } else { MatMulKernel::Gemm };
        assert_eq!(ran, expected, "{kernel:?} on {:?}", c.d);
        for (idx, ((&g, &w), &t)) in got.iter().zip(&want).zip(&tol).enumerate() {
            let t = if exact { 0.0 } else { t };
            assert!(
                close(g.to_f64(), w, t),
                "{kernel:?} {} {:?}: element {idx} is {g:?}, want {w} (tolerance {t:e})",
                T::DTYPE,
                c.d
            );
        }
        if with_epilogue {
            for (idx, (&o, &h)) in out.iter().zip(&hits).enumerate() {
                assert_eq!(
                    h, 1,
                    "{kernel:?} {:?}: epilogue visited element {idx} {h} times",
                    c.d
                );
                let w = (want[idx] + bias[idx % n].to_f64()).max(0.0);
                // Plus one rounding of the bias add.
                let t = if exact {
                    0.0
                } else {
                    tol[idx] + T::EPS * (want[idx].abs() + bias[idx % n].to_f64().abs())
                };
                assert!(
                    close(o.to_f64(), w, t),
                    "{kernel:?} {:?}: epilogue element {idx} is {o:?}, want {w}",
                    c.d
                );
            }
        }
    }
}

const KS: [usize; 9] = [1, 2, 7, 15, 16, 17, 33, 100, 300];
const NS: [usize; 11] = [1, 3, 8, 15, 16, 17, 31, 47, 129, 300, 301];

fn sweep<T: Float>(ints: bool, pool_threads: usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(pool_threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut seed = 1;
        for m in 1..=4 {
            for &k in &KS {
                for &n in &NS {
                    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                        seed += 1;
                        let c = case::<T>(1, m, k, n, ta, tb, (false, false), seed, ints);
                        check(&c, ints, seed % 3 == 0);
                    }
                }
            }
        }
    });
}

#[test]
fn f32_integers_are_exact_on_every_kernel() {
    sweep::<f32>(true, 1);
}

#[test]
fn f64_integers_are_exact_on_every_kernel() {
    sweep::<f64>(true, 1);
}

#[test]
fn f32_random_within_tolerance() {
    sweep::<f32>(false, 1);
}

#[test]
fn f64_random_within_tolerance() {
    sweep::<f64>(false, 1);
}

#[test]
fn batched_with_broadcast_operands_and_epilogue() {
    let mut seed = 1000;
    for batch in [1, 2, 5] {
        for m in 1..=4 {
            for (k, n) in [(1, 1), (17, 33), (64, 130)] {
                for tb in [false, true] {
                    for broadcast in [(false, false), (true, false), (false, true)] {
                        seed += 1;
                        check(
                            &case::<f32>(batch, m, k, n, false, tb, broadcast, seed, false),
                            false,
                            true,
                        );
                        check(
                            &case::<f64>(batch, m, k, n, true, tb, broadcast, seed, true),
                            true,
                            true,
                        );
                    }
                }
            }
        }
    }
}

/// Large products split their columns over the pool; each piece runs the epilogue on its
/// own columns of every row.
#[test]
fn split_columns_in_multi_thread_pools() {
    for threads in [2, 3, 4] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            for (batch, m, k, n) in [(1, 1, 784, 300), (1, 3, 500, 301), (3, 2, 300, 200)] {
                for tb in [false, true] {
                    check(
                        &case::<f32>(batch, m, k, n, false, tb, (false, true), 5, false),
                        false,
                        true,
                    );
                    check(
                        &case::<f64>(batch, m, k, n, false, tb, (false, true), 6, true),
                        true,
                        true,
                    );
                }
            }
        });
    }
}

/// The bits do not depend on the pool: a split product (any number of pieces) equals the
/// single-thread one exactly, on every kernel (JIT sessions and AOT libraries run on
/// different pools and must agree bit for bit).
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    let mut seed = 500;
    for m in 1..=4 {
        for (k, n) in [(784, 300), (700, 10), (1000, 131), (257, 1000)] {
            for tb in [false, true] {
                seed += 1;
                let c = case::<f32>(2, m, k, n, false, tb, (false, true), seed, false);
                let d = case::<f64>(1, m, k, n, false, tb, (false, false), seed, false);
                for kernel in kernels() {
                    let one = pool(1).install(|| (c.run(kernel, None).1, d.run(kernel, None).1));
                    for threads in [2, 3, 5] {
                        let many = pool(threads)
                            .install(|| (c.run(kernel, None).1, d.run(kernel, None).1));
                        let bits32 = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        let bits64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(
                            bits32(&one.0),
                            bits32(&many.0),
                            "{kernel:?} f32 {:?} t={threads}",
                            c.d
                        );
                        assert_eq!(
                            bits64(&one.1),
                            bits64(&many.1),
                            "{kernel:?} f64 {:?} t={threads}",
                            d.d
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn zero_length_contraction_writes_zeros_then_the_epilogue() {
    for m in 1..=4 {
        check(
            &case::<f32>(2, m, 0, 19, false, false, (false, false), 3, true),
            true,
            true,
        );
        check(
            &case::<f64>(1, m, 0, 5, true, true, (false, false), 4, true),
            true,
            true,
        );
    }
}

#[test]
fn dispatch_covers_small_m_and_leaves_the_rest_to_gemm() {
    let dims = |m, ta, tb| MatMulDims {
        batch: 1,
        m,
        n: 300,
        k: 784,
        transpose_a: ta,
        transpose_b: tb,
        a_batch_stride: 0,
        b_batch_stride: 0,
    };
    let avx = has_avx512();
    let small = if avx {
        MatMulKernel::SmallM(GemvImpl::Avx512)
    } else {
        MatMulKernel::Gemm
    };
    assert_eq!(choose_kernel(&dims(1, false, false)), small);
    assert_eq!(choose_kernel(&dims(4, true, false)), small);
    assert_eq!(choose_kernel(&dims(1, true, true)), small);
    assert_eq!(choose_kernel(&dims(2, false, true)), small);
    // Transposed a with transposed b (m > 1): a is not contiguous along k.
    assert_eq!(choose_kernel(&dims(2, true, true)), MatMulKernel::Gemm);
    assert_eq!(choose_kernel(&dims(5, false, false)), MatMulKernel::Gemm);
    assert_eq!(choose_kernel(&dims(0, false, false)), MatMulKernel::Gemm);
    // Asking for a small-m kernel that does not cover the layout runs gemm (and says so).
    let c = case::<f32>(1, 2, 9, 5, true, true, (false, false), 8, true);
    let (ran, got, _, _) = c.run(MatMulKernel::SmallM(GemvImpl::Portable), None);
    assert_eq!(ran, MatMulKernel::Gemm);
    let (want, _) = c.reference();
    assert_eq!(got.iter().map(|x| x.to_f64()).collect::<Vec<_>>(), want);
}

/// The same products through the reference interpreter's matmul.
#[test]
fn agrees_with_the_interpreter() {
    for (m, k, n, ta, tb) in [
        (1, 784, 300, false, false),
        (1, 300, 10, false, false),
        (2, 37, 45, true, false),
        (3, 64, 17, false, true),
        (4, 1, 1, true, false),
    ] {
        let c = case::<f32>(1, m, k, n, ta, tb, (false, false), 11, false);
        let a_shape = if ta { [k, m] } else { [m, k] };
        let b_shape = if tb { [n, k] } else { [k, n] };
        let want = eval_op(
            &Op::MatMul {
                transpose_a: ta,
                transpose_b: tb,
            },
            &[
                &f32::value(&a_shape, c.a.clone()),
                &f32::value(&b_shape, c.b.clone()),
            ],
            &TensorType {
                dtype: DType::F32,
                shape: vec![m, n],
            },
            EvalContext::default(),
        )
        .unwrap();
        let want = f32::data(&want);
        let (_, tol) = c.reference();
        for kernel in kernels() {
            let (_, got, _, _) = c.run(kernel, None);
            for (idx, ((g, w), t)) in got.iter().zip(&want).zip(&tol).enumerate() {
                // Both sides round: twice the per-side tolerance.
                assert!(
                    close(*g as f64, *w as f64, 2.0 * t),
                    "{kernel:?} {:?}: element {idx} is {g}, interpreter {w}",
                    c.d
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn random_shapes_match_the_reference(
        batch in 1usize..4,
        m in 1usize..=4,
        k in 0usize..200,
        n in 1usize..200,
        ta in any::<bool>(),
        tb in any::<bool>(),
        bcast in (any::<bool>(), any::<bool>()),
        ints in any::<bool>(),
        epilogue in any::<bool>(),
        f64_ in any::<bool>(),
        seed in any::<u64>(),
    ) {
        if f64_ {
            check(&case::<f64>(batch, m, k, n, ta, tb, bcast, seed, ints), ints, epilogue);
        } else {
            check(&case::<f32>(batch, m, k, n, ta, tb, bcast, seed, ints), ints, epilogue);
        }
    }
}
