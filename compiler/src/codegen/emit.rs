//! The kernel emitter: one [`Kernel`] → one Cranelift function with the
//! [`KernelFn`](crate::kernel::KernelFn) signature, in any [`Module`].
//!
//! # Loop structure
//! ```text
//! entry:    if begin >= end return; load the base pointers; unravel `begin` once (div/mod)
//! row:      run = min(extent_last − c, remaining)        // a run of the innermost outer axis
//!           segment(run)                                // [vector loop +] scalar loop
//!           carry the multi-index (no division), advance the row pointers, repeat
//! point:    for each phase: evaluate its inner-invariant expressions once (hoisted), then
//!           loop over the inner space (nested loops, innermost possibly vectorised) keeping
//!           reduction accumulators in registers, or store through the accesses
//! ```
//! Geometry is normalised first (extent-1 axes dropped, contiguous axes merged), so a
//! contiguous elementwise kernel is a single loop whatever its rank.
//!
//! # Vectorisation ([`Strategy`])
//! - [`Strategy::Inner`]: phases over the reduced space whose accesses have stride 1 (or 0,
//!   splatted) on the innermost reduced axis run that axis 4 (f32/i32) or 2 (f64/i64) lanes at
//!   a time; reductions use [`EmitOptions::accumulators`] independent vector accumulators,
//!   combined at the end, then a scalar tail. Softmax, layer norm and row sums take this path.
//! - [`Strategy::Outer`]: the innermost outer axis runs 4 or 2 outer indices per vector when
//!   every access has stride 1 or 0 there (elementwise kernels with broadcasting, column
//!   reductions). Each lane reduces sequentially, so results equal the scalar code's.
//! - [`Strategy::Scalar`]: everything else (transposes, strided slices, u8/bool data, f64
//!   library calls); any stride pattern works.
//!
//! Buffers that are written and also accessed with a different geometry disable
//! vectorisation (vector code would change the order of reads and writes).

use super::CodegenError;
use super::layout::{Layout, validate};
use super::math::Sym;
use super::ops::{Imports, Ops, const_from_f64, const_from_i64, repr};
use super::plan::{PhaseInfo, Strategy, analyze, choose, direct_invariants, heavy_body};
use crate::kernel::{Expr, Kernel, PhaseKind};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{F64, I64};
use cranelift_codegen::ir::{
    AbiParam, BlockArg, FuncRef, Function, InstBuilder, MemFlagsData, Signature, StackSlot,
    StackSlotData, StackSlotKind, Type, UserFuncName, Value,
};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_module::{FuncId, Linkage, Module};
use std::collections::HashMap;

/// Code generation options.
#[derive(Clone, Debug)]
pub struct EmitOptions {
    /// Generate vector code where the plan allows (default `true`); `false` gives the plain
    /// scalar loops (useful to compare against).
    pub vectorize: bool,
    /// Independent vector accumulators for reductions vectorised along the reduced axis
    /// (1–8, default 4: enough to hide the latency of a vector add).
    pub accumulators: usize,
    /// Prepended to the name of every imported math routine
    /// ([`math::IMPORTED_SYMBOLS`](super::math::IMPORTED_SYMBOLS)); empty (the default)
    /// imports the C library's `exp`, `pow`, ... An AOT library sets a prefix so its kernels
    /// call the runtime's copies of the JIT's host routines and agree with it bit for bit.
    pub import_prefix: String,
}

impl Default for EmitOptions {
    fn default() -> Self {
        EmitOptions {
            vectorize: true,
            accumulators: 4,
            import_prefix: String::new(),
        }
    }
}

/// Declare `name` (exported) in `module` and define it as the compiled `kernel`, with the
/// default [`EmitOptions`].
pub fn declare_and_define<M: Module>(
    module: &mut M,
    kernel: &Kernel,
    name: &str,
) -> Result<FuncId, CodegenError> {
    declare_and_define_with(module, kernel, name, &EmitOptions::default())
}

/// [`declare_and_define`] with explicit options.
pub fn declare_and_define_with<M: Module>(
    module: &mut M,
    kernel: &Kernel,
    name: &str,
    opts: &EmitOptions,
) -> Result<FuncId, CodegenError> {
    let mut ctx = module.make_context();
    build_function(module, kernel, opts, &mut ctx.func)?;
    let id = module.declare_function(name, Linkage::Export, &ctx.func.signature)?;
    module
        .define_function(id, &mut ctx)
        .map_err(|e| CodegenError::Module(format!("kernel `{}`: {e:?}", kernel.name)))?;
    Ok(id)
}

