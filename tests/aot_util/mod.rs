//! Helpers of the AOT tests: load an exported library with libloading and call its entry
//! points with [`Value`]s, converting to and from the C layout (row-major, native byte
//! order, bools as one byte).

#![allow(dead_code)]

use flumen::{DType, TensorType, Value};
use libloading::{Library, Symbol};
use std::ffi::{CStr, c_char, c_void};
use std::path::{Path, PathBuf};

/// The static AOT runtime the tests link: `$FLUMEN_AOT_RUNTIME` if set, else the archive
/// cargo built for this very test run (`flumen-aot-runtime` is a dev-dependency, so
/// `cargo test` compiles its `staticlib` next to the test executables, in
/// `target/<profile>/deps/libflumen_aot_runtime-<hash>.a`; the newest one is taken), else
/// [`flumen::aot::runtime_library`] (which runs cargo). Reusing the test build keeps a
/// fresh `cargo test --workspace` from compiling the runtime and its crates a second time.
pub fn runtime_lib() -> PathBuf {
    static FOUND: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("FLUMEN_AOT_RUNTIME") {
                return PathBuf::from(p);
            }
            let deps = std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf));
            let newest = deps
                .and_then(|d| std::fs::read_dir(d).ok())
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    n.starts_with("libflumen_aot_runtime-") && n.ends_with(".a")
                })
                .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
                .max();
            match newest {
                Some((_, p)) => p,
                None => flumen::aot::runtime_library().unwrap(),
            }
        })
        .clone()
}

/// Export options linking [`runtime_lib`].
pub fn export_options() -> flumen::aot::ExportOptions {
    flumen::aot::ExportOptions {
        runtime_lib: Some(runtime_lib()),
        ..Default::default()
    }
}

/// A scratch directory for this test process.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flumen-aot-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// 8-byte-aligned bytes (enough for every dtype).
pub struct Buf {
    words: Vec<u64>,
    len: usize,
}

