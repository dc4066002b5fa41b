//! Running an executable: resolve buffer pointers (arena, feeds, variables, constants), run
//! the steps in order (large kernels split across threads), copy out the fetches.

use super::{Executable, KernelStep, Step, Storage, matmul_into};
use crate::interpreter::{EvalContext, eval_op};
use crate::state::SessionState;
use flumen_frontend::{DType, Element, GraphError, Result, TensorType, Value, map_value};
use ndarray::{ArrayD, IxDyn};

/// Work (estimated scalar operations) above which a kernel is split across threads.
const PARALLEL_WORK: usize = 1 << 16;

/// Raw pointers shared with worker threads; every kernel writes disjoint outer ranges.
#[derive(Clone, Copy)]
struct SendPtr(*const *mut u8);
// SAFETY: kernels split by outer range write disjoint elements; the pointed-to argument
// array outlives the parallel section.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

fn data_ptr(v: &Value) -> *mut u8 {
    map_value!(v, a => a.as_ptr() as *mut u8)
}

fn data_ptr_mut(v: &mut Value) -> *mut u8 {
    map_value!(v, a => a.as_mut_ptr().cast::<u8>())
}

fn standard(v: &Value) -> bool {
    map_value!(v, a => a.is_standard_layout())
}

/// Copy `ty`-typed data at `ptr` into a new value.
///
/// # Safety
/// `ptr` must address `ty.numel()` initialised elements of `ty.dtype`.
pub unsafe fn read_value(ptr: *const u8, ty: &TensorType) -> Value {
    unsafe fn go<T: Element>(ptr: *const u8, shape: &[usize]) -> Value {
        let n: usize = shape.iter().product();
        // SAFETY: forwarded from the caller.
        let data = unsafe { std::slice::from_raw_parts(ptr as *const T, n) }.to_vec();
        T::wrap(ArrayD::from_shape_vec(IxDyn(shape), data).expect("numel matches shape"))
    }
    // SAFETY: forwarded from the caller.
    unsafe {
        match ty.dtype {
            DType::F32 => go::<f32>(ptr, &ty.shape),
            DType::F64 => go::<f64>(ptr, &ty.shape),
            DType::I32 => go::<i32>(ptr, &ty.shape),
            DType::I64 => go::<i64>(ptr, &ty.shape),
            DType::U8 => go::<u8>(ptr, &ty.shape),
            DType::Bool => go::<bool>(ptr, &ty.shape),
        }
    }
}

/// Copy a value's elements (row-major) to `ptr`.
///
/// # Safety
/// `ptr` must address room for `v.len()` elements of `v.dtype()`.
pub unsafe fn write_value(ptr: *mut u8, v: &Value) {
    map_value!(v, a => {
        let n = a.len();
        // SAFETY: forwarded from the caller; source and destination do not overlap because
        // the value is a fresh interpreter result.
        let dst = unsafe { std::slice::from_raw_parts_mut(ptr as *mut _, n) };
        for (d, s) in dst.iter_mut().zip(a.iter()) {
            *d = *s;
        }
    })
}

