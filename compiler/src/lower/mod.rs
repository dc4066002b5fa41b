//! Lowering: a canonical graph (primitives only) → buffers and steps of an executable,
//! with elementwise chains, layout ops and reductions fused into kernels
//! ([`classify`], [`kernels`]), reductions and their consumers over the same space fused
//! into multi-phase kernels ([`rowfuse`]), sibling elementwise kernels merged into
//! multi-output kernels ([`sibling`]) and temporaries planned into one arena ([`memory`]).

pub mod affine;
pub mod classify;
pub mod epilogue;
pub mod inplace;
pub mod kernels;
pub mod memory;
pub mod rowfuse;
pub mod sibling;

use crate::kernel::{BufId, Kernel};
use crate::pass::Unit;
use flumen_frontend::op::{Op, TensorType};
use flumen_frontend::{DType, GraphDef, GraphError, NodeId, Result, Value};
use flumen_runtime::exec::{BufferDecl, MatMulDims, Storage};
use kernels::NodeSource;

/// A step before code generation.
#[derive(Debug)]
pub enum LStep {
    /// A fused kernel to compile.
    Kernel(Kernel),
    /// A matrix product through the GEMM library.
    MatMul {
        /// The graph node it computes.
        node: NodeId,
        /// Left operand.
        a: BufId,
        /// Right operand.
        b: BufId,
        /// Output.
        c: BufId,
        /// Shapes and strides.
        dims: MatMulDims,
        /// Element type.
        dtype: DType,
        /// An elementwise kernel over the product's elements (row-major linear index), run
        /// on each block of rows right after the block is computed (bias, activation).
        epilogue: Option<Kernel>,
    },
    /// An op evaluated by the interpreter.
    Interpret {
        /// The op.
        op: Op,
        /// The node's name.
        name: String,
        /// Inputs and their types.
        inputs: Vec<(BufId, TensorType)>,
        /// Output.
        output: BufId,
        /// Output type.
        ty: TensorType,
    },
    /// A buffer copy.
    Copy {
        /// Source.
        src: BufId,
        /// Destination.
        dst: BufId,
    },
}

impl LStep {
    /// Buffers the step reads.
    pub fn reads(&self) -> Vec<BufId> {
        match self {
            LStep::Kernel(k) => {
                let written = k.outputs();
                let mut r: Vec<BufId> = k
                    .accesses
                    .iter()
                    .map(|a| a.buf)
                    .filter(|b| !written.contains(b))
                    .collect();
                // A kernel storing into part of a buffer (slice-assign) also keeps the rest.
                r.extend(written);
                r
            }
            LStep::MatMul {
                a, b, c, epilogue, ..
            } => {
                let mut r = vec![*a, *b];
                if let Some(k) = epilogue {
                    let written = k.outputs();
                    r.extend(
                        k.accesses
                            .iter()
                            .map(|x| x.buf)
                            .filter(|x| !written.contains(x) && x != c),
                    );
                }
                r
            }
            LStep::Interpret { inputs, .. } => inputs.iter().map(|(b, _)| *b).collect(),
            LStep::Copy { src, .. } => vec![*src],
        }
    }

    /// Buffers the step writes.
    pub fn writes(&self) -> Vec<BufId> {
        match self {
            LStep::Kernel(k) => k.outputs(),
            LStep::MatMul { c, epilogue, .. } => {
                let mut w = vec![*c];
                if let Some(k) = epilogue {
                    w.extend(k.outputs());
                }
                w
            }
            LStep::Interpret { output, .. } => vec![*output],
            LStep::Copy { dst, .. } => vec![*dst],
        }
    }
}

/// The buffer whose memory `b` is, following alias (reshape/assign-result) chains.
pub fn alias_root(buffers: &[BufferDecl], mut b: BufId) -> BufId {
    while let Storage::Alias(a) = buffers[b.0].storage {
        b = a;
    }
    b
}

