//! Running a [`CudaProgram`] on a [`CudaDevice`].
//!
//! - Memory: one device arena for the temporaries at the compiler's planned offsets (the
//!   CPU arena's liveness plan), one allocation per feed and constant (constants uploaded
//!   once), variables in [`DeviceVariables`] (owned by the session, resident across runs).
//! - A run copies the feeds in, replays the device steps, copies the fetches out; nothing
//!   else crosses the bus except the 4-byte error word of programs with index kernels, the
//!   inputs and outputs of host steps, and variables the host changed since the last run.
//! - Device steps between host steps form segments; each segment is captured once as a
//!   CUDA graph on the stream (kernels, cuBLAS calls, copies, memsets) and replayed on
//!   later runs. A segment is re-captured only if a buffer moved (a variable re-allocated).

use super::device::{CudaDevice, cuda_error};
use super::memory::{DevAlloc, Pinned, STAGED_FEED_BYTES, download, upload, value_bytes};
use super::profile::Profile;
use super::program::{CudaProgram, DeviceKernel, DeviceStep, GemmStep};
use crate::exec::{BufId, BufferDecl, Storage};
use crate::interpreter::{EvalContext, eval_op};
use crate::state::SessionState;
use cudarc::cublas::sys as blas;
use cudarc::driver::{result as drv, sys};
use flumen_frontend::{DType, GraphError, Result, TensorType, Value};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;

/// Bytes of cuBLAS workspace per executable (set before capture so cuBLAS never allocates
/// inside a CUDA graph).
const BLAS_WORKSPACE: usize = 32 << 20;

/// A variable's device copy.
struct DeviceVar {
    mem: DevAlloc,
    ty: TensorType,
    /// The device copy is newer than the host's (a run wrote it).
    device_newer: bool,
    /// The host copy may be newer than the device's (the user had mutable access).
    host_newer: bool,
}

/// The session's variables in device memory, resident across runs. The session state on
/// the host stays the reference copy for everything outside runs: [`DeviceVariables::sync`]
/// copies what runs changed back, and marks every variable for upload before the next run
/// (the caller may change the host copies in between).
pub struct DeviceVariables {
    device: Arc<CudaDevice>,
    vars: HashMap<String, DeviceVar>,
}

impl DeviceVariables {
    /// No variables yet, on `device`.
    pub fn new(device: Arc<CudaDevice>) -> DeviceVariables {
        DeviceVariables {
            device,
            vars: HashMap::new(),
        }
    }

    /// Copy every variable that runs changed back into `state`, and mark all of them for
    /// upload before the next run.
    pub fn sync(&mut self, state: &mut SessionState) -> Result<()> {
        if self.vars.is_empty() {
            return Ok(());
        }
        self.device.bind()?;
        for (name, v) in &mut self.vars {
            if v.device_newer {
                state
                    .variables
                    .insert(name.clone(), download(v.mem.ptr, &v.ty)?);
                v.device_newer = false;
            }
            v.host_newer = true;
        }
        Ok(())
    }

    /// The device address of each of `names`, allocating and uploading from `state` what
    /// is missing or newer on the host.
    fn resolve(
        &mut self,
        names: &[String],
        decls: &[Option<(DType, usize)>],
        state: &SessionState,
    ) -> Result<Vec<sys::CUdeviceptr>> {
        let mut out = Vec::with_capacity(names.len());
        for (name, decl) in names.iter().zip(decls) {
            let host = state
                .variables
                .get(name)
                .ok_or_else(|| GraphError::runtime("variable", name, "not initialised"))?;
            let ty = TensorType::new(host.dtype(), host.shape().to_vec());
            if let Some((dtype, numel)) = decl
                && (*dtype != ty.dtype || *numel != ty.numel())
            {
                return Err(GraphError::runtime(
                    "variable",
                    name,
                    format!(
                        "holds a {ty} value but the graph declares {numel} elements of {dtype}"
                    ),
                ));
            }
            let fits = self.vars.get(name).is_some_and(|v| v.ty == ty);
            if !fits {
                let mem = DevAlloc::new(&self.device, ty.numel() * ty.dtype.size_bytes())?;
                if let Some(mut old) = self.vars.remove(name) {
                    old.mem.free();
                }
                self.vars.insert(
                    name.clone(),
                    DeviceVar {
                        mem,
                        ty,
                        device_newer: false,
                        host_newer: true,
                    },
                );
            }
            let v = self.vars.get_mut(name).expect("inserted above");
            if v.host_newer {
                upload(v.mem.ptr, host)?;
                v.host_newer = false;
            }
            out.push(v.mem.ptr);
        }
        Ok(out)
    }
}

