//! Flumen's AOT runtime: the static library linked into every model exported with
//! `flumen compile` (or `flumen::aot::compile_library`).
//!
//! It holds what a compiled executable needs besides its fused kernels — the step executor
//! ([`flumen_runtime::exec::run_steps`], the same code a JIT session runs), the GEMM, the
//! interpreter kernels of interpreted steps, and the math routines kernels import
//! ([`math`]) — behind a small C ABI (`flumen_rt_*`) that the generated glue of each model
//! calls. Those symbols are local to the model's `.so` (its version script exports only the
//! model's entry points).
//!
//! # Contract
//! - No global mutable state: every mutable thing (variables, arena, random counters,
//!   worker threads, error text) belongs to a [`State`] the caller creates and frees. A
//!   state is used by one thread at a time; distinct states may run concurrently.
//!   (Below this crate, the GEMM library keeps per-thread scratch memory and caches the
//!   CPU's features once.)
//! - Every entry point checks its pointers, counts, byte sizes and alignment and returns
//!   a [`Code`]; a panic (a Flumen bug) is caught and reported as [`Code::Panic`].
//!
//! Building: `cargo build --release -p flumen-aot-runtime` writes
//! `target/release/libflumen_aot_runtime.a`; `flumen::aot` finds or builds it.
#![warn(missing_docs)]

pub mod math;
mod state;

pub use state::State;

use flumen_runtime::exec::KernelFn;
use std::ffi::{CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The version of the descriptor layout and `flumen_rt_*` signatures this runtime
/// implements; the glue embeds the version it was generated for
/// (`flumen_compiler::aot::RUNTIME_ABI_VERSION`).
pub const ABI_VERSION: u64 = 1;

/// Status codes of every entry point (the header's `FLUMEN_OK` / `FLUMEN_E_*`).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Success.
    Ok = 0,
    /// A required pointer is null.
    Null = 1,
    /// A byte size does not match.
    Size = 2,
    /// An index is out of range.
    Index = 3,
    /// A data pointer is not aligned to its element size.
    Align = 4,
    /// An operation failed while running.
    Runtime = 5,
    /// The embedded plan or data is invalid.
    Corrupt = 6,
    /// Memory or threads could not be allocated.
    Resource = 7,
    /// Internal error (a bug): a panic was caught.
    Panic = 8,
}

/// An error: its code and details.
#[derive(Debug)]
pub struct Failure(pub Code, pub String);

/// The model descriptor the generated glue passes (layout shared with the glue C).
#[repr(C)]
pub struct ModelDesc {
    /// Must equal [`ABI_VERSION`].
    pub abi_version: u64,
    /// Encoded plan.
    pub plan: *const u8,
    /// Its length.
    pub plan_len: usize,
    /// Data blob (constants, initial variable values), 64-byte aligned.
    pub data: *const u8,
    /// Its length.
    pub data_len: usize,
    /// Kernel table.
    pub kernels: *const KernelFn,
    /// Its length.
    pub n_kernels: usize,
    /// Number of inputs the entry points pass.
    pub n_inputs: usize,
    /// Number of outputs the entry points pass.
    pub n_outputs: usize,
}

/// Run `f`, turning a panic into [`Code::Panic`] with its message.
fn guarded(f: impl FnOnce() -> Result<(), Failure>) -> Result<(), Failure> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let m = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Failure(Code::Panic, format!("internal error: {m}")))
        }
    }
}

/// The status code of `r`, recording its details (or `""`) in `err`.
fn finish(r: Result<(), Failure>, err: Option<&mut CString>) -> i32 {
    let (code, msg) = match r {
        Ok(()) => (Code::Ok, String::new()),
        Err(Failure(code, msg)) => (code, msg),
    };
    if let Some(e) = err {
        *e = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    }
    code as i32
}

/// Run `f` on the state `s` (null: [`Code::Null`]), recording the outcome in the state.
fn with_state(s: *mut c_void, f: impl FnOnce(&mut State) -> Result<(), Failure>) -> i32 {
    let p = s as *mut State;
    if p.is_null() {
        return Code::Null as i32;
    }
    // SAFETY: a non-null state pointer came from `flumen_rt_state_new` and is not used
    // concurrently (the documented contract of every entry point).
    let r = guarded(|| f(unsafe { &mut *p }));
    // SAFETY: as above; the closure's borrow has ended.
    finish(r, Some(unsafe { &mut (*p).last_error }))
}

