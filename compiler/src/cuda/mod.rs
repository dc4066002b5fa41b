//! The CUDA code generator: the fused-kernel IR ([`crate::kernel`]) emitted as CUDA C, and
//! the driver that turns a graph into a [`CudaProgram`] for the device runtime
//! (`flumen_runtime::cuda`, feature `cuda`).
//!
//! Everything up to the kernel IR is shared with the CPU backend: [`crate::compile::prepare`]
//! runs the same pass pipeline, lowering (fusion, matrix-product epilogues, in-place
//! assigns) and liveness memory plan as the JIT and AOT paths, so the device arena has the
//! CPU arena's layout. This module only decides how each lowered step runs on the device:
//! - fused kernels → CUDA C ([`kernel`]; helpers in [`prelude`], scalar semantics in
//!   [`scalar`]), compiled by NVRTC at run time and cached per source hash;
//! - float matrix products → cuBLAS, their epilogues → generated kernels;
//! - `gather` / `scatter_add` → dedicated kernels ([`index`]);
//! - copies → device-to-device copies;
//! - everything else (random ops, sorting, `solve` …) → host steps on the reference
//!   interpreter.
//!
//! The emitter is plain Rust (no CUDA needed), so its snapshot and syntax tests run on every
//! machine.

pub mod index;
pub mod kernel;
pub mod layout;
pub mod prelude;
pub mod scalar;

use crate::CompileReport;
use crate::compile::{Prepared, prepare};
use crate::lower::LStep;
use flumen_frontend::op::Op;
use flumen_frontend::{GraphDef, NodeId, Result};
use flumen_runtime::cuda::{CudaProgram, DeviceStep, GemmStep};
use std::collections::HashSet;
use std::time::Instant;

pub use kernel::emit_kernel;
pub use prelude::PRELUDE;

/// Compile the subgraph of `def` that `fetches` need for a CUDA device; `feeds` lists the
/// placeholders in the order their values will be passed. Pure code generation: no device
/// is touched (the runtime compiles the CUDA C with NVRTC for its device's architecture).
pub fn compile_cuda(
    def: &GraphDef,
    feeds: &[NodeId],
    fetches: &[NodeId],
) -> Result<(CudaProgram, CompileReport)> {
    let Prepared {
        lowered,
        arena_bytes,
        mut report,
        ..
    } = prepare(def, feeds, fetches)?;
    let t = Instant::now();
    let mut error_sites = Vec::new();
    let mut steps = Vec::with_capacity(lowered.steps.len());
    for s in lowered.steps {
        match s {
            LStep::Kernel(k) => steps.push(DeviceStep::Kernel(emit_kernel(&k))),
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
                steps.push(DeviceStep::Gemm(GemmStep {
                    a,
                    b,
                    c,
                    dims,
                    dtype,
                    epilogue: epilogue.as_ref().map(emit_kernel),
                }));
            }
            LStep::Copy { src, dst } => steps.push(DeviceStep::Copy { src, dst }),
            LStep::Interpret {
                op,
                name,
                inputs,
                output,
                ty,
            } => {
                let site = error_sites.len() as i32 + 1;
                let data_movement = |k| vec![DeviceStep::Kernel(k)];
                let device = match (&op, inputs.as_slice()) {
                    (Op::Gather { axis, batch_dims }, [(p, pt), (i, it)]) => {
                        index::gather(&name, (*p, pt), (*i, it), output, *axis, *batch_dims, site)
                            .map(|k| vec![DeviceStep::Kernel(k)])
                    }
                    (
                        Op::ScatterAdd {
                            axis, batch_dims, ..
                        },
                        [(u, ut), (i, it)],
                    ) => index::scatter_add(
                        &name,
                        (*u, ut),
                        (*i, it),
                        (output, &ty),
                        *axis,
                        *batch_dims,
                        site,
                    )
                    .map(|k| vec![DeviceStep::Zero { buf: output }, DeviceStep::Kernel(k)]),
                    (Op::Concat { axis }, _) => {
                        layout::concat(&name, &inputs, output, &ty, *axis).map(data_movement)
                    }
                    (Op::Roll { shift, axis }, [(x, xt)]) => {
                        layout::roll(&name, (*x, xt), output, *shift, *axis).map(data_movement)
                    }
                    (Op::Pad { paddings, value }, [(x, xt)]) => {
                        layout::pad(&name, (*x, xt), (output, &ty), paddings, *value)
                            .map(data_movement)
                    }
                    (Op::Tile(multiples), [(x, xt)]) => {
                        layout::tile(&name, (*x, xt), (output, &ty), multiples).map(data_movement)
                    }
                    _ => None,
                };
                match device {
                    Some(device_steps) => {
                        if device_steps
                            .iter()
                            .any(|s| matches!(s, DeviceStep::Kernel(k) if k.error_flag))
                        {
                            error_sites.push(format!("{} `{name}`", op.name()));
                        }
                        steps.extend(device_steps);
                    }
                    None => {
                        report.interpreted.push(format!("{} `{name}`", op.name()));
                        steps.push(DeviceStep::Host {
                            op,
                            name,
                            inputs,
                            output,
                            ty,
                        });
                    }
                }
            }
        }
    }
    let program = CudaProgram {
        buffers: lowered.buffers,
        steps,
        feeds: lowered.feeds,
        variables: lowered.variables,
        constants: lowered.constants,
        fetches: lowered.fetches,
        arena_bytes,
        prelude: PRELUDE.to_string(),
        error_sites,
    };
    report.codegen = t.elapsed();
    report.steps = program.steps.len();
    report.kernels = program.kernels().count();
    report.compiled_kernels = program
        .kernels()
        .map(|k| k.hash)
        .collect::<HashSet<_>>()
        .len();
    Ok((program, report))
}
