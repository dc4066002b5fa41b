//! The CUDA C prelude shared by every generated kernel: scalar helpers with the op table's
//! semantics (NaN-propagating maximum, floor modulo, wrapping and saturating integer
//! conversions, `/0 → 0` for integers) and the warp/block reductions.
//!
//! It only uses what NVRTC provides without headers (CUDA's device math functions,
//! `__shfl_down_sync`, `__syncthreads`, `atomicCAS`), so it compiles with NVRTC as is and,
//! with a small stub header defining those, with any C++ compiler (the syntax test).

/// The prelude's source.
pub const PRELUDE: &str = r#"// Flumen CUDA prelude (generated code; semantics: docs/cuda.md).
typedef unsigned char fl_u8;
typedef long long fl_i64;
typedef unsigned long long fl_u64;

#define FL_DEV static __device__ __forceinline__

// NaN-propagating maximum/minimum; +0 is above -0 (BinaryOp::Maximum/Minimum).
FL_DEV float fl_max(float a, float b) { return (isnan(a) || isnan(b)) ? a + b : (a == b ? (signbit(a) ? b : a) : (a > b ? a : b)); }
FL_DEV double fl_max(double a, double b) { return (isnan(a) || isnan(b)) ? a + b : (a == b ? (signbit(a) ? b : a) : (a > b ? a : b)); }
FL_DEV float fl_min(float a, float b) { return (isnan(a) || isnan(b)) ? a + b : (a == b ? (signbit(a) ? a : b) : (a < b ? a : b)); }
FL_DEV double fl_min(double a, double b) { return (isnan(a) || isnan(b)) ? a + b : (a == b ? (signbit(a) ? a : b) : (a < b ? a : b)); }
FL_DEV int fl_max(int a, int b) { return a > b ? a : b; }
FL_DEV int fl_min(int a, int b) { return a < b ? a : b; }
FL_DEV fl_i64 fl_max(fl_i64 a, fl_i64 b) { return a > b ? a : b; }
FL_DEV fl_i64 fl_min(fl_i64 a, fl_i64 b) { return a < b ? a : b; }
FL_DEV unsigned fl_max(unsigned a, unsigned b) { return a > b ? a : b; }
FL_DEV unsigned fl_min(unsigned a, unsigned b) { return a < b ? a : b; }

// Sums and products: IEEE for floats, wrapping for integers.
FL_DEV float fl_sum(float a, float b) { return a + b; }
FL_DEV double fl_sum(double a, double b) { return a + b; }
FL_DEV int fl_sum(int a, int b) { return (int)((unsigned)a + (unsigned)b); }
FL_DEV fl_i64 fl_sum(fl_i64 a, fl_i64 b) { return (fl_i64)((fl_u64)a + (fl_u64)b); }
FL_DEV unsigned fl_sum(unsigned a, unsigned b) { return a + b; }
FL_DEV float fl_prod(float a, float b) { return a * b; }
FL_DEV double fl_prod(double a, double b) { return a * b; }
FL_DEV int fl_prod(int a, int b) { return (int)((unsigned)a * (unsigned)b); }
FL_DEV fl_i64 fl_prod(fl_i64 a, fl_i64 b) { return (fl_i64)((fl_u64)a * (fl_u64)b); }
FL_DEV unsigned fl_prod(unsigned a, unsigned b) { return a * b; }