/// A lowered graph: everything of an executable but compiled code and arena offsets.
#[derive(Debug)]
pub struct Lowered {
    /// Buffers (arena offsets are filled in by [`memory::plan`]).
    pub buffers: Vec<BufferDecl>,
    /// Steps in order.
    pub steps: Vec<LStep>,
    /// Placeholder names and types, in feed order.
    pub feeds: Vec<(String, TensorType)>,
    /// Variable names.
    pub variables: Vec<String>,
    /// Constants.
    pub constants: Vec<Value>,
    /// Fetched buffers and types.
    pub fetches: Vec<(BufId, TensorType)>,
}

/// The steps one per line (`step i: …`, kernels in their text form, buffers as `bufN`): what
/// the lowering filetests snapshot and `FLUMEN_DUMP=lower` prints.
impl std::fmt::Display for Lowered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            write!(f, "step {i}: ")?;
            match step {
                LStep::Kernel(k) => write!(f, "{k}")?,
                LStep::MatMul {
                    a,
                    b,
                    c,
                    dims,
                    epilogue,
                    ..
                } => {
                    writeln!(f, "matmul buf{} · buf{} -> buf{} {dims:?}", a.0, b.0, c.0)?;
                    if let Some(k) = epilogue {
                        write!(f, "  epilogue: {k}")?;
                    }
                }
                LStep::Interpret {
                    op, name, output, ..
                } => writeln!(f, "interpret {} `{name}` -> buf{}", op.name(), output.0)?,
                LStep::Copy { src, dst } => writeln!(f, "copy buf{} -> buf{}", src.0, dst.0)?,
            }
        }
        Ok(())
    }
}

struct Lowering<'a> {
    def: &'a GraphDef,
    repr: Vec<Option<BufId>>,
    out: Lowered,
    /// The storage buffer of each variable name (written by assigns).
    var_store: Vec<(String, BufId)>,
}

impl NodeSource for Lowering<'_> {
    fn def(&self) -> &GraphDef {
        self.def
    }
    fn buffer(&self, id: NodeId) -> Option<BufId> {
        self.repr[id.0]
    }
}