impl Buf {
    /// `len` zero bytes.
    pub fn zeros(len: usize) -> Buf {
        Buf {
            words: vec![0; len.div_ceil(8).max(1)],
            len,
        }
    }
    /// The bytes of `v`.
    pub fn of(v: &Value) -> Buf {
        let bytes = value_bytes(v);
        let mut b = Buf::zeros(bytes.len());
        b.bytes_mut().copy_from_slice(&bytes);
        b
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` bytes.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr() as *const u8, self.len) }
    }
    /// The bytes, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr() as *mut u8, self.len) }
    }
    /// Base pointer.
    pub fn ptr(&self) -> *const c_void {
        self.words.as_ptr() as *const c_void
    }
    /// Base pointer, writable.
    pub fn ptr_mut(&mut self) -> *mut c_void {
        self.words.as_mut_ptr() as *mut c_void
    }
    /// The value of type `ty` these bytes hold.
    pub fn value(&self, ty: &TensorType) -> Value {
        bytes_value(self.bytes(), ty)
    }
}

/// Native-order bytes of `v`, row-major.
pub fn value_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::F32(a) => a.iter().flat_map(|x| x.to_ne_bytes()).collect(),
        Value::F64(a) => a.iter().flat_map(|x| x.to_ne_bytes()).collect(),
        Value::I32(a) => a.iter().flat_map(|x| x.to_ne_bytes()).collect(),
        Value::I64(a) => a.iter().flat_map(|x| x.to_ne_bytes()).collect(),
        Value::U8(a) => a.iter().copied().collect(),
        Value::Bool(a) => a.iter().map(|&b| b as u8).collect(),
    }
}

/// The value of type `ty` in `b`.
pub fn bytes_value(b: &[u8], ty: &TensorType) -> Value {
    fn go<T: flumen::Element, const N: usize>(
        b: &[u8],
        shape: &[usize],
        f: fn([u8; N]) -> T,
    ) -> Value {
        let v = b
            .chunks_exact(N)
            .map(|c| f(c.try_into().unwrap()))
            .collect();
        Value::from_vec(shape, v).unwrap()
    }
    let s = &ty.shape;
    match ty.dtype {
        DType::F32 => go(b, s, f32::from_ne_bytes),
        DType::F64 => go(b, s, f64::from_ne_bytes),
        DType::I32 => go(b, s, i32::from_ne_bytes),
        DType::I64 => go(b, s, i64::from_ne_bytes),
        DType::U8 => go(b, s, |[x]: [u8; 1]| x),
        DType::Bool => go(b, s, |[x]: [u8; 1]| x != 0),
    }
}

type NewFn = unsafe extern "C" fn(*mut *mut c_void) -> i32;
type NewThreadsFn = unsafe extern "C" fn(*mut *mut c_void, usize) -> i32;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type RunFn = unsafe extern "C" fn(
    *mut c_void,
    *const *const c_void,
    *const usize,
    *const *mut c_void,
    *const usize,
) -> i32;
type ReadVarFn = unsafe extern "C" fn(*const c_void, usize, *mut c_void, usize) -> i32;
type WriteVarFn = unsafe extern "C" fn(*mut c_void, usize, *const c_void, usize) -> i32;
type ResetFn = unsafe extern "C" fn(*mut c_void) -> i32;
type MsgFn = unsafe extern "C" fn(i32) -> *const c_char;
type LastErrFn = unsafe extern "C" fn(*const c_void) -> *const c_char;
type InfoFn = unsafe extern "C" fn() -> *const c_char;

/// A loaded model library.
pub struct Lib {
    lib: Library,
    prefix: String,
    /// Input types, in order.
    pub inputs: Vec<TensorType>,
    /// Output types, in order.
    pub outputs: Vec<TensorType>,
    /// Variable types, in index order.
    pub variables: Vec<TensorType>,
}

/// A state of a [`Lib`] (freed on drop).
pub struct State<'a> {
    lib: &'a Lib,
    /// The raw state pointer.
    pub ptr: *mut c_void,
}

// SAFETY: a state may move between threads (it is used by one at a time).
unsafe impl Send for State<'_> {}

impl Lib {
    /// Load `path` (whose entry points have `prefix`), with the types of its tensors.
    pub fn load(
        path: &Path,
        prefix: &str,
        inputs: Vec<TensorType>,
        outputs: Vec<TensorType>,
        variables: Vec<TensorType>,
    ) -> Lib {
        // SAFETY: a Flumen library runs no code on load besides libc's initialisers.
        let lib = unsafe { Library::new(path) }.unwrap();
        Lib {
            lib,
            prefix: prefix.to_string(),
            inputs,
            outputs,
            variables,
        }
    }

    /// Load what `compile_library` reported.
    pub fn from_report(r: &flumen::aot::LibraryReport) -> Lib {
        let ts = |l: &[(String, TensorType)]| l.iter().map(|(_, t)| t.clone()).collect();
        Lib::load(
            &r.library,
            &r.prefix,
            ts(&r.inputs),
            ts(&r.outputs),
            ts(&r.variables),
        )
    }

    /// The entry point `{prefix}_{name}`.
    pub fn sym<T>(&self, name: &str) -> Symbol<'_, T> {
        let full = format!("{}_{name}\0", self.prefix);
        // SAFETY: the tests name each entry point with its C signature.
        unsafe { self.lib.get(full.as_bytes()) }.unwrap()
    }

    /// A new state (threads: 0 = every core).
    pub fn state(&self, threads: usize) -> State<'_> {
        let mut p = std::ptr::null_mut();
        // SAFETY: `p` is writable.
        let rc = unsafe { self.sym::<NewThreadsFn>("state_new_with_threads")(&mut p, threads) };
        assert_eq!(rc, 0, "state_new failed");
        assert!(!p.is_null());
        State { lib: self, ptr: p }
    }

    /// A state handle holding a null pointer (for bad-call tests; freeing null is a no-op).
    pub fn null_state(&self) -> State<'_> {
        State {
            lib: self,
            ptr: std::ptr::null_mut(),
        }
    }

    /// `{prefix}_state_new`'s raw result.
    pub fn state_new_raw(&self, out: *mut *mut c_void) -> i32 {
        // SAFETY: the test passes null or a writable pointer.
        unsafe { self.sym::<NewFn>("state_new")(out) }
    }

    /// `{prefix}_error_message(code)`.
    pub fn error_message(&self, code: i32) -> String {
        // SAFETY: returns a static C string.
        let p = unsafe { self.sym::<MsgFn>("error_message")(code) };
        // SAFETY: non-null, NUL-terminated.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }

    /// `{prefix}_info()`.
    pub fn info(&self) -> String {
        // SAFETY: returns a static C string.
        let p = unsafe { self.sym::<InfoFn>("info")() };
        // SAFETY: non-null, NUL-terminated.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

impl State<'_> {
    /// Run with raw pointers and sizes.
    pub fn run_raw(
        &self,
        ins: *const *const c_void,
        in_bytes: *const usize,
        outs: *const *mut c_void,
        out_bytes: *const usize,
    ) -> i32 {
        // SAFETY: the tests pass arrays of the library's counts (or deliberately bad ones
        // the library must reject before touching data).
        unsafe { self.lib.sym::<RunFn>("run")(self.ptr, ins, in_bytes, outs, out_bytes) }
    }

    /// Run on `inputs`, returning the outputs or `(code, last_error)`.
    pub fn run(&self, inputs: &[Value]) -> Result<Vec<Value>, (i32, String)> {
        let bufs: Vec<Buf> = inputs.iter().map(Buf::of).collect();
        let ptrs: Vec<*const c_void> = bufs.iter().map(Buf::ptr).collect();
        let sizes: Vec<usize> = bufs.iter().map(Buf::len).collect();
        let mut outs: Vec<Buf> = self
            .lib
            .outputs
            .iter()
            .map(|t| Buf::zeros(t.numel() * t.dtype.size_bytes()))
            .collect();
        let optrs: Vec<*mut c_void> = outs.iter_mut().map(Buf::ptr_mut).collect();
        let osizes: Vec<usize> = outs.iter().map(Buf::len).collect();
        let rc = self.run_raw(
            ptrs.as_ptr(),
            sizes.as_ptr(),
            optrs.as_ptr(),
            osizes.as_ptr(),
        );
        if rc != 0 {
            return Err((rc, self.last_error()));
        }
        Ok(outs
            .iter()
            .zip(&self.lib.outputs)
            .map(|(b, t)| b.value(t))
            .collect())
    }

    /// Variable `i`.
    pub fn variable(&self, i: usize) -> Value {
        let t = &self.lib.variables[i];
        let mut b = Buf::zeros(t.numel() * t.dtype.size_bytes());
        assert_eq!(self.read_variable_raw(i, b.ptr_mut(), b.len()), 0);
        b.value(t)
    }

    /// `{prefix}_read_variable`.
    pub fn read_variable_raw(&self, i: usize, dst: *mut c_void, bytes: usize) -> i32 {
        // SAFETY: tests pass a buffer of `bytes` bytes or a deliberately bad call.
        unsafe { self.lib.sym::<ReadVarFn>("read_variable")(self.ptr, i, dst, bytes) }
    }

    /// `{prefix}_write_variable`.
    pub fn write_variable_raw(&self, i: usize, src: *const c_void, bytes: usize) -> i32 {
        // SAFETY: as above.
        unsafe { self.lib.sym::<WriteVarFn>("write_variable")(self.ptr, i, src, bytes) }
    }

    /// Overwrite variable `i` with `v`.
    pub fn set_variable(&self, i: usize, v: &Value) {
        let b = Buf::of(v);
        assert_eq!(self.write_variable_raw(i, b.ptr(), b.len()), 0);
    }

    /// `{prefix}_reset`.
    pub fn reset(&self) -> i32 {
        // SAFETY: a live state.
        unsafe { self.lib.sym::<ResetFn>("reset")(self.ptr) }
    }

    /// `{prefix}_last_error`.
    pub fn last_error(&self) -> String {
        // SAFETY: a live state; the string is valid until the next call.
        let p = unsafe { self.lib.sym::<LastErrFn>("last_error")(self.ptr) };
        // SAFETY: non-null, NUL-terminated.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

impl Drop for State<'_> {
    fn drop(&mut self) {
        // SAFETY: the state came from `state_new` and is not used afterwards.
        unsafe { self.lib.sym::<FreeFn>("state_free")(self.ptr) }
    }
}

/// Free function for tests that need `{prefix}_state_free` on a raw pointer.
pub fn free_raw(lib: &Lib, p: *mut c_void) {
    // SAFETY: null or a state from `state_new`.
    unsafe { lib.sym::<FreeFn>("state_free")(p) }
}

/// Assert two value lists are equal bit for bit, naming `what` and the index.
pub fn assert_bits(what: &str, a: &[Value], b: &[Value]) {
    assert_eq!(a.len(), b.len(), "{what}: count");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(x.bit_eq(y), "{what} {i}: JIT {x:?} vs library {y:?}");
    }
}
