//! [`State`]: one instance of an exported model — its decoded plan, variables, arena,
//! random counters and worker threads. Everything mutable lives here; the model's
//! descriptor (plan bytes, weights, kernel table) is immutable data of the library.

use crate::{Code, Failure, ModelDesc};
use flumen_runtime::exec::{
    Arena, BufferDecl, KernelFn, Plan, RunMemory, Step, resolve_buffers, run_steps,
};

/// A 64-byte-aligned, zero-initialised byte buffer (a variable's storage).
struct Bytes {
    arena: Arena,
    /// The base pointer, taken once (the arena never moves).
    ptr: *mut u8,
}

impl Bytes {
    fn new(len: usize) -> Bytes {
        let mut arena = Arena::new(len);
        let ptr = arena.as_mut_ptr();
        Bytes { arena, ptr }
    }
    fn len(&self) -> usize {
        self.arena.len()
    }
}

/// Raw state shared with the rayon pool for the duration of one run.
struct AssertSend<T>(T);
// SAFETY: the caller holds `&mut State` for the whole run; the pool thread is the only
// one touching the state while the calling thread waits in `install`.
unsafe impl<T> Send for AssertSend<T> {}

/// What one run hands to the pool: steps, buffers, pointers, counters, scratch.
type Job<'a> = (
    &'a Vec<Step>,
    &'a Vec<BufferDecl>,
    &'a Vec<*mut u8>,
    &'a mut Vec<(String, u64)>,
    &'a mut Vec<*mut u8>,
);

/// One instance of a model.
pub struct State {
    plan: Plan,
    steps: Vec<Step>,
    desc_data: *const u8,
    variables: Vec<Bytes>,
    var_ptrs: Vec<*mut u8>,
    const_ptrs: Vec<*const u8>,
    counters: Vec<(String, u64)>,
    arena: Arena,
    ptrs: Vec<*mut u8>,
    args: Vec<*mut u8>,
    pool: rayon::ThreadPool,
    /// Details of the last error, NUL-terminated for C.
    pub last_error: std::ffi::CString,
}