/// Compile `kernel` into `module` (as `name`) with disassembly enabled and return the
/// machine code listing: a debugging aid for tuning the emitter.
pub fn disassemble<M: Module>(
    module: &mut M,
    kernel: &Kernel,
    name: &str,
    opts: &EmitOptions,
) -> Result<String, CodegenError> {
    let mut ctx = module.make_context();
    ctx.set_disasm(true);
    build_function(module, kernel, opts, &mut ctx.func)?;
    let id = module.declare_function(name, Linkage::Local, &ctx.func.signature)?;
    module
        .define_function(id, &mut ctx)
        .map_err(|e| CodegenError::Module(format!("kernel `{}`: {e:?}", kernel.name)))?;
    Ok(ctx
        .compiled_code()
        .and_then(|c| c.vcode.clone())
        .unwrap_or_default())
}

/// The [`KernelFn`](crate::kernel::KernelFn) signature `(args, begin, end)` in `module`'s
/// calling convention.
pub fn kernel_signature<M: Module>(module: &M) -> Signature {
    let mut sig = module.make_signature();
    let ptr = module.target_config().pointer_type();
    sig.params
        .extend([AbiParam::new(ptr), AbiParam::new(ptr), AbiParam::new(ptr)]);
    sig
}

/// The CLIF of `kernel` before Cranelift's optimisations (for tests and debugging). Library
/// calls are declared in `module` as a side effect.
pub fn kernel_clif<M: Module>(
    module: &mut M,
    kernel: &Kernel,
    opts: &EmitOptions,
) -> Result<String, CodegenError> {
    let mut func = Function::new();
    build_function(module, kernel, opts, &mut func)?;
    Ok(func.display().to_string())
}

struct ModuleImports<'m, M: Module> {
    module: &'m mut M,
    cache: HashMap<Sym, FuncRef>,
    prefix: String,
}

impl<M: Module> Imports for ModuleImports<'_, M> {
    fn func_ref(&mut self, fb: &mut FunctionBuilder, sym: Sym) -> Result<FuncRef, CodegenError> {
        if let Some(&f) = self.cache.get(&sym) {
            return Ok(f);
        }
        let mut sig = self.module.make_signature();
        for _ in 0..sym.arity() {
            sig.params.push(AbiParam::new(F64));
        }
        sig.returns.push(AbiParam::new(F64));
        let id = self.module.declare_function(
            &format!("{}{}", self.prefix, sym.name()),
            Linkage::Import,
            &sig,
        )?;
        let f = self.module.declare_func_in_func(id, fb.func);
        self.cache.insert(sym, f);
        Ok(f)
    }
}

/// Where one evaluation reads and writes: a pointer and an immediate offset per access, and
/// the byte stride along the vectorised axis (used when `lanes > 1`: 0 splats a scalar).
struct At {
    ptr: Vec<Option<Value>>,
    imm: Vec<i32>,
    vstride: Vec<i64>,
}

/// What runs inside the inner loops of one phase.
struct Nest {
    pi: usize,
    /// Inner pointer groups: (outer group, inner byte strides).
    ips: Vec<(usize, Vec<i64>)>,
    /// Access → inner pointer group.
    acc_ip: Vec<Option<usize>>,
    /// Lanes of the outer context (1, or L for [`Strategy::Outer`]).
    outer_lanes: u32,
    /// Lanes of the vectorised innermost inner loop, if any.
    inner_vec: Option<u32>,
    /// Hoisted values the loop body uses, at outer lanes and splatted to `inner_vec` lanes:
    /// per expression, its index in `pins`.
    pre_outer: Vec<Option<usize>>,
    pre_vec: Vec<Option<usize>>,
    pins: Vec<Pinned>,
    /// Vector accumulators (`inner_vec` reductions).
    n_vacc: usize,
}

struct Emitter<'a, 'f, M: Module> {
    fb: FunctionBuilder<'f>,
    imports: ModuleImports<'a, M>,
    k: &'a Kernel,
    lay: Layout,
    info: Vec<PhaseInfo>,
    strategy: Strategy,
    accumulators: usize,
    /// Access → outer pointer group; groups share (buffer, offset, outer strides).
    group_of: Vec<usize>,
    /// Per group: its first access (whose `args` slot holds the base pointer).
    group_first: Vec<usize>,
}

