//! Fused kernels ([`Kernel`]) as CUDA C `__global__` functions.
//!
//! - Kernels without an inner loop (elementwise chains, epilogues, slice stores) run one
//!   thread per outer index in a grid-stride loop.
//! - Kernels with reduce phases or per-inner-element stores (reductions, softmax, layer
//!   norm) run one block per outer index (grid-stride over blocks): the threads split the
//!   inner space, each reduce phase ends in a block reduction (warp shuffles, then shared
//!   memory) whose result every thread sees, and stores over the inner space are split the
//!   same way. Phases that run once per outer index run on thread 0.
//!
//! Addresses are `offset + Σ index·stride` in 64-bit arithmetic with the shapes and
//! strides as literals; every kernel reads and writes exactly what the kernel-IR evaluator
//! does.

use super::scalar::{acc_type, binary, c_type, cast, float_const, int_const, reduce_fns};
use super::scalar::{reduce_init, unary};
use crate::kernel::{Access, Expr, Kernel, Phase, PhaseKind};
use flumen_runtime::cuda::{DeviceKernel, Launch};
use std::fmt::Write;

/// Threads per block of elementwise kernels, and the most of any kernel.
pub const MAX_THREADS: u32 = 256;
/// The most blocks a launch uses; grid-stride loops cover larger spaces.
pub const MAX_BLOCKS: usize = 1 << 20;

/// FNV-1a, 64 bits: a stable hash for kernel sources (the cache key and symbol name).
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Whether the kernel needs a block per outer index (it loops over the inner space).
fn is_block_kernel(k: &Kernel) -> bool {
    k.phases.iter().any(|p| p.over_inner)
}

/// The launch configuration of a kernel.
pub fn launch(k: &Kernel) -> Launch {
    let outer = k.outer_len();
    if is_block_kernel(k) {
        let threads = (k.inner_len().next_power_of_two() as u32).clamp(32, MAX_THREADS);
        Launch {
            blocks: outer.min(MAX_BLOCKS) as u32,
            threads,
        }
    } else {
        Launch {
            blocks: outer.div_ceil(MAX_THREADS as usize).min(MAX_BLOCKS) as u32,
            threads: MAX_THREADS,
        }
    }
}

/// Emit `long long` index variables `{prefix}0..` unravelling the row-major linear index
/// `linear` over `dims`.
pub fn unravel(out: &mut String, indent: &str, prefix: &str, linear: &str, dims: &[usize]) {
    match dims.len() {
        0 => {}
        1 => writeln!(out, "{indent}const fl_i64 {prefix}0 = {linear};").unwrap(),
        n => {
            writeln!(out, "{indent}fl_i64 {prefix}_r = {linear};").unwrap();
            for a in (1..n).rev() {
                writeln!(
                    out,
                    "{indent}const fl_i64 {prefix}{a} = {prefix}_r % {d}; {prefix}_r /= {d};",
                    d = dims[a]
                )
                .unwrap();
            }
            writeln!(out, "{indent}const fl_i64 {prefix}0 = {prefix}_r;").unwrap();
        }
    }
}

/// `offset + Σ idx·stride` for an access (inner strides only inside inner loops).
fn address(a: &Access, over_inner: bool) -> String {
    let mut s = a.offset.to_string();
    let terms = a
        .outer_strides
        .iter()
        .enumerate()
        .map(|(i, &st)| ("o", i, st));
    let inner = a
        .inner_strides
        .iter()
        .enumerate()
        .map(|(i, &st)| ("i", i, st));
    for (p, i, st) in terms.chain(inner.filter(|_| over_inner)) {
        match st {
            0 => {}
            1 => write!(s, " + {p}{i}").unwrap(),
            _ => write!(s, " + {p}{i} * {st}").unwrap(),
        }
    }
    s.strip_prefix("0 + ").map(str::to_string).unwrap_or(s)
}

/// The expressions of phase `pi` as C statements, then its effect.
fn phase_body(out: &mut String, indent: &str, k: &Kernel, pi: usize, p: &Phase) {
    let v = |i: usize| format!("p{pi}e{i}");
    for (i, (e, &d)) in p.exprs.iter().zip(&p.dtypes).enumerate() {
        let rhs = match e {
            Expr::Load(a) => format!("a{a}[{}]", address(&k.accesses[*a], p.over_inner)),
            Expr::FloatConst(x) => float_const(d, *x),
            Expr::IntConst(x) => int_const(d, *x),
            Expr::Unary(op, x) => unary(*op, d, &v(x.0)),
            Expr::Binary(op, a, b) => binary(*op, p.dtypes[a.0], &v(a.0), &v(b.0)),
            Expr::Select(c, a, b) => format!("({} ? {} : {})", v(c.0), v(a.0), v(b.0)),
            Expr::Cast(to, x) => cast(p.dtypes[x.0], *to, &v(x.0)),
            Expr::PhaseResult(r) => format!("r{r}"),
        };
        writeln!(out, "{indent}const {} {} = {rhs};", c_type(d), v(i)).unwrap();
    }
    match &p.kind {
        PhaseKind::Reduce { op, value } => {
            let (combine, _) = reduce_fns(*op);
            let d = p.dtypes[value.0];
            writeln!(
                out,
                "{indent}acc{pi} = {combine}(acc{pi}, ({}){});",
                acc_type(d),
                v(value.0)
            )
            .unwrap();
        }
        PhaseKind::Store { stores } => {
            for (a, e) in stores {
                let acc = &k.accesses[*a];
                writeln!(
                    out,
                    "{indent}a{a}[{}] = {};",
                    address(acc, p.over_inner),
                    v(e.0)
                )
                .unwrap();
            }
        }
    }
}