impl Drop for DeviceVariables {
    fn drop(&mut self) {
        let _ = self.device.bind();
        for v in self.vars.values_mut() {
            v.mem.free();
        }
    }
}

/// A maximal run of device steps (captured as one graph) or one host step.
pub(super) enum Segment {
    Device {
        steps: std::ops::Range<usize>,
        /// The instantiated graph and the buffer addresses it was captured with.
        graph: Option<(sys::CUgraphExec, Vec<sys::CUdeviceptr>)>,
    },
    Host(usize),
}

/// A [`CudaProgram`] loaded on a device: allocations made, kernels compiled.
pub struct CudaExecutable {
    device: Arc<CudaDevice>,
    program: CudaProgram,
    arena: DevAlloc,
    feeds: Vec<DevAlloc>,
    /// A pinned staging buffer per large feed.
    staging: Vec<Option<Pinned>>,
    constants: Vec<DevAlloc>,
    error_word: DevAlloc,
    workspace: DevAlloc,
    functions: HashMap<u64, sys::CUfunction>,
    segments: Vec<Segment>,
    /// The declared dtype and element count of each variable (from its storage buffer).
    var_types: Vec<Option<(DType, usize)>>,
    /// Variables some step writes.
    written: Vec<usize>,
    /// Whether to capture device segments as CUDA graphs (`FLUMEN_CUDA_GRAPHS=0` turns it
    /// off, for debugging).
    use_graphs: bool,
    /// Per-phase wall times (`FLUMEN_CUDA_PROFILE=1`), printed to stderr on drop.
    profile: Option<Profile>,
}

fn root(buffers: &[BufferDecl], mut b: BufId) -> BufId {
    while let Storage::Alias(a) = buffers[b.0].storage {
        b = a;
    }
    b
}

fn step_writes(s: &DeviceStep) -> Vec<BufId> {
    let kernel_writes = |k: &DeviceKernel| k.args.clone();
    match s {
        // Conservative: every argument of a kernel may be written.
        DeviceStep::Kernel(k) => kernel_writes(k),
        DeviceStep::Gemm(g) => {
            let mut w = vec![g.c];
            if let Some(e) = &g.epilogue {
                w.extend(kernel_writes(e));
            }
            w
        }
        DeviceStep::Host { output, .. } => vec![*output],
        DeviceStep::Copy { dst, .. } => vec![*dst],
        DeviceStep::Zero { buf } => vec![*buf],
    }
}