fn build_function<M: Module>(
    module: &mut M,
    kernel: &Kernel,
    opts: &EmitOptions,
    func: &mut Function,
) -> Result<(), CodegenError> {
    validate(kernel)?;
    let lay = Layout::new(kernel)?;
    let info = analyze(kernel, &lay);
    let strategy = choose(kernel, &lay, &info, opts);
    func.signature = kernel_signature(module);
    func.name = UserFuncName::testcase(&kernel.name);
    let frontend_config = module.target_config();
    let mut fctx = FunctionBuilderContext::new();
    let fb = FunctionBuilder::new(func, &mut fctx);
    let mut group_of = Vec::new();
    let mut group_first: Vec<usize> = Vec::new();
    let mut keys: HashMap<(usize, i64, Vec<i64>), usize> = HashMap::new();
    for (a, g) in lay.acc.iter().enumerate() {
        let key = (kernel.accesses[a].buf.0, g.offset, g.outer.clone());
        let n = keys.len();
        let id = *keys.entry(key).or_insert(n);
        if id == group_first.len() {
            group_first.push(a);
        }
        group_of.push(id);
    }
    let mut e = Emitter {
        fb,
        imports: ModuleImports {
            module,
            cache: HashMap::new(),
            prefix: opts.import_prefix.clone(),
        },
        k: kernel,
        lay,
        info,
        strategy,
        accumulators: opts.accumulators.clamp(1, 8),
        group_of,
        group_first,
    };
    e.emit().map_err(|err| match err {
        CodegenError::Unsupported { msg, .. } => CodegenError::Unsupported {
            kernel: kernel.name.clone(),
            msg,
        },
        other => other,
    })?;
    e.fb.seal_all_blocks();
    e.fb.finalize(frontend_config);
    Ok(())
}

type Res<T> = Result<T, CodegenError>;
type Body<'b, 'a, 'f, M> = dyn FnMut(&mut Emitter<'a, 'f, M>, Vec<Value>) -> Res<Vec<Value>> + 'b;

/// A value computed before a loop and reloaded inside it from a stack slot. Cranelift's
/// egraph places pure instructions at their uses and does not hoist them back out of these
/// loops, so a horizontal reduction or a splat used in a later loop would otherwise be
/// recomputed every iteration; the reload is one L1 load per use.
#[derive(Clone, Copy)]
struct Pinned {
    slot: StackSlot,
    ty: Type,
}

fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

impl<'a, 'f, M: Module> Emitter<'a, 'f, M> {
    fn ops(&mut self) -> Ops<'_, 'f> {
        Ops {
            fb: &mut self.fb,
            imports: &mut self.imports,
        }
    }

    fn iconst(&mut self, x: i64) -> Value {
        self.fb.ins().iconst(I64, x)
    }

    /// Store `v` in a new stack slot.
    fn pin(&mut self, v: Value) -> Pinned {
        let ty = self.fb.func.dfg.value_type(v);
        let data = StackSlotData::new(StackSlotKind::ExplicitSlot, ty.bytes(), 4);
        let slot = self.fb.create_sized_stack_slot(data);
        self.fb.ins().stack_store(I64, v, slot, 0);
        Pinned { slot, ty }
    }

    /// Reload pinned values: per expression, `Some` where `idx` names a pin.
    fn unpin(&mut self, idx: &[Option<usize>], pins: &[Pinned]) -> Vec<Option<Value>> {
        idx.iter()
            .map(|i| i.map(|i| self.fb.ins().stack_load(I64, pins[i].ty, pins[i].slot, 0)))
            .collect()
    }

    fn var(&mut self, v: Value) -> Variable {
        let var = self.fb.declare_var(I64);
        self.fb.def_var(var, v);
        var
    }

    fn emit(&mut self) -> Res<()> {
        let entry = self.fb.create_block();
        self.fb.append_block_params_for_function_params(entry);
        self.fb.switch_to_block(entry);
        self.fb.seal_block(entry);
        let p = self.fb.block_params(entry).to_vec();
        let (args, begin, end) = (p[0], p[1], p[2]);
        let ret = self.fb.create_block();
        let start = self.fb.create_block();
        let empty = self
            .fb
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, begin, end);
        self.fb.ins().brif(empty, ret, &[], start, &[]);
        self.fb.seal_block(start);
        self.fb.switch_to_block(start);

