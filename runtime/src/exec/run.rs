//! Running an executable on session-owned values: make feeds and variables contiguous, take
//! their base pointers, run the steps through [`super::raw`], copy out the fetches.

use super::Executable;
use super::raw::{RunMemory, resolve_buffers, run_steps};
use crate::state::SessionState;
use flumen_frontend::{DType, Element, GraphError, Result, TensorType, Value, map_value};
use ndarray::{ArrayD, IxDyn};

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
        match a.as_slice() {
            // Contiguous row-major (every interpreter kernel's output): one memcpy.
            Some(src) => dst.copy_from_slice(src),
            None => {
                for (d, s) in dst.iter_mut().zip(a.iter()) {
                    *d = *s;
                }
            }
        }
    })
}

impl Executable {
    /// Run with `feeds` (one per [`Executable::feeds`] entry, already type-checked by the
    /// session) against the session `state`. Variables the executable uses must be
    /// initialised.
    ///
    /// A steady-state run allocates only what it returns: the `Vec` of fetches and one
    /// data vector per non-empty fetch (plus ndarray's shape and stride vectors for a fetch
    /// of rank above 4), and whatever the steps themselves allocate (the `gemm` crate's
    /// packing buffers, interpreter fallback steps, rayon's job queue blocks). The pointer
    /// tables live in the arena and keep their capacity between runs; a strided feed or
    /// variable is copied to row-major order (an allocation, only in that rare case).
    pub fn run(&mut self, feeds: &[&Value], state: &mut SessionState) -> Result<Vec<Value>> {
        // Feeds must be contiguous row-major; copy the rare strided one.
        let contiguous: Vec<Option<Value>> = if feeds.iter().all(|v| standard(v)) {
            Vec::new()
        } else {
            feeds
                .iter()
                .map(|v| {
                    (!standard(v)).then(
                        || map_value!(*v, a => Element::wrap(a.as_standard_layout().into_owned())),
                    )
                })
                .collect()
        };
        let ptrs = feeds.iter().enumerate().map(|(i, v)| {
            let v = contiguous.get(i).and_then(Option::as_ref).unwrap_or(v);
            data_ptr(v) as *const u8
        });
        // SAFETY: each pointer is the row-major data of a feed of the checked type (or of
        // its row-major copy), alive and unchanged until the call returns.
        unsafe { self.run_with_feed_ptrs(ptrs, state) }
    }

    /// [`Executable::run`] with each feed given as the address of its row-major data (one
    /// per [`Executable::feeds`] entry, in order): what borrowed feeds
    /// (`Session::run_views`) use, so nothing is copied.
    ///
    /// # Safety
    /// Each pointer must address the row-major data of a value of its feed's declared type,
    /// alive and unchanged until the call returns.
    pub unsafe fn run_with_feed_ptrs(
        &mut self,
        feeds: impl IntoIterator<Item = *const u8>,
        state: &mut SessionState,
    ) -> Result<Vec<Value>> {
        for name in &self.variables {
            let v = state
                .variables
                .get_mut(name)
                .ok_or_else(|| GraphError::runtime("variable", name, "not initialised"))?;
            if !standard(v) {
                *v = map_value!(&*v, a => Element::wrap(a.as_standard_layout().into_owned()));
            }
        }
        let (arena, t) = self.arena.parts();
        t.variables.clear();
        t.variables.extend(
            self.variables
                .iter()
                .map(|n| data_ptr_mut(state.variables.get_mut(n).expect("checked above"))),
        );
        t.feeds.clear();
        t.feeds.extend(feeds);
        if t.feeds.len() != self.feeds.len() {
            return Err(GraphError::invalid(format!(
                "run: {} feeds given, the executable takes {}",
                t.feeds.len(),
                self.feeds.len()
            )));
        }
        t.constants.clear();
        t.constants
            .extend(self.constants.iter().map(|v| data_ptr(v) as *const u8));
        let mem = RunMemory {
            arena,
            feeds: &t.feeds,
            variables: &t.variables,
            constants: &t.constants,
        };
        resolve_buffers(&self.buffers, &mem, &mut t.ptrs);
        // The counter of a random node: a map lookup, inserting (and allocating its name)
        // only on the node's first run.
        let mut counter = |name: &str| match state.counters.get_mut(name) {
            Some(c) => {
                let v = *c;
                *c += 1;
                v
            }
            None => state.next_counter(name),
        };
        // SAFETY: every pointer addresses the memory of its buffer (arena planned by the
        // compiler, feeds by the caller's contract, variables and constants of the
        // executable's types), and the state is borrowed mutably for the whole run.
        unsafe {
            run_steps(
                &self.steps,
                &self.buffers,
                &t.ptrs,
                &mut counter,
                &mut t.args,
            )?
        };
        let ptrs = &t.ptrs;
        Ok(self
            .fetches
            .iter()
            // SAFETY: every fetched buffer was written by the steps.
            .map(|(b, t)| unsafe { read_value(ptrs[b.0], t) })
            .collect())
    }
}