impl Executable {
    /// Run with `feeds` (one per [`Executable::feeds`] entry, already type-checked by the
    /// session) against the session `state`. Variables the executable uses must be
    /// initialised.
    pub fn run(&mut self, feeds: &[&Value], state: &mut SessionState) -> Result<Vec<Value>> {
        // Feeds must be contiguous row-major; copy the rare strided one.
        let contiguous: Vec<Option<Value>> = feeds
            .iter()
            .map(|v| {
                (!standard(v)).then(
                    || map_value!(*v, a => Element::wrap(a.as_standard_layout().into_owned())),
                )
            })
            .collect();
        for name in &self.variables {
            let v = state
                .variables
                .get_mut(name)
                .ok_or_else(|| GraphError::runtime("variable", name, "not initialised"))?;
            if !standard(v) {
                *v = map_value!(&*v, a => Element::wrap(a.as_standard_layout().into_owned()));
            }
        }
        let var_ptrs: Vec<*mut u8> = self
            .variables
            .iter()
            .map(|n| data_ptr_mut(state.variables.get_mut(n).expect("checked above")))
            .collect();
        let arena = self.arena.as_mut_ptr();
        let mut ptrs: Vec<*mut u8> = Vec::with_capacity(self.buffers.len());
        for b in &self.buffers {
            let p = match &b.storage {
                // SAFETY: offsets were planned inside the arena.
                Storage::Arena { offset } => unsafe { arena.add(*offset) },
                Storage::Feed(i) => data_ptr(contiguous[*i].as_ref().unwrap_or(feeds[*i])),
                Storage::Variable(i) => var_ptrs[*i],
                Storage::Constant(i) => data_ptr(&self.constants[*i]),
                Storage::Alias(other) => ptrs[other.0],
            };
            ptrs.push(p);
        }
        let mut args: Vec<*mut u8> = Vec::new();
        for step in &self.steps {
            match step {
                Step::Kernel(k) => {
                    args.clear();
                    args.extend(k.args.iter().map(|b| ptrs[b.0]));
                    // SAFETY: the compiler planned every access inside its buffer.
                    unsafe { run_kernel(k, &args) };
                }
                Step::MatMul(m) => {
                    let epilogue = m.epilogue.as_ref().map(|(f, bufs)| {
                        args.clear();
                        args.extend(bufs.iter().map(|b| ptrs[b.0]));
                        (*f, args.as_ptr())
                    });
                    // SAFETY: planned buffers of the right sizes; c does not alias a or b;
                    // the epilogue's arguments cover its accesses.
                    unsafe {
                        matmul_into(
                            m.dtype,
                            ptrs[m.a.0],
                            ptrs[m.b.0],
                            ptrs[m.c.0],
                            &m.dims,
                            epilogue,
                        )
                    };
                }
                Step::Interpret {
                    op,
                    name,
                    inputs,
                    output,
                    ty,
                } => {
                    // SAFETY: each input buffer holds a value of its recorded type.
                    let values: Vec<Value> = inputs
                        .iter()
                        .map(|(b, t)| unsafe { read_value(ptrs[b.0], t) })
                        .collect();
                    let refs: Vec<&Value> = values.iter().collect();
                    let counter = if op.is_stateful() {
                        state.next_counter(name)
                    } else {
                        0
                    };
                    let v = eval_op(op, &refs, ty, EvalContext { counter })
                        .map_err(|m| GraphError::runtime(op.name(), name, m))?;
                    // SAFETY: the output buffer has room for the node's type.
                    unsafe { write_value(ptrs[output.0], &v) };
                }
                Step::Copy { src, dst } => {
                    let bytes = self.buffers[dst.0].bytes();
                    // SAFETY: same-size buffers; `copy` tolerates overlap.
                    unsafe { std::ptr::copy(ptrs[src.0], ptrs[dst.0], bytes) };
                }
            }
        }
        Ok(self
            .fetches
            .iter()
            // SAFETY: every fetched buffer was written by the steps.
            .map(|(b, t)| unsafe { read_value(ptrs[b.0], t) })
            .collect())
    }
}

/// Run one kernel, split across two threads when it is large.
///
/// # Safety
/// `args` must hold valid base pointers for every access of the kernel.
unsafe fn run_kernel(k: &KernelStep, args: &[*mut u8]) {
    let n = k.outer_len;
    if k.work >= PARALLEL_WORK && n >= 2 && rayon::current_num_threads() > 1 {
        let p = SendPtr(args.as_ptr());
        let f = k.f;
        let threads = rayon::current_num_threads().min(n);
        let chunk = n.div_ceil(threads);
        rayon::scope(|s| {
            for t in 0..threads {
                let (begin, end) = (t * chunk, ((t + 1) * chunk).min(n));
                if begin < end {
                    s.spawn(move |_| {
                        let p = p;
                        // SAFETY: disjoint outer ranges; args outlive the scope.
                        unsafe { f(p.0, begin, end) }
                    });
                }
            }
        });
    } else {
        // SAFETY: forwarded from the caller.
        unsafe { (k.f)(args.as_ptr(), 0, n) }
    }
}