/// Create a state for model `m` with `threads` workers (0: one per core); `*out` receives
/// it.
///
/// # Safety
/// `m` must be the descriptor the generated glue defines; `out` must be null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flumen_rt_state_new(
    m: *const ModelDesc,
    threads: usize,
    out: *mut *mut c_void,
) -> i32 {
    let r = guarded(|| {
        if out.is_null() {
            return Err(Failure(Code::Null, "out is NULL".into()));
        }
        // SAFETY: `out` is non-null and writable by contract.
        unsafe { *out = std::ptr::null_mut() };
        // SAFETY: the glue passes its own static descriptor.
        let desc = unsafe { m.as_ref() }
            .ok_or_else(|| Failure(Code::Null, "model descriptor is NULL".into()))?;
        // SAFETY: forwarded contract.
        let state = unsafe { State::new(desc, threads) }?;
        // SAFETY: as above.
        unsafe { *out = Box::into_raw(Box::new(state)) as *mut c_void };
        Ok(())
    });
    finish(r, None)
}

/// Free a state (null is ignored).
///
/// # Safety
/// `s` must be null or a state from [`flumen_rt_state_new`], not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flumen_rt_state_free(s: *mut c_void) {
    if !s.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: by contract, `s` came from `Box::into_raw` in `flumen_rt_state_new`.
            drop(unsafe { Box::from_raw(s as *mut State) })
        }));
    }
}

/// Check that `p` is non-null and aligned for `dtype`-sized elements.
fn check_ptr(p: *const u8, align: usize, what: &str) -> Result<(), Failure> {
    if p.is_null() {
        return Err(Failure(Code::Null, format!("{what} is NULL")));
    }
    if !(p as usize).is_multiple_of(align) {
        return Err(Failure(
            Code::Align,
            format!("{what} is not aligned to {align} bytes"),
        ));
    }
    Ok(())
}

/// Slices of `n` entries of a C array (an empty slice for `n == 0`, whatever the pointer).
///
/// # Safety
/// A non-null `p` must address `n` readable entries.
unsafe fn c_array<'a, T>(p: *const T, n: usize, what: &str) -> Result<&'a [T], Failure> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Failure(Code::Null, format!("{what} is NULL")));
    }
    // SAFETY: forwarded contract.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// Run one step: `n_in` input pointers with their byte sizes, `n_out` output pointers with
/// theirs.
///
/// # Safety
/// Non-null array pointers must address `n_in`/`n_out` entries; each data pointer must
/// address the number of bytes its size entry states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flumen_rt_run(
    s: *mut c_void,
    inputs: *const *const c_void,
    input_bytes: *const usize,
    n_in: usize,
    outputs: *const *mut c_void,
    output_bytes: *const usize,
    n_out: usize,
) -> i32 {
    with_state(s, |state| {
        // SAFETY: forwarded contract.
        let (ins, in_b, outs, out_b) = unsafe {
            (
                c_array(inputs, n_in, "inputs")?,
                c_array(input_bytes, n_in, "input_bytes")?,
                c_array(outputs, n_out, "outputs")?,
                c_array(output_bytes, n_out, "output_bytes")?,
            )
        };
        let plan = state.plan();
        for (i, ((name, t), (p, b))) in plan.feeds.iter().zip(ins.iter().zip(in_b)).enumerate() {
            let what = format!("input {i} (`{name}`, {t})");
            check_ptr(*p as *const u8, t.dtype.size_bytes(), &what)?;
            let want = t.numel() * t.dtype.size_bytes();
            if *b != want {
                return Err(Failure(
                    Code::Size,
                    format!("{what}: {b} bytes, expected {want}"),
                ));
            }
        }
        for (i, ((name, _, t), (p, b))) in
            plan.fetches.iter().zip(outs.iter().zip(out_b)).enumerate()
        {
            let what = format!("output {i} (`{name}`, {t})");
            check_ptr(*p as *const u8, t.dtype.size_bytes(), &what)?;
            let want = t.numel() * t.dtype.size_bytes();
            if *b != want {
                return Err(Failure(
                    Code::Size,
                    format!("{what}: {b} bytes, expected {want}"),
                ));
            }
        }
        let ins: Vec<*const u8> = ins.iter().map(|p| *p as *const u8).collect();
        let outs: Vec<*mut u8> = outs.iter().map(|p| *p as *mut u8).collect();
        // SAFETY: checked above: every pointer is non-null, aligned and (by contract)
        // addresses the checked number of bytes.
        unsafe { state.run(&ins, &outs) }
    })
}

