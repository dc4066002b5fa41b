//! The compiler driver: graph + feeds + fetches → a runnable [`Executable`]: the pass
//! pipeline, lowering with fusion, memory planning, and JIT compilation of every kernel.

use crate::codegen::jit::JitKernels;
use crate::kernel::Kernel;
use crate::lower::{self, LStep, Lowered, memory};
use crate::pass::Unit;
use crate::passes::default_pipeline;
use flumen_frontend::op::TensorType;
use flumen_frontend::{GraphDef, GraphError, NodeId, Result};
use flumen_runtime::exec::{Arena, Executable, PlanStep, Step};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What compiling one graph cost and produced.
#[derive(Clone, Debug, Default)]
pub struct CompileReport {
    /// Time in the graph passes.
    pub passes: Duration,
    /// Time lowering (fusion) and planning memory.
    pub lowering: Duration,
    /// Time generating machine code.
    pub codegen: Duration,
    /// Number of steps, kernels and distinct compiled kernels.
    pub steps: usize,
    /// Fused kernels in the executable.
    pub kernels: usize,
    /// Distinct kernels compiled (identical kernels share code).
    pub compiled_kernels: usize,
    /// Elementwise kernels run as matrix-product epilogues.
    pub epilogues: usize,
    /// Steps that fall back to the interpreter.
    pub interpreted: Vec<String>,
    /// Arena bytes after planning, and without reuse.
    pub arena_bytes: (usize, usize),
}

