//! Device and pinned host memory for the CUDA runtime, and the copies between host values
//! and device buffers: [`DevAlloc`] (one zeroed device allocation), [`Pinned`] (a staging
//! buffer for large feeds, copied in chunks that overlap the transfer), [`upload`] and
//! [`download`].

use super::device::{CudaDevice, cuda_error};
use cudarc::driver::{result as drv, sys};
use flumen_frontend::{DType, Element, Result, TensorType, Value, map_value};
use ndarray::{ArrayD, IxDyn};

/// One device allocation, freed on drop.
pub(super) struct DevAlloc {
    pub(super) ptr: sys::CUdeviceptr,
    pub(super) bytes: usize,
}

impl DevAlloc {
    pub(super) fn new(device: &CudaDevice, bytes: usize) -> Result<DevAlloc> {
        if bytes == 0 {
            return Ok(DevAlloc { ptr: 0, bytes });
        }
        device.bind()?;
        // SAFETY: the context is current; the memory is freed in `free`.
        let ptr = unsafe { drv::malloc_sync(bytes) }.map_err(|e| {
            cuda_error(format!(
                "cannot allocate {bytes} bytes on {}: {e}",
                device.info.name
            ))
        })?;
        // SAFETY: a fresh allocation of `bytes` bytes.
        unsafe { drv::memset_d8_sync(ptr, 0, bytes) }.map_err(cuda_error)?;
        Ok(DevAlloc { ptr, bytes })
    }

    pub(super) fn free(&mut self) {
        if self.ptr != 0 {
            // SAFETY: allocated by `new` and not freed yet; the caller bound the context.
            let _ = unsafe { drv::free_sync(self.ptr) };
            self.ptr = 0;
        }
    }
}

/// Feeds of at least this many bytes are copied through a pinned staging buffer.
pub(super) const STAGED_FEED_BYTES: usize = 256 << 10;
/// The staging copy's chunk: the host copies chunk i + 1 while the DMA engine moves chunk i.
const STAGING_CHUNK: usize = 2 << 20;

/// Page-locked host memory for one feed: a pageable `cuMemcpyHtoD` of a large batch runs at
/// a fraction of the bus's speed (12.8 MB took 2.5 ms on an H200 machine); staged copies
/// are asynchronous and overlap the host copy with the transfer.
pub(super) struct Pinned {
    ptr: *mut u8,
    bytes: usize,
}

impl Pinned {
    pub(super) fn new(device: &CudaDevice, bytes: usize) -> Result<Pinned> {
        device.bind()?;
        // SAFETY: the context is current; freed in `drop`.
        let ptr = unsafe { drv::malloc_host(bytes, 0) }.map_err(|e| {
            cuda_error(format!(
                "cannot allocate {bytes} bytes of pinned host memory: {e}"
            ))
        })?;
        Ok(Pinned {
            ptr: ptr.cast(),
            bytes,
        })
    }

    /// Enqueue the copy of `src` to `dst` on `stream`, chunk by chunk. The caller
    /// synchronises the stream before the next call (every run ends with a synchronise).
    pub(super) fn upload(
        &self,
        dst: sys::CUdeviceptr,
        src: &[u8],
        stream: sys::CUstream,
    ) -> Result<()> {
        if src.len() > self.bytes {
            return Err(cuda_error(format!(
                "a {}-byte feed does not fit its {}-byte staging buffer",
                src.len(),
                self.bytes
            )));
        }
        let mut off = 0;
        while off < src.len() {
            let len = STAGING_CHUNK.min(src.len() - off);
            // SAFETY: `off + len <= self.bytes`; no transfer reads this range (the
            // previous run's were synchronised, this run's cover earlier chunks).
            let chunk = unsafe {
                std::ptr::copy_nonoverlapping(src.as_ptr().add(off), self.ptr.add(off), len);
                std::slice::from_raw_parts(self.ptr.add(off), len)
            };
            // SAFETY: `dst + off .. + len` lies in the feed's allocation; the pinned
            // chunk stays untouched until the stream is synchronised.
            unsafe { drv::memcpy_htod_async(dst + off as u64, chunk, stream) }
                .map_err(cuda_error)?;
            off += len;
        }
        Ok(())
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: allocated by `malloc_host`; transfers from it finished (every run ends
        // with a synchronise, and the executable synchronises before dropping its fields).
        let _ = unsafe { drv::free_host(self.ptr.cast()) };
    }
}

/// The bytes of `v` in row-major order: borrowed when the value already is row-major (as
/// feeds and fetched values are), else a row-major copy. (`as_standard_layout()
/// .into_owned()` copies even a row-major array: 12.8 MB of fresh pages per MNIST batch.)
pub(super) fn value_bytes(v: &Value) -> std::borrow::Cow<'_, [u8]> {
    fn bytes_of<T>(s: &[T]) -> &[u8] {
        // SAFETY: plain-old-data elements (f32, f64, i32, i64, u8, bool) viewed as bytes.
        unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
    }
    map_value!(v, a => match a.as_slice() {
        Some(s) => std::borrow::Cow::Borrowed(bytes_of(s)),
        None => {
            let owned: Vec<_> = a.iter().copied().collect();
            std::borrow::Cow::Owned(bytes_of(&owned).to_vec())
        }
    })
}

/// Copy `ty.numel()` elements from device memory into a new value (synchronous).
pub(super) fn download(ptr: sys::CUdeviceptr, ty: &TensorType) -> Result<Value> {
    fn go<T: Element + Default + Clone>(ptr: sys::CUdeviceptr, shape: &[usize]) -> Result<Value> {
        let n: usize = shape.iter().product();
        let mut data = vec![T::default(); n];
        if n > 0 {
            // SAFETY: `ptr` addresses `n` elements of `T` (the buffer's declaration).
            unsafe { drv::memcpy_dtoh_sync(&mut data, ptr) }.map_err(cuda_error)?;
        }
        Ok(T::wrap(
            ArrayD::from_shape_vec(IxDyn(shape), data).expect("numel matches shape"),
        ))
    }
    match ty.dtype {
        DType::F32 => go::<f32>(ptr, &ty.shape),
        DType::F64 => go::<f64>(ptr, &ty.shape),
        DType::I32 => go::<i32>(ptr, &ty.shape),
        DType::I64 => go::<i64>(ptr, &ty.shape),
        DType::U8 => go::<u8>(ptr, &ty.shape),
        DType::Bool => go::<bool>(ptr, &ty.shape),
    }
}

/// Copy a value to device memory (synchronous).
pub(super) fn upload(ptr: sys::CUdeviceptr, v: &Value) -> Result<()> {
    let bytes = value_bytes(v);
    let bytes: &[u8] = &bytes;
    if !bytes.is_empty() {
        // SAFETY: the destination has room for the value (checked by the callers).
        unsafe { drv::memcpy_htod_sync(ptr, bytes) }.map_err(cuda_error)?;
    }
    Ok(())
}