impl Lowering<'_> {
    fn new_buffer(&mut self, ty: &TensorType, storage: Storage) -> BufId {
        self.out.buffers.push(BufferDecl {
            dtype: ty.dtype,
            numel: ty.numel(),
            storage,
        });
        BufId(self.out.buffers.len() - 1)
    }

    fn temp(&mut self, ty: &TensorType) -> BufId {
        self.new_buffer(ty, Storage::Arena { offset: 0 })
    }

    fn var_store(&mut self, name: &str, ty: &TensorType) -> BufId {
        if let Some((_, b)) = self.var_store.iter().find(|(n, _)| n == name) {
            return *b;
        }
        self.out.variables.push(name.to_string());
        let b = self.new_buffer(ty, Storage::Variable(self.out.variables.len() - 1));
        self.var_store.push((name.to_string(), b));
        b
    }

    fn input_buf(&self, id: NodeId) -> Result<BufId> {
        self.repr[id.0].ok_or_else(|| {
            GraphError::invalid(format!(
                "lowering: input `{}` has no buffer",
                self.def.node(id).name
            ))
        })
    }

    fn lower_node(&mut self, id: NodeId) -> Result<()> {
        let def = self.def;
        let node = def.node(id);
        let ty = node.ty.clone();
        match &node.op {
            Op::Placeholder { .. } => {
                let i = self
                    .out
                    .feeds
                    .iter()
                    .position(|(n, _)| *n == node.name)
                    .ok_or_else(|| GraphError::Feed {
                        placeholder: node.name.clone(),
                        msg: "needed by the fetches but not fed".into(),
                    })?;
                self.repr[id.0] = Some(self.new_buffer(&ty, Storage::Feed(i)));
            }
            Op::Variable { .. } => {
                let store = self.var_store(&node.name, &ty);
                self.repr[id.0] = Some(self.new_buffer(&ty, Storage::Alias(store)));
            }
            Op::Constant(v) => {
                self.out.constants.push(v.clone());
                self.repr[id.0] =
                    Some(self.new_buffer(&ty, Storage::Constant(self.out.constants.len() - 1)));
            }
            Op::NoOp => {
                self.out.constants.push(Value::scalar(true));
                self.repr[id.0] =
                    Some(self.new_buffer(&ty, Storage::Constant(self.out.constants.len() - 1)));
            }
            // A reshape of a buffer is the same memory; a unit-axis reshape of a virtual
            // node is a kernel like any other view.
            Op::Reshape(_) if self.repr[node.inputs[0].0].is_some() => {
                let src = self.input_buf(node.inputs[0])?;
                self.repr[id.0] = Some(self.new_buffer(&ty, Storage::Alias(src)));
            }
            op if classify::is_elementwise(op) || classify::is_view(op) => {
                let out = self.temp(&ty);
                self.repr[id.0] = Some(out);
                let k = kernels::elementwise_kernel(self, id, out);
                self.out.steps.push(LStep::Kernel(k));
            }
            Op::Reduce { .. } => {
                let out = self.temp(&ty);
                self.repr[id.0] = Some(out);
                let k = kernels::reduce_kernel(self, id, out);
                self.out.steps.push(LStep::Kernel(k));
            }
            Op::Read => {
                let var = def.node(node.inputs[0]);
                let store = self.var_store(&var.name, &ty);
                let out = self.temp(&ty);
                self.out.steps.push(LStep::Copy {
                    src: store,
                    dst: out,
                });
                self.repr[id.0] = Some(out);
            }
            Op::Assign => {
                let var = def.node(node.inputs[0]);
                let store = self.var_store(&var.name, &ty);
                let value = self.input_buf(node.inputs[1])?;
                self.out.steps.push(LStep::Copy {
                    src: value,
                    dst: store,
                });
                self.repr[id.0] = Some(self.new_buffer(&ty, Storage::Alias(value)));
            }
            Op::AssignSlice(spec) => {
                let var = def.node(node.inputs[0]);
                let store = self.var_store(&var.name, &ty);
                let k = kernels::slice_store_kernel(
                    self,
                    id,
                    node.inputs[1],
                    store,
                    &var.ty.shape,
                    spec,
                );
                self.out.steps.push(LStep::Kernel(k));
                // The new full value, copied so later assigns cannot change it.
                let out = self.temp(&ty);
                self.out.steps.push(LStep::Copy {
                    src: store,
                    dst: out,
                });
                self.repr[id.0] = Some(out);
            }
            Op::MatMul {
                transpose_a,
                transpose_b,
            } if ty.dtype.is_float() => {
                let (a, b) = (&def.node(node.inputs[0]).ty, &def.node(node.inputs[1]).ty);
                let out = self.temp(&ty);
                self.repr[id.0] = Some(out);
                match matmul_dims(a, b, &ty, *transpose_a, *transpose_b) {
                    Some(dims) => {
                        let (ab, bb) = (
                            self.input_buf(node.inputs[0])?,
                            self.input_buf(node.inputs[1])?,
                        );
                        self.out.steps.push(LStep::MatMul {
                            node: id,
                            a: ab,
                            b: bb,
                            c: out,
                            dims,
                            dtype: ty.dtype,
                            epilogue: None,
                        });
                    }
                    None => self.interpret(id, out)?,
                }
            }
            _ => {
                let out = self.temp(&ty);
                self.repr[id.0] = Some(out);
                self.interpret(id, out)?;
            }
        }
        Ok(())
    }

    /// One kernel for a reduction group, in place of its last member.
    fn lower_group(&mut self, group: &rowfuse::Group) -> Result<()> {
        let mut stores = Vec::new();
        for m in &group.stored {
            let ty = self.def.node(*m).ty.clone();
            let b = self.temp(&ty);
            self.repr[m.0] = Some(b);
            stores.push(b);
        }
        let k = rowfuse::build(&*self, group, &stores).ok_or_else(|| {
            GraphError::invalid(format!(
                "lowering: the reduction group of `{}` no longer builds",
                self.def.node(group.root).name
            ))
        })?;
        self.out.steps.push(LStep::Kernel(k));
        Ok(())
    }

    fn interpret(&mut self, id: NodeId, out: BufId) -> Result<()> {
        let node = self.def.node(id);
        let inputs = node
            .inputs
            .iter()
            .map(|i| Ok((self.input_buf(*i)?, self.def.node(*i).ty.clone())))
            .collect::<Result<Vec<_>>>()?;
        self.out.steps.push(LStep::Interpret {
            op: node.op.clone(),
            name: node.name.clone(),
            inputs,
            output: out,
            ty: node.ty.clone(),
        });
        Ok(())
    }
}