        let outer = self.lay.outer.clone();
        let rank = outer.len();
        let n_last = outer[rank - 1] as i64;
        // Unravel `begin` once.
        let nl = self.iconst(n_last);
        let c0 = self.fb.ins().urem(begin, nl);
        let mut r = self.fb.ins().udiv(begin, nl);
        let mut idx = vec![r; rank - 1];
        for kk in (0..rank - 1).rev() {
            if kk == 0 {
                idx[0] = r;
            } else {
                let n = self.iconst(outer[kk] as i64);
                idx[kk] = self.fb.ins().urem(r, n);
                r = self.fb.ins().udiv(r, n);
            }
        }
        let ngroups = self.group_first.len();
        let mut rowptr = Vec::with_capacity(ngroups);
        for g in 0..ngroups {
            let a = self.group_first[g];
            let base = self.fb.ins().load(
                I64,
                MemFlagsData::trusted().with_readonly(),
                args,
                (8 * a) as i32,
            );
            let geom = self.lay.acc[a].clone();
            let mut p = self.fb.ins().iadd_imm_s(base, geom.offset);
            for (kk, &i) in idx.iter().enumerate() {
                if geom.outer[kk] != 0 {
                    let off = self.fb.ins().imul_imm_s(i, geom.outer[kk]);
                    p = self.fb.ins().iadd(p, off);
                }
            }
            rowptr.push(p);
        }
        let rem0 = self.fb.ins().isub(end, begin);
        let v_rem = self.var(rem0);
        let v_c = self.var(c0);
        let v_idx: Vec<Variable> = idx.iter().map(|&i| self.var(i)).collect();
        let v_ptr: Vec<Variable> = rowptr.iter().map(|&p| self.var(p)).collect();
        let row = self.fb.create_block();
        self.fb.ins().jump(row, &[]);