/// The CUDA C of `k` as a `__global__` function named after the hash of its source.
pub fn emit_kernel(k: &Kernel) -> DeviceKernel {
    // The body is generated with a placeholder name, hashed, then named.
    let mut body = String::new();
    let params: Vec<String> = k
        .accesses
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{}* a{i}", c_type(a.dtype)))
        .collect();
    let outer = k.outer_len();
    let inner = k.inner_len();
    writeln!(
        body,
        "extern \"C\" __global__ void __launch_bounds__({MAX_THREADS}) FL_ENTRY({}) {{",
        params.join(", ")
    )
    .unwrap();
    if is_block_kernel(k) {
        for (pi, p) in k.phases.iter().enumerate() {
            if let PhaseKind::Reduce { value, .. } = &p.kind {
                let t = acc_type(p.dtypes[value.0]);
                writeln!(body, "  __shared__ {t} sm{pi}[32];").unwrap();
            }
        }
        writeln!(
            body,
            "  for (fl_i64 o = blockIdx.x; o < {outer}ll; o += gridDim.x) {{"
        )
        .unwrap();
        unravel(&mut body, "    ", "o", "o", &k.outer);
        for (pi, p) in k.phases.iter().enumerate() {
            match (&p.kind, p.over_inner) {
                (PhaseKind::Reduce { op, value }, _) => {
                    let d = p.dtypes[value.0];
                    let t = acc_type(d);
                    let init = reduce_init(*op, d);
                    writeln!(body, "    {t} acc{pi} = {init};").unwrap();
                    writeln!(
                        body,
                        "    for (fl_i64 it = threadIdx.x; it < {inner}ll; it += blockDim.x) {{"
                    )
                    .unwrap();
                    unravel(&mut body, "      ", "i", "it", &k.inner);
                    phase_body(&mut body, "      ", k, pi, p);
                    writeln!(body, "    }}").unwrap();
                    let (_, block) = reduce_fns(*op);
                    writeln!(
                        body,
                        "    const {} r{pi} = ({}){block}<{t}>(acc{pi}, {init}, sm{pi});",
                        c_type(d),
                        c_type(d)
                    )
                    .unwrap();
                }
                (PhaseKind::Store { .. }, true) => {
                    writeln!(
                        body,
                        "    for (fl_i64 it = threadIdx.x; it < {inner}ll; it += blockDim.x) {{"
                    )
                    .unwrap();
                    unravel(&mut body, "      ", "i", "it", &k.inner);
                    phase_body(&mut body, "      ", k, pi, p);
                    writeln!(body, "    }}").unwrap();
                    writeln!(body, "    __syncthreads();").unwrap();
                }
                (PhaseKind::Store { .. }, false) => {
                    writeln!(body, "    if (threadIdx.x == 0) {{").unwrap();
                    phase_body(&mut body, "      ", k, pi, p);
                    writeln!(body, "    }}").unwrap();
                    writeln!(body, "    __syncthreads();").unwrap();
                }
            }
        }
        writeln!(body, "  }}").unwrap();
    } else {
        writeln!(
            body,
            "  for (fl_i64 o = blockIdx.x * (fl_i64)blockDim.x + threadIdx.x; o < {outer}ll; o += (fl_i64)gridDim.x * blockDim.x) {{"
        )
        .unwrap();
        unravel(&mut body, "    ", "o", "o", &k.outer);
        for (pi, p) in k.phases.iter().enumerate() {
            phase_body(&mut body, "    ", k, pi, p);
        }
        writeln!(body, "  }}").unwrap();
    }
    writeln!(body, "}}").unwrap();
    finish(
        k.name.clone(),
        body,
        k.accesses.iter().map(|a| a.buf).collect(),
        false,
        launch(k),
    )
}

/// Name a kernel body after its hash (`FL_ENTRY(` becomes `fk_<hash>(`).
pub fn finish(
    name: String,
    body: String,
    args: Vec<crate::kernel::BufId>,
    error_flag: bool,
    launch: Launch,
) -> DeviceKernel {
    let hash = fnv1a(&body);
    let entry = format!("fk_{hash:016x}");
    DeviceKernel {
        name,
        source: body.replacen("FL_ENTRY(", &format!("{entry}("), 1),
        entry,
        hash,
        args,
        error_flag,
        launch,
    }
}