impl State {
    /// Decode and validate the model, allocate variables (set to the embedded weights),
    /// the arena and a pool of `threads` workers (0: one per core).
    ///
    /// # Safety
    /// `desc` must describe data that lives as long as the state (the library's own
    /// read-only data) and a kernel table of compiled kernels of the plan.
    pub unsafe fn new(desc: &ModelDesc, threads: usize) -> Result<State, Failure> {
        let corrupt = |m: String| Failure(Code::Corrupt, m);
        if desc.abi_version != crate::ABI_VERSION {
            return Err(corrupt(format!(
                "library built for runtime ABI {} but the runtime is ABI {}",
                desc.abi_version,
                crate::ABI_VERSION
            )));
        }
        if desc.plan.is_null() || desc.data.is_null() || desc.kernels.is_null() {
            return Err(corrupt("null pointer in the model descriptor".into()));
        }
        // SAFETY: the descriptor's pointers and lengths describe the library's data.
        let (plan_bytes, data, table) = unsafe {
            (
                std::slice::from_raw_parts(desc.plan, desc.plan_len),
                std::slice::from_raw_parts(desc.data, desc.data_len),
                std::slice::from_raw_parts(desc.kernels, desc.n_kernels),
            )
        };
        if !(desc.data as usize).is_multiple_of(64) {
            return Err(corrupt("the data blob is not 64-byte aligned".into()));
        }
        let plan = Plan::decode(plan_bytes).map_err(|e| corrupt(format!("plan: {e}")))?;
        if plan.feeds.len() != desc.n_inputs || plan.fetches.len() != desc.n_outputs {
            return Err(corrupt(
                "plan and entry points disagree on input/output counts".into(),
            ));
        }
        for d in plan.variables.iter().chain(&plan.constants) {
            let end = d.offset.checked_add(d.ty.numel() * d.ty.dtype.size_bytes());
            if end.is_none_or(|e| e > data.len()) {
                return Err(corrupt(format!(
                    "data of `{}` lies outside the blob",
                    d.name
                )));
            }
        }
        let kernels: Vec<KernelFn> = table.to_vec();
        let steps = plan.steps_with(&kernels).map_err(corrupt)?;
        let const_ptrs = plan
            .constants
            .iter()
            .map(|d| data[d.offset..].as_ptr())
            .collect();
        let variables: Vec<Bytes> = plan
            .variables
            .iter()
            .map(|d| Bytes::new(d.ty.numel() * d.ty.dtype.size_bytes()))
            .collect();
        let var_ptrs = variables.iter().map(|b| b.ptr).collect();
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("flumen-aot-{i}"))
            .build()
            .map_err(|e| {
                Failure(
                    Code::Resource,
                    format!("cannot start {threads} threads: {e}"),
                )
            })?;
        let mut state = State {
            arena: Arena::new(plan.arena_bytes),
            counters: Vec::new(),
            steps,
            desc_data: desc.data,
            variables,
            var_ptrs,
            const_ptrs,
            ptrs: Vec::new(),
            args: Vec::new(),
            pool,
            last_error: Default::default(),
            plan,
        };
        state.reset();
        Ok(state)
    }

    /// Variables back to the embedded weights, random counters to their embedded values.
    pub fn reset(&mut self) {
        for (d, v) in self.plan.variables.iter().zip(&self.variables) {
            // SAFETY: `new` checked the extent inside the blob; sizes are equal.
            unsafe { std::ptr::copy_nonoverlapping(self.desc_data.add(d.offset), v.ptr, v.len()) };
        }
        self.counters = self.plan.counters.clone();
    }

    /// The buffers (for size checks).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Run one step on caller memory. Sizes and alignment are checked by the caller
    /// ([`crate::flumen_rt_run`]).
    ///
    /// # Safety
    /// `inputs[i]` must address the feed's bytes and `outputs[i]` room for the fetch's.
    pub unsafe fn run(&mut self, inputs: &[*const u8], outputs: &[*mut u8]) -> Result<(), Failure> {
        let mem = RunMemory {
            arena: self.arena.as_mut_ptr(),
            feeds: inputs,
            variables: &self.var_ptrs,
            constants: &self.const_ptrs,
        };
        resolve_buffers(&self.plan.buffers, &mem, &mut self.ptrs);
        let job = AssertSend((
            &self.steps,
            &self.plan.buffers,
            &self.ptrs,
            &mut self.counters,
            &mut self.args,
        ));
        let result = self.pool.install(move || {
            let job = job;
            let (steps, buffers, ptrs, counters, args): Job<'_> = job.0;
            let mut counter = |name: &str| next_counter(counters, name);
            // SAFETY: the pointers address the arena, the variables, the embedded
            // constants and the caller's inputs, each of its buffer's size.
            unsafe { run_steps(steps, buffers, ptrs, &mut counter, args) }
                .map_err(|e| e.to_string())
        });
        result.map_err(|m| Failure(Code::Runtime, m))?;
        for ((_, b, t), out) in self.plan.fetches.iter().zip(outputs) {
            let bytes = t.numel() * t.dtype.size_bytes();
            // SAFETY: the fetched buffer holds `bytes`; the caller's output has room.
            unsafe { std::ptr::copy(self.ptrs[b.0], *out, bytes) };
        }
        Ok(())
    }

    /// Variable `i`'s bytes.
    pub fn variable(&self, i: usize) -> Option<&[u8]> {
        let v = self.variables.get(i)?;
        // SAFETY: the allocation holds `len` initialised bytes.
        Some(unsafe { std::slice::from_raw_parts(v.ptr, v.len()) })
    }

    /// Variable `i`'s bytes, writable.
    pub fn variable_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        let v = self.variables.get_mut(i)?;
        // SAFETY: the allocation holds `len` bytes, borrowed mutably through `self`.
        Some(unsafe { std::slice::from_raw_parts_mut(v.ptr, v.len()) })
    }
}

/// The counter of random node `name`, post-incremented (0 for a node not in the plan's
/// list, which the compiler never produces).
fn next_counter(counters: &mut Vec<(String, u64)>, name: &str) -> u64 {
    match counters.iter_mut().find(|(n, _)| n == name) {
        Some((_, c)) => {
            let v = *c;
            *c += 1;
            v
        }
        None => {
            counters.push((name.to_string(), 1));
            0
        }
    }
}