// Floor modulo: the result has the divisor's sign.
FL_DEV float fl_mod(float a, float b) { float r = fmodf(a, b); return (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) ? r + b : r; }
FL_DEV double fl_mod(double a, double b) { double r = fmod(a, b); return (r != 0.0 && ((r < 0.0) != (b < 0.0))) ? r + b : r; }
// Integer division and modulo in i64, wrapping; x / 0 = x % 0 = 0.
FL_DEV fl_i64 fl_idiv(fl_i64 a, fl_i64 b) { return b == 0 ? 0 : (b == -1 ? (fl_i64)(0ull - (fl_u64)a) : a / b); }
FL_DEV fl_i64 fl_imod(fl_i64 a, fl_i64 b) {
  if (b == 0 || b == -1) return 0;
  fl_i64 r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
// Integer power, wrapping; negative exponents give 0 except for bases 1 and -1.
FL_DEV fl_i64 fl_ipow(fl_i64 a, fl_i64 b) {
  if (b < 0) return a == 1 ? 1 : (a == -1 ? ((b & 1) ? -1 : 1) : 0);
  fl_u64 e = b > 4294967295ll ? 4294967295ull : (fl_u64)b;
  fl_u64 base = (fl_u64)a, acc = 1;
  while (e) { if (e & 1) acc *= base; base *= base; e >>= 1; }
  return (fl_i64)acc;
}

// Float to integer: truncation, saturating at the type's range, NaN to 0 (Rust `as`).
FL_DEV int fl_f2i32(double x) { return isnan(x) ? 0 : (x <= -2147483648.0 ? (-2147483647 - 1) : (x >= 2147483647.0 ? 2147483647 : (int)x)); }
FL_DEV fl_i64 fl_f2i64(double x) { return isnan(x) ? 0 : (x <= -9223372036854775808.0 ? (-9223372036854775807ll - 1) : (x >= 9223372036854775808.0 ? 9223372036854775807ll : (fl_i64)x)); }
FL_DEV fl_u8 fl_f2u8(double x) { return isnan(x) ? 0 : (x <= 0.0 ? 0 : (x >= 255.0 ? 255 : (fl_u8)x)); }

// Numerically stable logistic function and softplus.
FL_DEV float fl_sigmoid(float x) { if (x >= 0.0f) return 1.0f / (1.0f + expf(-x)); float e = expf(x); return e / (1.0f + e); }
FL_DEV double fl_sigmoid(double x) { if (x >= 0.0) return 1.0 / (1.0 + exp(-x)); double e = exp(x); return e / (1.0 + e); }
FL_DEV float fl_softplus(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }
FL_DEV double fl_softplus(double x) { return fmax(x, 0.0) + log1p(exp(-fabs(x))); }
FL_DEV float fl_sign(float x) { return (isnan(x) || x == 0.0f) ? x : (x > 0.0f ? 1.0f : -1.0f); }
FL_DEV double fl_sign(double x) { return (isnan(x) || x == 0.0) ? x : (x > 0.0 ? 1.0 : -1.0); }

// Block-wide reductions: a warp shuffle tree, one partial per warp in shared memory, a
// final warp. Every thread of the block must call them; every thread gets the result.
// blockDim.x is a multiple of 32 and at most 1024; `sm` holds 32 elements.
#define FL_BLOCK_REDUCE(NAME, OP)                                                  \
  template <class T> static __device__ T NAME(T v, T ident, T* sm) {               \
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;              \
    for (int off = 16; off > 0; off >>= 1) v = OP(v, __shfl_down_sync(0xffffffffu, v, off)); \
    if (lane == 0) sm[warp] = v;                                                   \
    __syncthreads();                                                               \
    if (warp == 0) {                                                               \
      v = threadIdx.x < (blockDim.x >> 5) ? sm[lane] : ident;                      \
      for (int off = 16; off > 0; off >>= 1) v = OP(v, __shfl_down_sync(0xffffffffu, v, off)); \
      if (lane == 0) sm[0] = v;                                                    \
    }                                                                              \
    __syncthreads();                                                               \
    v = sm[0];                                                                     \
    __syncthreads();                                                               \
    return v;                                                                      \
  }
FL_BLOCK_REDUCE(fl_block_sum, fl_sum)
FL_BLOCK_REDUCE(fl_block_prod, fl_prod)
FL_BLOCK_REDUCE(fl_block_max, fl_max)
FL_BLOCK_REDUCE(fl_block_min, fl_min)

// Records the first bad index of a run (the host names the op from `site`).
FL_DEV void fl_flag(int* err, int site) { atomicCAS(err, 0, site); }
"#;
