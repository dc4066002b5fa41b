//! Ahead-of-time compilation: an executable for chosen feeds and fetches as a
//! self-contained shared library with a C header.
//!
//! [`emit`] runs the same pipeline as the JIT ([`prepare`](crate::compile::prepare)) and
//! emits:
//! - one position-independent object file (cranelift-object, from the same emitter as the
//!   JIT) holding every distinct fused kernel, the encoded [`Plan`] and a data blob with the
//!   constants and the variables' initial values;
//! - a small C file ([`glue`]) defining the model's entry points, which forward to the
//!   static AOT runtime (`flumen-aot-runtime`: the step executor, the GEMM and the
//!   interpreter kernels for interpreted steps);
//! - the C header describing the entry points and every input, output and variable.
//!
//! [`link`] compiles the glue and links everything with the runtime into one `.so`
//! (`cc -shared -Wl,--no-undefined`, a version script exporting only the entry points).
//!
//! Kernels import the math routines the JIT binds to host functions under the prefix
//! `flumen_rt_` ([`EmitOptions::import_prefix`]); the runtime defines them with the JIT's
//! bodies, so a library computes the same bits as a JIT session.

pub mod glue;
pub mod link;

pub use link::{LinkOptions, link};

use crate::codegen::{EmitOptions, IsaOptions, declare_and_define_with, native_isa};
use crate::compile::{CompileReport, Prepared, plan_steps, prepare};
use cranelift_module::{DataDescription, Linkage, Module};
use cranelift_object::{ObjectBuilder, ObjectModule};
use flumen_frontend::op::TensorType;
use flumen_frontend::{GraphDef, GraphError, NodeId, Result, Value};
use flumen_runtime::SessionState;
use flumen_runtime::exec::{DataRef, Plan, PlanStep};

/// The prefix of the math routines kernels import from the AOT runtime.
pub const RUNTIME_IMPORT_PREFIX: &str = "flumen_rt_";

/// Version of the contract between generated glue and the AOT runtime (the layout of the
/// model descriptor and the `flumen_rt_*` functions). Both sides check it.
pub const RUNTIME_ABI_VERSION: u64 = 1;

/// Everything [`link`] needs to build a library, and what went into it.
pub struct Artifacts {
    /// C identifier prefix of the entry points (`mnist` → `mnist_run`).
    pub prefix: String,
    /// The object file: kernels, plan and data.
    pub object: Vec<u8>,
    /// The C glue defining the entry points.
    pub glue_c: String,
    /// The C header.
    pub header: String,
    /// The names of the exported entry points.
    pub exports: Vec<String>,
    /// The plan embedded in the object.
    pub plan: Plan,
    /// Passes, lowering and kernel counts (as for a JIT compile).
    pub report: CompileReport,
}

