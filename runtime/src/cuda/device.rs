//! Opening a CUDA device. The driver (`libcuda`), NVRTC and cuBLAS are loaded at run time,
//! so a binary built with `--features cuda` starts anywhere; [`CudaDevice::open`] checks
//! each library before first use and returns an error naming what is missing (no driver,
//! no NVRTC or cuBLAS from the toolkit, no device with that ordinal) instead of the panic
//! that calling into a missing library would cause.

use cudarc::driver::{CudaContext, result as drv, sys};
use flumen_frontend::{GraphError, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a device is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Device ordinal.
    pub ordinal: usize,
    /// Marketing name (e.g. "NVIDIA H100 80GB HBM3").
    pub name: String,
    /// Compute capability (major, minor).
    pub compute_capability: (i32, i32),
    /// Global memory in bytes.
    pub total_memory: usize,
}

/// An error for the CUDA runtime.
pub(crate) fn cuda_error(what: impl std::fmt::Display) -> GraphError {
    GraphError::invalid(format!("cuda: {what}"))
}

/// The shared library names cudarc tries for `lib` (those of this platform's usual form,
/// e.g. `libcuda.so`, `libcuda.so.1` on Linux), for error messages.
fn candidates(lib: &str) -> String {
    let stem = format!(
        "{}{lib}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let mut names: Vec<String> = cudarc::get_lib_name_candidates(lib)
        .into_iter()
        .filter(|n| n.starts_with(&stem))
        .collect();
    names.dedup();
    names.join(", ")
}

/// Check that the driver, NVRTC and cuBLAS libraries can be loaded, naming the first one
/// that cannot.
pub fn check_libraries() -> Result<()> {
    // SAFETY: these only try to open the libraries (dlopen) and close them again.
    let (driver, nvrtc, cublas) = unsafe {
        (
            sys::is_culib_present(),
            cudarc::nvrtc::sys::is_culib_present(),
            cudarc::cublas::sys::is_culib_present(),
        )
    };
    if !driver {
        return Err(cuda_error(format!(
            "no NVIDIA driver: the CUDA driver library could not be loaded (tried {}); install \
             the NVIDIA driver or add its directory to LD_LIBRARY_PATH",
            candidates("cuda")
        )));
    }
    if !nvrtc {
        return Err(cuda_error(format!(
            "the NVRTC runtime compiler library could not be loaded (tried {}); install the \
             CUDA toolkit's NVRTC (CUDA 12) or add its directory to LD_LIBRARY_PATH",
            candidates("nvrtc")
        )));
    }
    if !cublas {
        return Err(cuda_error(format!(
            "the cuBLAS library could not be loaded (tried {}); install the CUDA toolkit's \
             cuBLAS (CUDA 12) or add its directory to LD_LIBRARY_PATH",
            candidates("cublas")
        )));
    }
    Ok(())
}

/// An open device: its context, the stream every program runs on, a cuBLAS handle, and the
/// compiled-kernel cache shared by the programs run on it.
pub struct CudaDevice {
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: sys::CUstream,
    pub(crate) blas: cudarc::cublas::sys::cublasHandle_t,
    pub(crate) info: DeviceInfo,
    /// Compiled kernels by source hash: the module (kept loaded) and the function.
    pub(crate) kernels: Mutex<HashMap<u64, sys::CUfunction>>,
    pub(crate) modules: Mutex<Vec<sys::CUmodule>>,
}

// SAFETY: the raw handles are only used with the context bound to the calling thread
// (`bind`), and the stream and cuBLAS handle are used by one run at a time (a session
// runs one executable at a time; `CudaExecutable::run` takes `&mut self`).
unsafe impl Send for CudaDevice {}
unsafe impl Sync for CudaDevice {}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaDevice({:?})", self.info)
    }
}