        // One run of the innermost outer axis.
        self.fb.switch_to_block(row);
        let c = self.fb.use_var(v_c);
        let rem = self.fb.use_var(v_rem);
        let nl = self.iconst(n_last);
        let avail = self.fb.ins().isub(nl, c);
        let run = self.fb.ins().umin(avail, rem);
        let mut seg = Vec::with_capacity(ngroups);
        for (g, &v) in v_ptr.iter().enumerate() {
            let rp = self.fb.use_var(v);
            let s = *self.lay.acc[self.group_first[g]]
                .outer
                .last()
                .expect("outer axis");
            seg.push(if s == 0 {
                rp
            } else {
                let off = self.fb.ins().imul_imm_s(c, s);
                self.fb.ins().iadd(rp, off)
            });
        }
        self.segment(run, seg)?;
        let rem = self.fb.use_var(v_rem);
        let rem2 = self.fb.ins().isub(rem, run);
        self.fb.def_var(v_rem, rem2);
        let zero = self.iconst(0);
        self.fb.def_var(v_c, zero);
        if rank == 1 {
            self.fb.ins().jump(ret, &[]);
        } else {
            // Carry the multi-index from axis rank−2 outwards.
            let carry: Vec<_> = (0..rank - 1).map(|_| self.fb.create_block()).collect();
            self.fb.ins().brif(rem2, carry[rank - 2], &[], ret, &[]);
            for kk in (0..rank - 1).rev() {
                self.fb.switch_to_block(carry[kk]);
                let i = self.fb.use_var(v_idx[kk]);
                let i2 = self.fb.ins().iadd_imm_s(i, 1);
                self.fb.def_var(v_idx[kk], i2);
                for (g, &v) in v_ptr.iter().enumerate() {
                    let s = self.lay.acc[self.group_first[g]].outer[kk];
                    if s != 0 {
                        let p = self.fb.use_var(v);
                        let p2 = self.fb.ins().iadd_imm_s(p, s);
                        self.fb.def_var(v, p2);
                    }
                }
                let wrap = self.fb.ins().icmp_imm_s(IntCC::Equal, i2, outer[kk] as i64);
                let next = if kk == 0 { row } else { carry[kk - 1] };
                let reset = self.fb.create_block();
                self.fb.ins().brif(wrap, reset, &[], row, &[]);
                self.fb.seal_block(reset);
                self.fb.switch_to_block(reset);
                self.fb.def_var(v_idx[kk], zero);
                for (g, &v) in v_ptr.iter().enumerate() {
                    let s = self.lay.acc[self.group_first[g]].outer[kk];
                    if s != 0 {
                        let p = self.fb.use_var(v);
                        let p2 = self
                            .fb
                            .ins()
                            .iadd_imm_s(p, s.wrapping_mul(outer[kk] as i64).wrapping_neg());
                        self.fb.def_var(v, p2);
                    }
                }
                self.fb.ins().jump(next, &[]);
            }
        }
        self.fb.switch_to_block(ret);
        self.fb.ins().return_(&[]);
        Ok(())
    }

    /// A loop running `body` while at least `step` of `count` remain; `state` is carried in
    /// block parameters. Returns the count left and the final state.
    fn dyn_loop(
        &mut self,
        count: Value,
        step: i64,
        state: Vec<Value>,
        body: &mut Body<'_, 'a, 'f, M>,
    ) -> Res<(Value, Vec<Value>)> {
        let header = self.fb.create_block();
        let blk = self.fb.create_block();
        let exit = self.fb.create_block();
        let tys: Vec<_> = std::iter::once(count)
            .chain(state.iter().copied())
            .map(|v| self.fb.func.dfg.value_type(v))
            .collect();
        for &t in &tys {
            self.fb.append_block_param(header, t);
            self.fb.append_block_param(blk, t);
            self.fb.append_block_param(exit, t);
        }
        let args = |v: &[Value]| v.iter().map(|&x| BlockArg::Value(x)).collect::<Vec<_>>();
        let init: Vec<Value> = std::iter::once(count).chain(state).collect();
        self.fb.ins().jump(header, &args(&init));
        self.fb.switch_to_block(header);
        let hp = self.fb.block_params(header).to_vec();
        let more = self
            .fb
            .ins()
            .icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, hp[0], step);
        self.fb.ins().brif(more, blk, &args(&hp), exit, &args(&hp));
        self.fb.seal_block(blk);
        self.fb.switch_to_block(blk);
        let bp = self.fb.block_params(blk).to_vec();
        let next = body(self, bp[1..].to_vec())?;
        let cnt = self.fb.ins().iadd_imm_s(bp[0], -step);
        let nargs: Vec<Value> = std::iter::once(cnt).chain(next).collect();
        self.fb.ins().jump(header, &args(&nargs));
        self.fb.seal_block(header);
        self.fb.seal_block(exit);
        self.fb.switch_to_block(exit);
        let ep = self.fb.block_params(exit).to_vec();
        Ok((ep[0], ep[1..].to_vec()))
    }

    /// `count / step` iterations of `body` (count known at compile time): nothing, straight
    /// line for one iteration, else a loop.
    fn static_loop(
        &mut self,
        count: usize,
        step: usize,
        state: Vec<Value>,
        body: &mut Body<'_, 'a, 'f, M>,
    ) -> Res<Vec<Value>> {
        match count / step {
            0 => Ok(state),
            1 => body(self, state),
            _ => {
                let c = self.iconst((count / step * step) as i64);
                Ok(self.dyn_loop(c, step as i64, state, body)?.1)
            }
        }
    }

    /// A run of `run` consecutive outer indices starting at the group pointers `ptrs`.
    fn segment(&mut self, run: Value, ptrs: Vec<Value>) -> Res<()> {
        let steps: Vec<i64> = self
            .group_first
            .iter()
            .map(|&a| *self.lay.acc[a].outer.last().expect("outer axis"))
            .collect();
        let point = |lanes: u32, steps: Vec<i64>| {
            move |e: &mut Self, ptrs: Vec<Value>| -> Res<Vec<Value>> {
                e.outer_point(lanes, &ptrs)?;
                Ok(ptrs
                    .iter()
                    .zip(&steps)
                    .map(|(&p, &s)| {
                        if s == 0 {
                            p
                        } else {
                            e.fb.ins().iadd_imm_s(p, s.wrapping_mul(lanes as i64))
                        }
                    })
                    .collect())
            }
        };
        let (left, ptrs) = match self.strategy {
            Strategy::Outer { lanes } => {
                self.dyn_loop(run, lanes as i64, ptrs, &mut point(lanes, steps.clone()))?
            }
            _ => (run, ptrs),
        };
        self.dyn_loop(left, 1, ptrs, &mut point(1, steps))?;
        Ok(())
    }

    /// All phases at one outer position (`lanes` consecutive positions along the innermost
    /// outer axis when `lanes > 1`). `q` holds the group pointers.
    fn outer_point(&mut self, lanes: u32, q: &[Value]) -> Res<()> {
        let k = self.k;
        let mut results: Vec<Option<Value>> = vec![None; k.phases.len()];
        let outer_vstride: Vec<i64> = self
            .lay
            .acc
            .iter()
            .map(|g| *g.outer.last().expect("outer axis"))
            .collect();
        for (pi, phase) in k.phases.iter().enumerate() {
            let looped = phase.over_inner && !self.lay.inner.is_empty();
            if phase.over_inner && self.lay.inner_len == 0 {
                if let PhaseKind::Reduce { op, value } = &phase.kind {
                    results[pi] =
                        Some(self.ops().reduce_init(*op, phase.dtypes[value.0], lanes)?);
                }
                continue;
            }
            let at = At {
                ptr: (0..k.accesses.len())
                    .map(|a| Some(q[self.group_of[a]]))
                    .collect(),
                imm: vec![0; k.accesses.len()],
                vstride: outer_vstride.clone(),
            };
            let n = phase.exprs.len();
            if !looped {
                let live = self.info[pi].live.clone();
                let vals = self.eval(pi, lanes, &at, vec![None; n], &results, &|i| live[i])?;
                results[pi] = self.finish_point(pi, lanes, &at, &vals, None)?;
                continue;
            }
            let (live, inv) = (self.info[pi].live.clone(), self.info[pi].inv.clone());
            let pre = self.eval(pi, lanes, &at, vec![None; n], &results, &|i| {
                live[i] && inv[i]
            })?;
            results[pi] = self.inner_phase(pi, lanes, q, pre)?;
        }
        Ok(())
    }

    /// Finish one evaluation: store, or fold the reduced value into `acc` (or into the
    /// identity when `acc` is `None`). Returns the new accumulator for reductions.
    fn finish_point(
        &mut self,
        pi: usize,
        lanes: u32,
        at: &At,
        vals: &[Option<Value>],
        acc: Option<Value>,
    ) -> Res<Option<Value>> {
        let k = self.k;
        let phase = &k.phases[pi];
        match &phase.kind {
            PhaseKind::Reduce { op, value } => {
                let d = phase.dtypes[value.0];
                let acc = match acc {
                    Some(a) => a,
                    None => self.ops().reduce_init(*op, d, lanes)?,
                };
                let v = vals[value.0].expect("live");
                Ok(Some(self.ops().reduce_step(*op, d, lanes, acc, v)?))
            }
            PhaseKind::Store { stores } => {
                for (a, v) in stores {
                    let ptr = at.ptr[*a].expect("store pointer");
                    let v = vals[v.0].expect("live");
                    self.fb.ins().store(mem(), v, ptr, at.imm[*a]);
                }
                Ok(None)
            }
        }
    }

    /// Evaluate the expressions of phase `pi` selected by `want` (others come from `known`).
    fn eval(
        &mut self,
        pi: usize,
        lanes: u32,
        at: &At,
        mut vals: Vec<Option<Value>>,
        results: &[Option<Value>],
        want: &dyn Fn(usize) -> bool,
    ) -> Res<Vec<Option<Value>>> {
        let k = self.k;
        let phase = &k.phases[pi];
        for (i, e) in phase.exprs.iter().enumerate() {
            if vals[i].is_some() || !want(i) {
                continue;
            }
            let d = phase.dtypes[i];
            let get = |x: usize| {
                vals[x].ok_or_else(|| CodegenError::Invalid {
                    kernel: String::new(),
                    msg: format!("phase{pi} e{x} unavailable"),
                })
            };
            let v = match e {
                Expr::Load(a) => {
                    let ptr = at.ptr[*a].expect("load pointer");
                    let ty = repr(d, 1).expect("scalar repr");
                    if lanes > 1 && at.vstride[*a] != 0 {
                        let vty = repr(d, lanes).expect("vector repr");
                        self.fb.ins().load(vty, mem(), ptr, at.imm[*a])
                    } else {
                        let s = self.fb.ins().load(ty, mem(), ptr, at.imm[*a]);
                        self.ops().broadcast(d, lanes, s)?
                    }
                }
                Expr::FloatConst(x) => self.ops().constant(d, lanes, const_from_f64(d, *x))?,
                Expr::IntConst(x) => self.ops().constant(d, lanes, const_from_i64(d, *x))?,
                Expr::Unary(op, x) => {
                    let x = get(x.0)?;
                    self.ops().unary(*op, d, lanes, x)?
                }
                Expr::Binary(op, a, b) => {
                    let (da, a, b) = (phase.dtypes[a.0], get(a.0)?, get(b.0)?);
                    self.ops().binary(*op, da, lanes, a, b)?
                }
                Expr::Select(c, a, b) => {
                    let (c, a, b) = (get(c.0)?, get(a.0)?, get(b.0)?);
                    self.ops().select(c, a, b)?
                }
                Expr::Cast(to, x) => {
                    let (from, x) = (phase.dtypes[x.0], get(x.0)?);
                    self.ops().cast(from, *to, lanes, x)?
                }
                Expr::PhaseResult(p) => results[*p].expect("earlier phase result"),
            };
            vals[i] = Some(v);
        }
        Ok(vals)
    }

    /// A phase over the inner space at one outer point; returns the reduced value.
    fn inner_phase(
        &mut self,
        pi: usize,
        outer_lanes: u32,
        q: &[Value],
        pre_outer: Vec<Option<Value>>,
    ) -> Res<Option<Value>> {
        let k = self.k;
        let phase = &k.phases[pi];
        let inner_vec = match &self.strategy {
            Strategy::Inner { phases } => phases[pi],
            _ => None,
        };
        // Inner pointer groups over the accesses this phase touches.
        let mut ips: Vec<(usize, Vec<i64>)> = Vec::new();
        let mut acc_ip = vec![None; k.accesses.len()];
        let live = &self.info[pi].live;
        let inv = &self.info[pi].inv;
        let mut touched: Vec<usize> = phase
            .exprs
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Expr::Load(a) if live[i] && !inv[i] => Some(*a),
                _ => None,
            })
            .collect();
        if let PhaseKind::Store { stores } = &phase.kind {
            touched.extend(stores.iter().map(|(a, _)| *a));
        }
        for a in touched {
            let key = (self.group_of[a], self.lay.acc[a].inner.clone());
            let id = match ips.iter().position(|x| *x == key) {
                Some(i) => i,
                None => {
                    ips.push(key);
                    ips.len() - 1
                }
            };
            acc_ip[a] = Some(id);
        }
        let reduce = match &phase.kind {
            PhaseKind::Reduce { op, value } => Some((*op, phase.dtypes[value.0])),
            PhaseKind::Store { .. } => None,
        };
        let n_vacc = match (reduce, inner_vec) {
            (Some(_), Some(_)) if heavy_body(phase, &self.info[pi]) => 1,
            (Some(_), Some(_)) => self.accumulators,
            _ => 0,
        };
        // Invariants the body uses, pinned in stack slots (see [`Pinned`]).
        let np = ips.len();
        let n = phase.exprs.len();
        let mut pins = Vec::new();
        let (mut pre_o, mut pre_v) = (vec![None; n], vec![None; n]);
        for i in direct_invariants(phase, &self.info[pi]) {
            if let Some(v) = pre_outer[i] {
                pre_o[i] = Some(pins.len());
                pins.push(self.pin(v));
                if let Some(l) = inner_vec {
                    pre_v[i] = Some(pins.len());
                    let b = self.ops().broadcast(phase.dtypes[i], l, v)?;
                    pins.push(self.pin(b));
                }
            }
        }
        let (pre_outer, pre_vec) = (pre_o, pre_v);
        let nest = Nest {
            pi,
            ips,
            acc_ip,
            outer_lanes,
            inner_vec,
            pre_outer,
            pre_vec,
            pins,
            n_vacc,
        };
        let mut state: Vec<Value> = nest.ips.iter().map(|(g, _)| q[*g]).collect();
        if let Some((op, d)) = reduce {
            for _ in 0..n_vacc {
                let l = inner_vec.expect("vector accumulators");
                state.push(self.ops().reduce_init(op, d, l)?);
            }
            state.push(self.ops().reduce_init(op, d, outer_lanes)?);
        }
        let state = self.nest_level(&nest, 0, state)?;
        let Some((op, d)) = reduce else {
            return Ok(None);
        };
        let mut acc = state[np + n_vacc];
        if n_vacc > 0 {
            let l = inner_vec.expect("vector accumulators");
            let mut v: Vec<Value> = state[np..np + n_vacc].to_vec();
            while v.len() > 1 {
                let mut next = Vec::new();
                for pair in v.chunks(2) {
                    next.push(if pair.len() == 2 {
                        self.ops().reduce_step(op, d, l, pair[0], pair[1])?
                    } else {
                        pair[0]
                    });
                }
                v = next;
            }
            let mut h = self.fb.ins().extractlane(v[0], 0);
            for lane in 1..l as u8 {
                let x = self.fb.ins().extractlane(v[0], lane);
                h = self.ops().reduce_step(op, d, 1, h, x)?;
            }
            acc = self.ops().reduce_step(op, d, 1, acc, h)?;
        }
        Ok(Some(acc))
    }

    fn at(&self, nest: &Nest, ptrs: &[Value], imm_elems: i64, vstride_inner: bool) -> At {
        let n = self.k.accesses.len();
        let mut at = At {
            ptr: vec![None; n],
            imm: vec![0; n],
            vstride: vec![0; n],
        };
        for a in 0..n {
            if let Some(ip) = nest.acc_ip[a] {
                at.ptr[a] = Some(ptrs[ip]);
            }
            let g = &self.lay.acc[a];
            let si = g.inner.last().copied().unwrap_or(0);
            at.imm[a] = imm_elems.wrapping_mul(si) as i32;
            at.vstride[a] = if vstride_inner {
                si
            } else {
                *g.outer.last().expect("outer axis")
            };
        }
        at
    }

    /// Loops for inner axis `level` and below.
    fn nest_level(&mut self, nest: &Nest, level: usize, state: Vec<Value>) -> Res<Vec<Value>> {
        let rank = self.lay.inner.len();
        let np = nest.ips.len();
        let strides: Vec<i64> = nest.ips.iter().map(|(_, s)| s[level]).collect();
        let advance = |e: &mut Self, ptrs: &[Value], by: usize| -> Vec<Value> {
            ptrs.iter()
                .zip(&strides)
                .map(|(&p, &s)| {
                    if s == 0 {
                        p
                    } else {
                        e.fb.ins().iadd_imm_s(p, s.wrapping_mul(by as i64))
                    }
                })
                .collect()
        };
        let n = self.lay.inner[level];
        if level + 1 < rank {
            return self.static_loop(n, 1, state, &mut |e, st| {
                let inner = e.nest_level(nest, level + 1, st.clone())?;
                let mut next = advance(e, &st[..np], 1);
                next.extend_from_slice(&inner[np..]);
                Ok(next)
            });
        }
        let pi = nest.pi;
        let live = self.info[pi].live.clone();
        let inv = self.info[pi].inv.clone();
        let want = move |i: usize| live[i] && !inv[i];
        let scalar_acc = np + nest.n_vacc;
        // Scalar (or outer-vector) iterations, one inner index each.
        let mut one = |e: &mut Self, st: Vec<Value>| -> Res<Vec<Value>> {
            let lanes = nest.outer_lanes;
            let at = e.at(nest, &st[..np], 0, false);
            let known = e.unpin(&nest.pre_outer, &nest.pins);
            let vals = e.eval(pi, lanes, &at, known, &[], &want)?;
            let mut next = advance(e, &st[..np], 1);
            next.extend_from_slice(&st[np..]);
            if let Some(acc) = e.finish_point(pi, lanes, &at, &vals, st.get(scalar_acc).copied())? {
                next[scalar_acc] = acc;
            }
            Ok(next)
        };
        let Some(l) = nest.inner_vec else {
            return self.static_loop(n, 1, state, &mut one);
        };
        let l = l as usize;
        let unroll = nest.n_vacc.max(1);
        let vec_body = |e: &mut Self, st: Vec<Value>, copies: usize| -> Res<Vec<Value>> {
            let mut next = st.clone();
            for u in 0..copies {
                let at = e.at(nest, &st[..np], (u * l) as i64, true);
                let known = e.unpin(&nest.pre_vec, &nest.pins);
                let vals = e.eval(pi, l as u32, &at, known, &[], &want)?;
                let acc = st.get(np + u).copied().filter(|_| u < nest.n_vacc);
                if let Some(acc) = e.finish_point(pi, l as u32, &at, &vals, acc)? {
                    next[np + u] = acc;
                }
            }
            let ptrs = advance(e, &st[..np], copies * l);
            next[..np].copy_from_slice(&ptrs);
            Ok(next)
        };
        let block = unroll * l;
        let main = n / block * block;
        let state = self.static_loop(main, block, state, &mut |e, st| vec_body(e, st, unroll))?;
        let state =
            self.static_loop(n % block / l * l, l, state, &mut |e, st| vec_body(e, st, 1))?;
        self.static_loop(n % l, 1, state, &mut one)
    }
}