/// GEMM dimensions for `a · b`, or `None` when the batch axes broadcast in a way the GEMM
/// step does not handle (each operand's batch must be the output's or a single matrix).
fn matmul_dims(
    a: &TensorType,
    b: &TensorType,
    out: &TensorType,
    ta: bool,
    tb: bool,
) -> Option<MatMulDims> {
    let (ra, rb, ro) = (a.rank(), b.rank(), out.rank());
    let m = out.shape[ro - 2];
    let n = out.shape[ro - 1];
    let k = if ta { a.shape[ra - 2] } else { a.shape[ra - 1] };
    let batch: usize = out.shape[..ro - 2].iter().product();
    let stride = |t: &TensorType, r: usize, per: usize| {
        let tb: usize = t.shape[..r - 2].iter().product();
        let padded_equal = t.shape[..r - 2]
            .iter()
            .rev()
            .zip(out.shape[..ro - 2].iter().rev())
            .all(|(x, y)| x == y)
            && r == ro;
        if tb == 1 {
            Some(0)
        } else if padded_equal {
            Some(per)
        } else {
            None
        }
    };
    Some(MatMulDims {
        batch,
        m,
        n,
        k,
        transpose_a: ta,
        transpose_b: tb,
        a_batch_stride: stride(a, ra, m * k)?,
        b_batch_stride: stride(b, rb, k * n)?,
    })
}

/// Which of the optional fusions lowering applies (both by default; turning them off
/// shows what they change, e.g. in before/after snapshots).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FusionOptions {
    /// Reductions and their consumers over the same space as one kernel ([`rowfuse`]).
    pub reduction_groups: bool,
    /// Sibling elementwise kernels as one multi-output kernel ([`sibling`]).
    pub siblings: bool,
    /// Single-element nodes read by wide kernels computed once ([`classify`]).
    pub hoist_scalars: bool,
}

impl Default for FusionOptions {
    fn default() -> Self {
        FusionOptions {
            reduction_groups: true,
            siblings: true,
            hoist_scalars: true,
        }
    }
}

impl FusionOptions {
    /// The default, or every optional fusion off when the environment variable
    /// `FLUMEN_FUSION` is `off` (for measuring what they bring).
    pub fn from_env() -> FusionOptions {
        match std::env::var("FLUMEN_FUSION") {
            Ok(v) if v.trim() == "off" => FusionOptions {
                reduction_groups: false,
                siblings: false,
                hoist_scalars: false,
            },
            _ => FusionOptions::default(),
        }
    }
}

/// Lower `unit` (canonical: no composites) for the given placeholder feed order, with the
/// fusions [`FusionOptions::from_env`] selects.
pub fn lower(unit: &Unit, feeds: &[(String, TensorType)]) -> Result<Lowered> {
    lower_with(unit, feeds, FusionOptions::from_env())
}

