//! `Session::with_device`: the CPU device is the compiled backend; a CUDA device that
//! cannot be used is an error that says why (built without the `cuda` feature, no NVIDIA
//! driver, a missing NVRTC/cuBLAS library, no GPU with that ordinal), never a panic or a
//! link failure. On a machine without an NVIDIA driver (no `/dev/nvidiactl`) the messages
//! are checked exactly; with one, the ordinal check is.

use flumen::{DType, Device, Graph, Session, Value};
use std::path::Path;

fn graph() -> (Graph, flumen::Tensor, flumen::Tensor) {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[3]).unwrap();
    let y = (&x * 2.0).unwrap();
    (g, x, y)
}

#[test]
fn cpu_device_is_the_compiled_backend() {
    let (g, x, y) = graph();
    let mut sess = Session::with_device(&g, Device::Cpu).unwrap();
    assert_eq!(sess.device(), Device::Cpu);
    let out = sess
        .run(
            &[(&x, Value::from(ndarray::arr1(&[1.0f32, 2.0, 3.0])))],
            &[&y],
        )
        .unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![2.0, 4.0, 6.0]);
    assert!(Device::Cpu.check().is_ok());
    assert_eq!(Device::Cpu.describe().unwrap(), "cpu");
}

#[test]
fn unusable_cuda_device_is_a_clear_error() {
    let (g, _, _) = graph();
    let driver_present = Path::new("/dev/nvidiactl").exists();
    if cfg!(feature = "cuda") && driver_present {
        // A GPU machine: only a missing ordinal is certain to fail.
        let err = Session::with_device(&g, Device::Cuda(4096))
            .err()
            .expect("no GPU 4096");
        let msg = err.to_string();
        assert!(msg.contains("no CUDA device 4096"), "{msg}");
        return;
    }
    let err = Session::with_device(&g, Device::Cuda(0))
        .err()
        .expect("no usable CUDA device here");
    let msg = err.to_string();
    if cfg!(feature = "cuda") {
        assert!(msg.contains("cuda: no NVIDIA driver"), "{msg}");
        assert!(
            msg.contains("libcuda.so"),
            "names the library it tried: {msg}"
        );
        assert!(msg.contains("LD_LIBRARY_PATH"), "says how to fix it: {msg}");
    } else {
        assert!(msg.contains("built without the `cuda` feature"), "{msg}");
        assert!(msg.contains("--features cuda"), "{msg}");
    }
    assert_eq!(Device::Cuda(0).check().unwrap_err().to_string(), msg);
    assert!(Device::Cuda(0).describe().is_err());
}