/// The variable `i` of a state, checking the caller's byte count.
fn variable_len(state: &State, i: usize, bytes: usize) -> Result<usize, Failure> {
    let vars = &state.plan().variables;
    let d = vars.get(i).ok_or_else(|| {
        Failure(
            Code::Index,
            format!("variable index {i} out of range ({} variables)", vars.len()),
        )
    })?;
    let want = d.ty.numel() * d.ty.dtype.size_bytes();
    if bytes != want {
        return Err(Failure(
            Code::Size,
            format!(
                "variable {i} (`{}`, {}): {bytes} bytes, expected {want}",
                d.name, d.ty
            ),
        ));
    }
    Ok(want)
}

/// Copy variable `i` (exactly `bytes` bytes) to `dst`.
///
/// # Safety
/// `s` must be a live state; non-null `dst` must have room for `bytes` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flumen_rt_read_variable(
    s: *const c_void,
    i: usize,
    dst: *mut c_void,
    bytes: usize,
) -> i32 {
    // Reading does not record an error in the (shared) state.
    let r = guarded(|| {
        // SAFETY: a non-null state pointer is a live state by contract.
        let state = unsafe { (s as *const State).as_ref() }
            .ok_or_else(|| Failure(Code::Null, "the state pointer is NULL".into()))?;
        let n = variable_len(state, i, bytes)?;
        if dst.is_null() {
            return Err(Failure(Code::Null, "dst is NULL".into()));
        }
        let src = state.variable(i).expect("index checked");
        // SAFETY: `dst` has room for `n` bytes by contract.
        unsafe { std::ptr::copy(src.as_ptr(), dst as *mut u8, n) };
        Ok(())
    });
    finish(r, None)
}

/// Overwrite variable `i` with `bytes` bytes from `src`.
///
/// # Safety
/// `s` must be a live state; non-null `src` must address `bytes` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flumen_rt_write_variable(
    s: *mut c_void,
    i: usize,
    src: *const c_void,
    bytes: usize,
) -> i32 {
    with_state(s, |state| {
        let n = variable_len(state, i, bytes)?;
        if src.is_null() {
            return Err(Failure(Code::Null, "src is NULL".into()));
        }
        let dtype = state.plan().variables[i].ty.dtype;
        if dtype == flumen_frontend::DType::Bool {
            // SAFETY: `src` addresses `n` bytes by contract.
            let raw = unsafe { std::slice::from_raw_parts(src as *const u8, n) };
            if let Some(k) = raw.iter().position(|&b| b > 1) {
                return Err(Failure(
                    Code::Runtime,
                    format!(
                        "variable {i}: bool element {k} is the byte {}, expected 0 or 1",
                        raw[k]
                    ),
                ));
            }
        }
        let dst = state.variable_mut(i).expect("index checked");
        // SAFETY: `src` addresses `n` bytes; `copy` tolerates overlap.
        unsafe { std::ptr::copy(src as *const u8, dst.as_mut_ptr(), n) };
        Ok(())
    })
}

/// Reset variables and random counters to the embedded values.
///
/// # Safety
/// `s` must be null or a live state.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flumen_rt_reset(s: *mut c_void) -> i32 {
    with_state(s, |state| {
        state.reset();
        Ok(())
    })
}

/// Static text for an error code.
#[unsafe(no_mangle)]
pub extern "C" fn flumen_rt_error_message(code: i32) -> *const c_char {
    let s: &'static std::ffi::CStr = match code {
        0 => c"success",
        1 => c"a required pointer argument is NULL",
        2 => c"a byte size does not match the tensor's size",
        3 => c"an index is out of range",
        4 => c"a data pointer is not aligned to its element size",
        5 => c"an operation failed while running",
        6 => c"the library's embedded plan or data is invalid",
        7 => c"memory or threads could not be allocated",
        8 => c"internal error (a bug in Flumen)",
        _ => c"unknown error code",
    };
    s.as_ptr()
}

/// The state's last error details (`""` for none or a null state); valid until the next
/// call on the state.
///
/// # Safety
/// `s` must be null or a live state.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn flumen_rt_last_error(s: *const c_void) -> *const c_char {
    // SAFETY: a non-null state pointer is a live state by contract.
    match unsafe { (s as *const State).as_ref() } {
        Some(state) => state.last_error.as_ptr(),
        None => c"".as_ptr(),
    }
}