impl CudaExecutable {
    /// Allocate the program's memory on `device`, upload its constants and compile its
    /// kernels (NVRTC, for the device's architecture; kernels already compiled on this
    /// device are reused).
    pub fn new(device: Arc<CudaDevice>, program: CudaProgram) -> Result<CudaExecutable> {
        device.bind()?;
        let kernels: Vec<(u64, &str, &str)> = program
            .kernels()
            .map(|k| (k.hash, k.entry.as_str(), k.source.as_str()))
            .collect();
        let functions = device.functions(&program.prelude, &kernels)?;
        let arena = DevAlloc::new(&device, program.arena_bytes)?;
        let feeds = program
            .feeds
            .iter()
            .map(|(_, t)| DevAlloc::new(&device, t.numel() * t.dtype.size_bytes()))
            .collect::<Result<Vec<_>>>()?;
        let staging = feeds
            .iter()
            .map(|m| {
                (m.bytes >= STAGED_FEED_BYTES)
                    .then(|| Pinned::new(&device, m.bytes))
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        let mut constants = Vec::with_capacity(program.constants.len());
        for c in &program.constants {
            let mem = DevAlloc::new(&device, value_bytes(c).len())?;
            upload(mem.ptr, c)?;
            constants.push(mem);
        }
        let error_word =
            DevAlloc::new(&device, if program.error_sites.is_empty() { 0 } else { 4 })?;
        let has_gemm = program
            .steps
            .iter()
            .any(|s| matches!(s, DeviceStep::Gemm(_)));
        let workspace = DevAlloc::new(&device, if has_gemm { BLAS_WORKSPACE } else { 0 })?;
        let mut segments = Vec::new();
        let mut start = None;
        for (i, s) in program.steps.iter().enumerate() {
            if matches!(s, DeviceStep::Host { .. }) {
                if let Some(st) = start.take() {
                    segments.push(Segment::Device {
                        steps: st..i,
                        graph: None,
                    });
                }
                segments.push(Segment::Host(i));
            } else if start.is_none() {
                start = Some(i);
            }
        }
        if let Some(st) = start {
            segments.push(Segment::Device {
                steps: st..program.steps.len(),
                graph: None,
            });
        }
        let mut var_types = vec![None; program.variables.len()];
        for b in &program.buffers {
            if let Storage::Variable(i) = b.storage {
                var_types[i] = Some((b.dtype, b.numel));
            }
        }
        let mut written = Vec::new();
        for s in &program.steps {
            for b in step_writes(s) {
                if let Storage::Variable(i) = program.buffers[root(&program.buffers, b).0].storage
                    && !written.contains(&i)
                {
                    written.push(i);
                }
            }
        }
        Ok(CudaExecutable {
            device,
            program,
            arena,
            feeds,
            staging,
            constants,
            error_word,
            workspace,
            functions,
            segments,
            var_types,
            written,
            use_graphs: std::env::var("FLUMEN_CUDA_GRAPHS").map_or(true, |v| v != "0"),
            profile: std::env::var("FLUMEN_CUDA_PROFILE")
                .is_ok_and(|v| v == "1")
                .then(Profile::default),
        })
    }

    /// The program this executable runs.
    pub fn program(&self) -> &CudaProgram {
        &self.program
    }

    /// Run with `feeds` (one per program feed, already type-checked by the session); the
    /// variables come from `vars` (uploaded from `state` when missing or newer there).
    pub fn run(
        &mut self,
        feeds: &[&Value],
        vars: &mut DeviceVariables,
        state: &mut SessionState,
    ) -> Result<Vec<Value>> {
        self.device.bind()?;
        if self.staging.iter().any(Option::is_some) {
            // A run that failed part-way may have left transfers from the staging buffers
            // in flight; they finish before the buffers are overwritten.
            // SAFETY: the device's stream.
            unsafe { drv::stream::synchronize(self.device.stream) }.map_err(cuda_error)?;
        }
        let mut clock = self.profile.is_some().then(std::time::Instant::now);
        let var_ptrs = vars.resolve(&self.program.variables, &self.var_types, state)?;
        self.lap(&mut clock, |p| &mut p.variables)?;
        for ((mem, staging), v) in self.feeds.iter().zip(&self.staging).zip(feeds) {
            let bytes = value_bytes(v);
            if bytes.len() != mem.bytes {
                return Err(cuda_error("a feed's size differs from its placeholder's"));
            }
            match staging {
                Some(pinned) => pinned.upload(mem.ptr, &bytes, self.device.stream)?,
                None => upload(mem.ptr, v)?,
            }
        }
        self.lap(&mut clock, |p| &mut p.feeds)?;
        let ptrs = self.pointers(&var_ptrs);
        for si in 0..self.segments.len() {
            if si > 0 {
                self.lap(&mut clock, |p| {
                    p.segments.resize(si, Default::default());
                    &mut p.segments[si - 1]
                })?;
            }
            match &self.segments[si] {
                Segment::Host(i) => self.host_step(*i, &ptrs, state)?,
                Segment::Device { steps, graph } => {
                    let steps = steps.clone();
                    let reusable = graph.as_ref().is_some_and(|(_, p)| *p == ptrs);
                    if !self.use_graphs && self.profile.is_some() {
                        // Profiling without graphs: time every step on its own.
                        for i in steps {
                            self.enqueue(i..i + 1, &ptrs)?;
                            self.lap(&mut clock, |p| {
                                if p.steps.len() <= i {
                                    p.steps.resize(i + 1, Default::default());
                                }
                                &mut p.steps[i]
                            })?;
                        }
                    } else if !self.use_graphs {
                        self.enqueue(steps, &ptrs)?;
                    } else if reusable {
                        let (exec, _) = graph.as_ref().expect("checked");
                        // SAFETY: an instantiated graph whose buffers are all still alive.
                        unsafe { drv::graph::launch(*exec, self.device.stream) }
                            .map_err(|e| cuda_error(format!("graph launch failed: {e}")))?;
                    } else {
                        if let Some(p) = &mut self.profile {
                            p.captures += 1;
                        }
                        let exec = match self.capture(steps.clone(), &ptrs) {
                            Ok(exec) => exec,
                            Err(e) => {
                                // A driver or library that cannot capture this segment:
                                // run every step directly from now on.
                                eprintln!(
                                    "flumen: CUDA graph capture failed ({e}); launching steps directly"
                                );
                                self.use_graphs = false;
                                self.enqueue(steps, &ptrs)?;
                                continue;
                            }
                        };
                        if let Segment::Device { graph, .. } = &mut self.segments[si] {
                            if let Some((old, _)) = graph.take() {
                                // SAFETY: not running (the stream is synchronised by
                                // `capture`'s launch only later; destroying an exec that
                                // was launched is allowed once it completes).
                                unsafe { drv::stream::synchronize(self.device.stream) }
                                    .map_err(cuda_error)?;
                                let _ = unsafe { drv::graph::exec_destroy(old) };
                            }
                            *graph = Some((exec, ptrs.clone()));
                        }
                        // SAFETY: the freshly instantiated graph.
                        unsafe { drv::graph::launch(exec, self.device.stream) }
                            .map_err(|e| cuda_error(format!("graph launch failed: {e}")))?;
                    }
                }
            }
        }
        // SAFETY: the device's stream.
        unsafe { drv::stream::synchronize(self.device.stream) }
            .map_err(|e| cuda_error(format!("a kernel failed: {e}")))?;
        for &i in &self.written {
            if let Some(v) = vars.vars.get_mut(&self.program.variables[i]) {
                v.device_newer = true;
            }
        }
        let last = self.segments.len();
        if last > 0 {
            self.lap(&mut clock, |p| {
                p.segments.resize(last, Default::default());
                &mut p.segments[last - 1]
            })?;
        }
        self.check_error_word()?;
        let out = self
            .program
            .fetches
            .iter()
            .map(|(b, t)| download(ptrs[b.0], t))
            .collect();
        self.lap(&mut clock, |p| &mut p.fetches)?;
        if let Some(p) = &mut self.profile {
            p.runs += 1;
        }
        out
    }

    /// Profiling: synchronise, add the time since `clock` to the field `slot` picks, and
    /// restart the clock (nothing when not profiling).
    fn lap(
        &mut self,
        clock: &mut Option<std::time::Instant>,
        slot: impl FnOnce(&mut Profile) -> &mut std::time::Duration,
    ) -> Result<()> {
        let (Some(t), Some(p)) = (clock.as_mut(), self.profile.as_mut()) else {
            return Ok(());
        };
        // SAFETY: the device's stream.
        unsafe { drv::stream::synchronize(self.device.stream) }
            .map_err(|e| cuda_error(format!("a kernel failed: {e}")))?;
        *slot(p) += t.elapsed();
        *t = std::time::Instant::now();
        Ok(())
    }

    /// The device address of every buffer.
    fn pointers(&self, var_ptrs: &[sys::CUdeviceptr]) -> Vec<sys::CUdeviceptr> {
        let mut ptrs: Vec<sys::CUdeviceptr> = Vec::with_capacity(self.program.buffers.len());
        for b in &self.program.buffers {
            let p = match &b.storage {
                Storage::Arena { offset } => self.arena.ptr + *offset as u64,
                Storage::Feed(i) => self.feeds[*i].ptr,
                Storage::Variable(i) => var_ptrs[*i],
                Storage::Constant(i) => self.constants[*i].ptr,
                Storage::Alias(other) => ptrs[other.0],
            };
            ptrs.push(p);
        }
        ptrs
    }

    /// Capture `steps` as a CUDA graph and instantiate it.
    fn capture(
        &self,
        steps: std::ops::Range<usize>,
        ptrs: &[sys::CUdeviceptr],
    ) -> Result<sys::CUgraphExec> {
        let stream = self.device.stream;
        // SAFETY: the device's stream; every enqueued operation uses live buffers.
        unsafe {
            drv::stream::begin_capture(
                stream,
                sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL,
            )
            .map_err(|e| cuda_error(format!("cannot capture a CUDA graph: {e}")))?;
            let enqueued = self.enqueue(steps, ptrs);
            let graph = drv::stream::end_capture(stream);
            enqueued?;
            let graph =
                graph.map_err(|e| cuda_error(format!("capturing a CUDA graph failed: {e}")))?;
            let exec = drv::graph::instantiate(graph, sys::CUgraphInstantiate_flags(0));
            let _ = drv::graph::destroy(graph);
            exec.map_err(|e| cuda_error(format!("cannot instantiate a CUDA graph: {e}")))
        }
    }

    /// Enqueue device steps on the stream.
    fn enqueue(&self, steps: std::ops::Range<usize>, ptrs: &[sys::CUdeviceptr]) -> Result<()> {
        let stream = self.device.stream;
        for s in &self.program.steps[steps] {
            match s {
                DeviceStep::Kernel(k) => self.launch(k, ptrs)?,
                DeviceStep::Gemm(g) => {
                    self.gemm(g, ptrs)?;
                    if let Some(e) = &g.epilogue {
                        self.launch(e, ptrs)?;
                    }
                }
                DeviceStep::Copy { src, dst } => {
                    let bytes = self.program.buffers[dst.0].bytes();
                    if bytes > 0 && ptrs[src.0] != ptrs[dst.0] {
                        // SAFETY: same-size live buffers.
                        unsafe { drv::memcpy_dtod_async(ptrs[dst.0], ptrs[src.0], bytes, stream) }
                            .map_err(cuda_error)?;
                    }
                }
                DeviceStep::Zero { buf } => {
                    let bytes = self.program.buffers[buf.0].bytes();
                    if bytes > 0 {
                        // SAFETY: a live buffer of `bytes` bytes.
                        unsafe { drv::memset_d8_async(ptrs[buf.0], 0, bytes, stream) }
                            .map_err(cuda_error)?;
                    }
                }
                DeviceStep::Host { .. } => unreachable!("host steps are their own segments"),
            }
        }
        Ok(())
    }

    fn launch(&self, k: &DeviceKernel, ptrs: &[sys::CUdeviceptr]) -> Result<()> {
        if k.launch.blocks == 0 {
            return Ok(());
        }
        let mut args: Vec<sys::CUdeviceptr> = k.args.iter().map(|b| ptrs[b.0]).collect();
        if k.error_flag {
            args.push(self.error_word.ptr);
        }
        let mut params: Vec<*mut c_void> = args
            .iter_mut()
            .map(|a| (a as *mut sys::CUdeviceptr).cast())
            .collect();
        // SAFETY: a function compiled from `k.source`, whose parameters are one device
        // pointer per argument; the compiler planned every access inside its buffer.
        unsafe {
            drv::launch_kernel(
                self.functions[&k.hash],
                (k.launch.blocks, 1, 1),
                (k.launch.threads, 1, 1),
                0,
                self.device.stream,
                &mut params,
            )
        }
        .map_err(|e| cuda_error(format!("launching kernel `{}` failed: {e}", k.name)))
    }

    /// `c = a · b` (row-major, batched) as the column-major product `cᵀ = bᵀ · aᵀ`.
    fn gemm(&self, g: &GemmStep, ptrs: &[sys::CUdeviceptr]) -> Result<()> {
        let d = g.dims;
        if d.batch == 0 || d.m == 0 || d.n == 0 {
            return Ok(());
        }
        let big = |x: usize| {
            i32::try_from(x)
                .map_err(|_| cuda_error(format!("matmul dimension {x} exceeds cuBLAS's range")))
        };
        let (m, n, k) = (big(d.n)?, big(d.m)?, big(d.k)?);
        let op = |t: bool| {
            if t {
                blas::cublasOperation_t::CUBLAS_OP_T
            } else {
                blas::cublasOperation_t::CUBLAS_OP_N
            }
        };
        let lda = big(if d.transpose_b { d.k } else { d.n })?.max(1);
        let ldb = big(if d.transpose_a { d.m } else { d.k })?.max(1);
        let ldc = m.max(1);
        let (sa, sb, sc) = (
            d.b_batch_stride as i64,
            d.a_batch_stride as i64,
            (d.m * d.n) as i64,
        );
        let batch = big(d.batch)?;
        let h = self.device.blas;
        let (pa, pb, pc) = (ptrs[g.b.0], ptrs[g.a.0], ptrs[g.c.0]);
        // SAFETY: live buffers of the declared sizes; the workspace outlives the handle's
        // use by this executable.
        let status = unsafe {
            if self.workspace.bytes > 0 {
                blas::cublasSetWorkspace_v2(
                    h,
                    self.workspace.ptr as *mut c_void,
                    self.workspace.bytes,
                )
                .result()
                .map_err(|e| cuda_error(format!("cuBLAS workspace: {e:?}")))?;
            }
            let tf32 = std::env::var("FLUMEN_CUDA_TF32").is_ok_and(|v| v == "1");
            let mode = if tf32 && g.dtype == DType::F32 {
                blas::cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH
            } else {
                blas::cublasMath_t::CUBLAS_DEFAULT_MATH
            };
            blas::cublasSetMathMode(h, mode)
                .result()
                .map_err(|e| cuda_error(format!("cuBLAS math mode: {e:?}")))?;
            match g.dtype {
                DType::F32 => cudarc::cublas::result::sgemm_strided_batched(
                    h,
                    op(d.transpose_b),
                    op(d.transpose_a),
                    m,
                    n,
                    k,
                    &1.0f32,
                    pa as *const f32,
                    lda,
                    sa,
                    pb as *const f32,
                    ldb,
                    sb,
                    &0.0f32,
                    pc as *mut f32,
                    ldc,
                    sc,
                    batch,
                ),
                DType::F64 => cudarc::cublas::result::dgemm_strided_batched(
                    h,
                    op(d.transpose_b),
                    op(d.transpose_a),
                    m,
                    n,
                    k,
                    &1.0f64,
                    pa as *const f64,
                    lda,
                    sa,
                    pb as *const f64,
                    ldb,
                    sb,
                    &0.0f64,
                    pc as *mut f64,
                    ldc,
                    sc,
                    batch,
                ),
                other => {
                    return Err(cuda_error(format!(
                        "matmul: no cuBLAS product for {other} (float only)"
                    )));
                }
            }
        };
        status.map_err(|e| cuda_error(format!("cuBLAS gemm {m}x{n}x{k} failed: {e:?}")))
    }

    /// Run a host step: inputs to the host, the interpreter, the output back.
    fn host_step(
        &self,
        i: usize,
        ptrs: &[sys::CUdeviceptr],
        state: &mut SessionState,
    ) -> Result<()> {
        let DeviceStep::Host {
            op,
            name,
            inputs,
            output,
            ty,
        } = &self.program.steps[i]
        else {
            unreachable!("host segments hold host steps")
        };
        // SAFETY: the device's stream.
        unsafe { drv::stream::synchronize(self.device.stream) }
            .map_err(|e| cuda_error(format!("a kernel failed: {e}")))?;
        let values = inputs
            .iter()
            .map(|(b, t)| download(ptrs[b.0], t))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Value> = values.iter().collect();
        let counter = if op.is_stateful() {
            state.next_counter(name)
        } else {
            0
        };
        let v = eval_op(op, &refs, ty, EvalContext { counter })
            .map_err(|m| GraphError::runtime(op.name(), name, m))?;
        upload(ptrs[output.0], &v)
    }

    /// Fail the run if an index kernel recorded a bad index (and clear the word).
    fn check_error_word(&self) -> Result<()> {
        if self.error_word.bytes == 0 {
            return Ok(());
        }
        let mut word = [0i32];
        // SAFETY: the 4-byte error word.
        unsafe { drv::memcpy_dtoh_sync(&mut word, self.error_word.ptr) }.map_err(cuda_error)?;
        if word[0] == 0 {
            return Ok(());
        }
        // SAFETY: as above.
        unsafe { drv::memset_d8_sync(self.error_word.ptr, 0, 4) }.map_err(cuda_error)?;
        let site = self
            .program
            .error_sites
            .get(word[0] as usize - 1)
            .cloned()
            .unwrap_or_else(|| "an index op".into());
        Err(cuda_error(format!(
            "{site}: an index is out of range for the indexed axis (valid indices: 0..len)"
        )))
    }
}

impl Drop for CudaExecutable {
    fn drop(&mut self) {
        if let Some(p) = &self.profile {
            eprint!("{}", p.report(&self.program, &self.segments));
        }
        let _ = self.device.bind();
        // SAFETY: nothing of this executable runs after the stream drains.
        unsafe {
            let _ = drv::stream::synchronize(self.device.stream);
            for s in &mut self.segments {
                if let Segment::Device {
                    graph: Some((exec, _)),
                    ..
                } = s
                {
                    let _ = drv::graph::exec_destroy(*exec);
                }
            }
        }
        self.arena.free();
        self.workspace.free();
        self.error_word.free();
        for m in self.feeds.iter_mut().chain(self.constants.iter_mut()) {
            m.free();
        }
    }
}

// SAFETY: the raw handles (graphs, functions, device pointers) belong to the device's
// context and are used only through `&mut self` with that context bound.
unsafe impl Send for CudaExecutable {}
