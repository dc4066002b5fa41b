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
        let feed_ptrs: Vec<*const u8> = feeds
            .iter()
            .zip(&contiguous)
            .map(|(v, c)| data_ptr(c.as_ref().unwrap_or(v)) as *const u8)
            .collect();
        let const_ptrs: Vec<*const u8> = self
            .constants
            .iter()
            .map(|v| data_ptr(v) as *const u8)
            .collect();
        let mem = RunMemory {
            arena: self.arena.as_mut_ptr(),
            feeds: &feed_ptrs,
            variables: &var_ptrs,
            constants: &const_ptrs,
        };
        let mut ptrs: Vec<*mut u8> = Vec::with_capacity(self.buffers.len());
        resolve_buffers(&self.buffers, &mem, &mut ptrs);
        let mut args: Vec<*mut u8> = Vec::new();
        // SAFETY: every pointer addresses the memory of its buffer (arena planned by the
        // compiler, feeds type-checked by the session, variables and constants of the
        // executable's types), and the state is borrowed mutably for the whole run.
        unsafe {
            run_steps(
                &self.steps,
                &self.buffers,
                &ptrs,
                &mut |name| state.next_counter(name),
                &mut args,
            )?
        };
        Ok(self
            .fetches
            .iter()
            // SAFETY: every fetched buffer was written by the steps.
            .map(|(b, t)| unsafe { read_value(ptrs[b.0], t) })
            .collect())
    }
}
