"""NumPy peer of the gemm_1024 benchmark of benches/compiler_core.rs: c = a @ b, float32,
1024 x 1024 x 1024 (sgemm in NumPy's bundled OpenBLAS), GFLOP/s = 2*1024^3 / median time.

The BLAS pool is pinned to --threads (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, and the
process's CPU affinity) before NumPy is imported; run once per thread count.

Run: /tmp/peers/bin/python benches/peers/gemm_numpy.py --threads 1 [--quick]
"""

import peer_common as pc

args = pc.parse_args(__doc__.splitlines()[0])
pc.pin_threads(args.threads)

import ctypes  # noqa: E402
import glob  # noqa: E402
import os  # noqa: E402

import numpy as np  # noqa: E402

N = 1024


def openblas_info():
    """OpenBLAS's runtime kernel set and thread count (NumPy's wheel bundles
    libscipy_openblas64_ in numpy.libs), or {} when the library is not found."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs",
                                  "libscipy_openblas*.so*"))
    try:
        lib = ctypes.CDLL(libs[0])
        corename = lib.scipy_openblas_get_corename64_
        threads = lib.scipy_openblas_get_num_threads64_
    except (IndexError, OSError, AttributeError):
        return {}
    corename.restype = ctypes.c_char_p
    return {"openblas_core": corename().decode(), "blas_threads": threads()}


def main():
    a = (np.arange(N * N, dtype=np.float32) % 17 * 0.25 - 2.0).reshape(N, N)
    b = (np.arange(N * N, dtype=np.float32) % 13 * 0.5 - 3.0).reshape(N, N)
    c = np.empty((N, N), dtype=np.float32)
    stats = pc.measure(lambda: np.matmul(a, b, out=c), args.quick)
    stats["gflops"] = 2 * N**3 / stats["median_s"] / 1e9
    pc.emit("numpy", "gemm_1024", stats, threads=args.threads, numpy=np.__version__,
            **openblas_info())


if __name__ == "__main__":
    main()