/// [`lower`] with a choice of optional fusions.
pub fn lower_with(
    unit: &Unit,
    feeds: &[(String, TensorType)],
    options: FusionOptions,
) -> Result<Lowered> {
    let def = &unit.def;
    let executed = def.reachable(&unit.outputs, false);
    let mut fetched = vec![false; def.len()];
    for o in &unit.outputs {
        fetched[o.0] = true;
    }
    let virt = classify::classify_with(def, &executed, &fetched, options.hoist_scalars);
    let mut l = Lowering {
        def,
        repr: vec![None; def.len()],
        out: Lowered {
            buffers: Vec::new(),
            steps: Vec::new(),
            feeds: feeds.to_vec(),
            variables: Vec::new(),
            constants: Vec::new(),
            fetches: Vec::new(),
        },
        var_store: Vec::new(),
    };
    let groups = if options.reduction_groups {
        rowfuse::find_groups(def, &executed, &fetched, &virt)
    } else {
        Vec::new()
    };
    let mut group_of: Vec<Option<usize>> = vec![None; def.len()];
    for (gi, g) in groups.iter().enumerate() {
        for m in &g.members {
            group_of[m.0] = Some(gi);
        }
    }
    for (id, node) in def.iter() {
        if !executed[id.0] || virt[id.0] {
            continue;
        }
        if let Some(gi) = group_of[id.0] {
            if groups[gi].last() == id {
                l.lower_group(&groups[gi])?;
            }
            continue;
        }
        if matches!(node.op, Op::Composite(_)) {
            return Err(GraphError::invalid(format!(
                "lowering: composite `{}` must be expanded by canonicalize first",
                node.name
            )));
        }
        l.lower_node(id)?;
    }
    l.out.fetches = unit
        .outputs
        .iter()
        .map(|o| {
            (
                l.repr[o.0].expect("fetched nodes are materialised"),
                def.node(*o).ty.clone(),
            )
        })
        .collect();
    snapshot_variables(&mut l.out);
    epilogue::fuse_matmul_epilogues(&mut l.out);
    inplace::assign_in_place(&mut l.out);
    if options.siblings {
        sibling::merge_siblings(&mut l.out);
    }
    Ok(l.out)
}

/// Give every variable read that runs after an assign to the same variable (or is
/// fetched) its own copy taken at the start of the run, so `variable` nodes always see the
/// value the run started with.
fn snapshot_variables(out: &mut Lowered) {
    let root = |buffers: &[BufferDecl], mut b: BufId| {
        while let Storage::Alias(a) = buffers[b.0].storage {
            if matches!(buffers[a.0].storage, Storage::Variable(_)) {
                return b;
            }
            b = a;
        }
        b
    };
    let mut prologue = Vec::new();
    for (vi, _) in out.variables.iter().enumerate() {
        let Some(store) = out
            .buffers
            .iter()
            .position(|b| b.storage == Storage::Variable(vi))
            .map(BufId)
        else {
            continue;
        };
        let Some(first_write) = out.steps.iter().position(|s| s.writes().contains(&store)) else {
            continue;
        };
        // Buffers that are "the variable as of the start of the run".
        let views: Vec<BufId> = (0..out.buffers.len())
            .map(BufId)
            .filter(|&b| {
                out.buffers[b.0].storage == Storage::Alias(store) && root(&out.buffers, b) == b
            })
            .collect();
        for view in views {
            let late_read = out.steps[first_write..]
                .iter()
                .any(|s| s.reads().iter().any(|&r| root(&out.buffers, r) == view))
                || out
                    .fetches
                    .iter()
                    .any(|(f, _)| root(&out.buffers, *f) == view);
            if late_read {
                out.buffers[view.0].storage = Storage::Arena { offset: 0 };
                prologue.push(LStep::Copy {
                    src: store,
                    dst: view,
                });
            }
        }
    }
    if !prologue.is_empty() {
        prologue.append(&mut out.steps);
        out.steps = prologue;
    }
}