/// Compile the subgraph of `def` that `fetches` need, with `feeds` as the library's inputs
/// (in order), into [`Artifacts`]. Variables start from their values in `state` (which
/// must hold every variable the executable uses) and random interpreter steps from its
/// counters. `prefix` must be a C identifier.
pub fn emit(
    def: &GraphDef,
    feeds: &[NodeId],
    fetches: &[NodeId],
    state: &SessionState,
    prefix: &str,
) -> Result<Artifacts> {
    if !glue::is_c_identifier(prefix) {
        return Err(GraphError::invalid(format!(
            "aot: the library prefix `{prefix}` is not a C identifier (letters, digits and `_`, \
             not starting with a digit)"
        )));
    }
    let Prepared {
        lowered,
        arena_bytes,
        distinct,
        kernel_ids,
        mut report,
    } = prepare(def, feeds, fetches)?;
    report.kernels = kernel_ids.len();
    report.compiled_kernels = distinct.len();
    let t = std::time::Instant::now();

    // Data blob: constants, then variables' initial values, each 64-byte aligned.
    let mut blob: Vec<u8> = Vec::new();
    let mut put = |name: &str, v: &Value| -> DataRef {
        blob.resize(blob.len().next_multiple_of(64), 0);
        let offset = blob.len();
        blob.extend(value_le_bytes(v));
        DataRef {
            name: name.to_string(),
            ty: TensorType::new(v.dtype(), v.shape().to_vec()),
            offset,
        }
    };
    let constants: Vec<DataRef> = lowered
        .constants
        .iter()
        .enumerate()
        .map(|(i, v)| put(&format!("constant{i}"), v))
        .collect();
    let mut variables = Vec::new();
    for name in &lowered.variables {
        let v = state.variables.get(name).ok_or_else(|| {
            GraphError::invalid(format!(
                "aot: variable `{name}` has no value to embed (initialise the session first)"
            ))
        })?;
        let node = def.find(name).map(|id| def.node(id).ty.clone());
        let ty = TensorType::new(v.dtype(), v.shape().to_vec());
        if node.as_ref() != Some(&ty) {
            return Err(GraphError::invalid(format!(
                "aot: variable `{name}` holds a {ty} value but the graph declares {}",
                node.map(|t| t.to_string()).unwrap_or("no such node".into())
            )));
        }
        variables.push(put(name, v));
    }

    let steps = plan_steps(lowered.steps, kernel_ids, &mut report);
    // The random counters of stateful interpreted steps start where the session's are.
    let mut counters: Vec<(String, u64)> = Vec::new();
    for s in &steps {
        if let PlanStep::Interpret { op, name, .. } = s
            && op.is_stateful()
            && !counters.iter().any(|(n, _)| n == name)
        {
            let start = state.counters.get(name.as_str()).copied().unwrap_or(0);
            counters.push((name.clone(), start));
        }
    }
    report.steps = steps.len();
    let fetch_names: Vec<String> = fetches.iter().map(|f| def.node(*f).name.clone()).collect();
    let plan = Plan {
        buffers: lowered.buffers,
        steps,
        feeds: lowered.feeds,
        fetches: fetch_names
            .into_iter()
            .zip(lowered.fetches)
            .map(|(n, (b, t))| (n, b, t))
            .collect(),
        variables,
        constants,
        counters,
        arena_bytes,
        kernels: distinct.len(),
    };
    plan.validate()
        .map_err(|e| GraphError::invalid(format!("aot: invalid plan (a compiler bug): {e}")))?;
    let plan_bytes = plan
        .encode()
        .map_err(|e| GraphError::invalid(format!("aot: encoding the plan: {e}")))?;

    let object = emit_object(prefix, &distinct, &plan_bytes, &blob)
        .map_err(|e| GraphError::invalid(format!("aot codegen: {e}")))?;
    report.codegen = t.elapsed();
    let glue_c = glue::glue_c(prefix, &plan, plan_bytes.len(), blob.len());
    let header = glue::header(prefix, &plan);
    Ok(Artifacts {
        prefix: prefix.to_string(),
        object,
        glue_c,
        header,
        exports: glue::entry_points(prefix),
        plan,
        report,
    })
}

/// The elements of `v` in row-major order, little-endian (bools as one byte, 0 or 1).
fn value_le_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::F32(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Value::F64(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Value::I32(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Value::I64(a) => a.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Value::U8(a) => a.iter().copied().collect(),
        Value::Bool(a) => a.iter().map(|&b| b as u8).collect(),
    }
}

/// The object file: kernel `i` as `{prefix}__flumen_k{i}`, the plan as
/// `{prefix}__flumen_plan` and the data blob as `{prefix}__flumen_data` (read only,
/// 64-byte aligned).
fn emit_object(
    prefix: &str,
    kernels: &[crate::kernel::Kernel],
    plan: &[u8],
    blob: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    let isa = native_isa(&IsaOptions {
        is_pic: true,
        verify: cfg!(debug_assertions),
    })
    .map_err(|e| e.to_string())?;
    let builder = ObjectBuilder::new(
        isa,
        format!("{prefix}_flumen_kernels"),
        cranelift_module::default_libcall_names(),
    )
    .map_err(|e| e.to_string())?;
    let mut module = ObjectModule::new(builder);
    let opts = EmitOptions {
        import_prefix: RUNTIME_IMPORT_PREFIX.to_string(),
        ..EmitOptions::default()
    };
    for (i, k) in kernels.iter().enumerate() {
        declare_and_define_with(&mut module, k, &glue::kernel_symbol(prefix, i), &opts)
            .map_err(|e| e.to_string())?;
    }
    for (name, bytes) in [
        (glue::plan_symbol(prefix), plan),
        (glue::data_symbol(prefix), blob),
    ] {
        let id = module
            .declare_data(&name, Linkage::Export, false, false)
            .map_err(|e| format!("{e:?}"))?;
        let mut desc = DataDescription::new();
        // Never empty, so the symbol has an address inside the section.
        let mut contents = bytes.to_vec();
        contents.push(0);
        desc.define(contents.into_boxed_slice());
        desc.set_align(64);
        module
            .define_data(id, &desc)
            .map_err(|e| format!("{e:?}"))?;
    }
    module.finish().emit().map_err(|e| e.to_string())
}