impl CudaDevice {
    /// Open device `ordinal`: check the libraries, initialise the driver, create a stream
    /// and a cuBLAS handle. Errors name what is missing.
    pub fn open(ordinal: usize) -> Result<Arc<CudaDevice>> {
        check_libraries()?;
        drv::init().map_err(|e| cuda_error(format!("the driver failed to initialise: {e}")))?;
        let count = drv::device::get_count()
            .map_err(|e| cuda_error(format!("cannot count devices: {e}")))?;
        if count <= 0 {
            return Err(cuda_error(
                "no CUDA device: the driver is installed but reports no GPU",
            ));
        }
        if ordinal >= count as usize {
            return Err(cuda_error(format!(
                "no CUDA device {ordinal}: the driver reports {count} device(s) (0..{count})"
            )));
        }
        let ctx = CudaContext::new(ordinal)
            .map_err(|e| cuda_error(format!("cannot open device {ordinal}: {e}")))?;
        let info = DeviceInfo {
            ordinal,
            name: ctx.name().map_err(cuda_error)?,
            compute_capability: ctx.compute_capability().map_err(cuda_error)?,
            total_memory: ctx.total_mem().map_err(cuda_error)?,
        };
        ctx.bind_to_thread().map_err(cuda_error)?;
        let stream = drv::stream::create(drv::stream::StreamKind::NonBlocking)
            .map_err(|e| cuda_error(format!("cannot create a stream: {e}")))?;
        let blas = cudarc::cublas::result::create_handle()
            .map_err(|e| cuda_error(format!("cannot create a cuBLAS handle: {e:?}")))?;
        // SAFETY: valid handle and stream of the bound context.
        unsafe {
            cudarc::cublas::result::set_stream(blas, stream as _)
                .map_err(|e| cuda_error(format!("cuBLAS: {e:?}")))?;
        }
        Ok(Arc::new(CudaDevice {
            ctx,
            stream,
            blas,
            info,
            kernels: Mutex::new(HashMap::new()),
            modules: Mutex::new(Vec::new()),
        }))
    }

    /// What the device is.
    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// Make the device's context current on the calling thread.
    pub(crate) fn bind(&self) -> Result<()> {
        self.ctx.bind_to_thread().map_err(cuda_error)
    }

    /// The NVRTC target: the device's own architecture (`sm_90` on an H100).
    pub fn arch(&self) -> String {
        let (major, minor) = self.info.compute_capability;
        format!("sm_{major}{minor}")
    }

    /// The functions for `kernels` (`(hash, entry)` pairs), compiling the ones not in the
    /// cache as one NVRTC translation unit (the prelude and each source once).
    pub(crate) fn functions(
        &self,
        prelude: &str,
        kernels: &[(u64, &str, &str)],
    ) -> Result<HashMap<u64, sys::CUfunction>> {
        let mut cache = self.kernels.lock().expect("kernel cache poisoned");
        let mut missing: Vec<&(u64, &str, &str)> = Vec::new();
        for k in kernels {
            if !cache.contains_key(&k.0) && !missing.iter().any(|m| m.0 == k.0) {
                missing.push(k);
            }
        }
        if !missing.is_empty() {
            let mut src = prelude.to_string();
            for (_, _, source) in &missing {
                src.push('\n');
                src.push_str(source);
            }
            let opts = cudarc::nvrtc::CompileOptions {
                // Arithmetic is never contracted (results match the interpreter's per-op
                // rounding); no flush to zero; IEEE division and square root.
                fmad: Some(false),
                ftz: Some(false),
                prec_div: Some(true),
                prec_sqrt: Some(true),
                options: vec![format!("--gpu-architecture={}", self.arch())],
                name: Some("flumen_kernels.cu".into()),
                ..Default::default()
            };
            let ptx = cudarc::nvrtc::compile_ptx_with_opts(&src, opts)
                .map_err(|e| cuda_error(format!("NVRTC failed to compile the kernels: {e:?}")))?;
            let image = std::ffi::CString::new(ptx.to_src())
                .map_err(|_| cuda_error("NVRTC returned PTX with a NUL byte"))?;
            self.bind()?;
            // SAFETY: a NUL-terminated PTX image; the module stays loaded while the device
            // lives (its functions are cached).
            let module = unsafe { drv::module::load_data(image.as_ptr().cast()) }
                .map_err(|e| cuda_error(format!("cannot load the compiled kernels: {e}")))?;
            self.modules.lock().expect("poisoned").push(module);
            for (hash, entry, _) in missing {
                let name = std::ffi::CString::new(*entry).expect("entry names are ASCII");
                // SAFETY: a loaded module and a NUL-terminated name.
                let f = unsafe { drv::module::get_function(module, name) }
                    .map_err(|e| cuda_error(format!("kernel {entry} missing: {e}")))?;
                cache.insert(*hash, f);
            }
        }
        Ok(kernels.iter().map(|k| (k.0, cache[&k.0])).collect())
    }
}

impl Drop for CudaDevice {
    fn drop(&mut self) {
        let _ = self.bind();
        // SAFETY: handles created in `open`/`functions` and used by nothing else now.
        unsafe {
            let _ = drv::stream::synchronize(self.stream);
            let _ = cudarc::cublas::result::destroy_handle(self.blas);
            for m in self.modules.get_mut().expect("poisoned").drain(..) {
                let _ = drv::module::unload(m);
            }
            let _ = drv::stream::destroy(self.stream);
        }
    }
}