/// JIT code kept alive by an executable. The JIT's memory is process-wide and immutable
/// once finalised, so moving the owner between threads is sound.
struct JitCode(#[allow(dead_code)] JitKernels);
// SAFETY: see the type's documentation; no method is called on it after compilation.
unsafe impl Send for JitCode {}

/// An executable before machine code: the lowered steps with arena offsets planned, and
/// the distinct kernels to compile. [`compile`] JIT-compiles it; the AOT path
/// (`crate::aot`) emits the same kernels into an object file.
pub struct Prepared {
    /// Buffers, steps, feeds, variables, constants and fetches (arena offsets filled in).
    pub lowered: Lowered,
    /// Arena size in bytes.
    pub arena_bytes: usize,
    /// Distinct kernels (identical kernels share code), in first-use order.
    pub distinct: Vec<Kernel>,
    /// For each kernel of the steps in order (kernel steps and matmul epilogues), its index
    /// in `distinct`.
    pub kernel_ids: Vec<usize>,
    /// The report so far (passes and lowering).
    pub report: CompileReport,
}

/// Run the pass pipeline, lower, plan memory and collect the distinct kernels of the
/// subgraph of `def` that `fetches` need (see [`compile`]).
pub fn prepare(def: &GraphDef, feeds: &[NodeId], fetches: &[NodeId]) -> Result<Prepared> {
    let mut report = CompileReport::default();
    let t = Instant::now();
    let feed_types: Vec<(String, TensorType)> = feeds
        .iter()
        .map(|f| (def.node(*f).name.clone(), def.node(*f).ty.clone()))
        .collect();
    let unit = default_pipeline().run(Unit {
        def: def.clone(),
        outputs: fetches.to_vec(),
    })?;
    report.passes = t.elapsed();

    let t = Instant::now();
    let mut lowered = lower::lower(&unit, &feed_types)?;
    let arena_bytes = memory::plan(&mut lowered);
    report.arena_bytes = (arena_bytes, memory::unplanned_bytes(&lowered));
    if std::env::var("FLUMEN_DUMP").is_ok_and(|v| {
        v.split(',')
            .any(|p| p.trim() == "lower" || p.trim() == "all")
    }) {
        eprint!("// steps after lowering ({arena_bytes} arena bytes)\n{lowered}");
    }
    report.lowering = t.elapsed();

    // Identical kernels compile once.
    let mut distinct: Vec<Kernel> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut kernel_ids = Vec::new();
    for s in &lowered.steps {
        let kernel = match s {
            LStep::Kernel(k) => Some(k),
            LStep::MatMul { epilogue, .. } => epilogue.as_ref(),
            _ => None,
        };
        if let Some(k) = kernel {
            let mut key_kernel = k.clone();
            key_kernel.name.clear();
            let key = key_kernel.to_string();
            let i = *index.entry(key).or_insert_with(|| {
                distinct.push(k.clone());
                distinct.len() - 1
            });
            kernel_ids.push(i);
        }
    }
    Ok(Prepared {
        lowered,
        arena_bytes,
        distinct,
        kernel_ids,
        report,
    })
}

/// The lowered steps as [`PlanStep`]s, each kernel (and epilogue) named by its index in
/// [`Prepared::distinct`] (`kernel_ids`, in step order). The one mapping from lowering to
/// executable steps: the JIT instantiates it with its function table
/// ([`PlanStep::instantiate`]), the AOT compiler embeds it in the library's plan. Counts
/// epilogues and interpreted steps into `report`.
pub fn plan_steps(
    steps: Vec<LStep>,
    kernel_ids: Vec<usize>,
    report: &mut CompileReport,
) -> Vec<PlanStep> {
    let mut kernel_ids = kernel_ids.into_iter();
    let mut next_kernel = || kernel_ids.next().expect("one id per kernel");
    steps
        .into_iter()
        .map(|s| match s {
            LStep::Kernel(k) => PlanStep::Kernel {
                kernel: next_kernel(),
                outer_len: k.outer_len(),
                work: k.work(),
                args: k.accesses.iter().map(|a| a.buf).collect(),
                name: k.name,
            },
            LStep::MatMul {
                a,
                b,
                c,
                node: _,
                dims,
                dtype,
                epilogue,
            } => {
                report.epilogues += epilogue.is_some() as usize;
                PlanStep::MatMul {
                    a,
                    b,
                    c,
                    dims,
                    dtype,
                    epilogue: epilogue
                        .map(|k| (next_kernel(), k.accesses.iter().map(|a| a.buf).collect())),
                }
            }
            LStep::Interpret {
                op,
                name,
                inputs,
                output,
                ty,
            } => {
                report.interpreted.push(format!("{} `{name}`", op.name()));
                PlanStep::Interpret {
                    op,
                    name,
                    inputs,
                    output,
                    ty,
                }
            }
            LStep::Copy { src, dst } => PlanStep::Copy { src, dst },
        })
        .collect()
}

/// Compile the subgraph of `def` that `fetches` need. `feeds` lists the placeholders in
/// the order their values will be passed to [`Executable::run`].
pub fn compile(
    def: &GraphDef,
    feeds: &[NodeId],
    fetches: &[NodeId],
) -> Result<(Executable, CompileReport)> {
    let Prepared {
        lowered,
        arena_bytes,
        distinct,
        kernel_ids,
        mut report,
    } = prepare(def, feeds, fetches)?;
    let t = Instant::now();
    let mut jit = JitKernels::new().map_err(|e| GraphError::invalid(format!("codegen: {e}")))?;
    let fns = jit
        .compile(&distinct)
        .map_err(|e| GraphError::invalid(format!("codegen: {e}")))?;
    report.codegen = t.elapsed();
    report.kernels = kernel_ids.len();
    report.compiled_kernels = distinct.len();

    let steps: Vec<Step> = plan_steps(lowered.steps, kernel_ids, &mut report)
        .into_iter()
        .map(|s| s.instantiate(&fns))
        .collect();
    report.steps = steps.len();
    let exe = Executable {
        buffers: lowered.buffers,
        steps,
        feeds: lowered.feeds,
        variables: lowered.variables,
        constants: lowered.constants,
        fetches: lowered.fetches,
        arena: Arena::new(arena_bytes),
        code: Some(Box::new(JitCode(jit))),
    };
    Ok((exe, report))
}
