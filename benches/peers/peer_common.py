"""Shared by the peer benchmarks (mnist_jax.py, mnist_tf.py, mnist_ort.py, gemm_numpy.py).

- Thread pinning: call `pin_threads(n)` BEFORE importing numpy / jax / tensorflow /
  onnxruntime (the BLAS and XLA thread pools read their environment at import).
- The workload, identical to Flumen's benches/compiler_core.rs: the tutorial's 784-300-10 MLP
  with the initial weights Flumen exported (`cargo run --release --example
  export_bench_weights -- PATH`, a safetensors file read here without extra packages), the
  embedded MNIST subset split by data/mnist_5k_permutation.txt, 40 training batches of 100
  consecutive training rows, and the first 1 / 1000 test images for inference.
- Timing like Criterion: warm up, then samples of several iterations each; the reported
  figure is the median over samples of the time per iteration.
- Output: one line per measurement, `PEER_JSON {...}`, for benches/peers/run_all.py.
"""

import argparse
import gzip
import json
import os
import struct
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_WEIGHTS = os.path.join(ROOT, "target", "bench-peers", "weights.safetensors")
BATCH = 100


def parse_args(description, extra=None):
    """Common options: --threads, --weights, --quick (a short smoke run)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--threads", type=int, default=2, help="threads of every pool (default 2)")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS, help="Flumen's exported weights")
    p.add_argument("--quick", action="store_true", help="few short samples (smoke test)")
    if extra:
        extra(p)
    return p.parse_args()


def pin_threads(n):
    """Pin BLAS / OpenMP / XLA / TF / ORT thread pools to `n` threads (before the imports)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(n)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(n)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # XLA:CPU (JAX and TF's jit_compile) sizes its intra-op pool by these flags.
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = (
        f"{flags} --xla_cpu_multi_thread_eigen={'true' if n > 1 else 'false'} "
        f"intra_op_parallelism_threads={n}"
    ).strip()
    # Restrict the process (and every thread it starts) to n CPUs when there are more.
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) > n:
            os.sched_setaffinity(0, cpus[:n])


def load_safetensors(path):
    """{name: numpy array} from a safetensors file (f32/f64/i32/i64/u8/bool tensors)."""
    import numpy as np

    dtypes = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64,
              "U8": np.uint8, "BOOL": np.bool_}
    if not os.path.exists(path):
        sys.exit(f"{path} not found: run `cargo run --release --example export_bench_weights "
                 f"-- {path}` first (benches/peers/run_all.py does)")
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        arr = np.frombuffer(data[start:end], dtype=dtypes[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).copy()
    return out


def load_params(path):
    """(W1 [784,300], b1 [300], W2 [300,10], b2 [10]) f32: Flumen's initial variables."""
    w = load_safetensors(path)
    return tuple(w[k] for k in ("layer1/W", "layer1/b", "layer2/W", "layer2/b"))


def load_mnist():
    """(train_x, train_y, test_x, test_y): the embedded subset, split as Flumen splits it."""
    import numpy as np

    with gzip.open(os.path.join(ROOT, "data", "mnist_5k.csv.gz"), "rt") as f:
        rows = np.array([line.split(",") for line in f.read().split()], dtype=np.int64)
    with open(os.path.join(ROOT, "data", "mnist_5k_permutation.txt")) as f:
        perm = np.array(f.read().split(), dtype=np.int64)
    images = (rows[:, :784].astype(np.float32) / np.float32(255.0))[perm]
    labels = rows[:, 784][perm]
    return images[:4000], labels[:4000], images[4000:], labels[4000:]


def train_batches(train_x, train_y, batch=BATCH):
    """The 40 training batches every system cycles through (consecutive rows)."""
    n = len(train_y) // batch
    return [(train_x[i * batch:(i + 1) * batch], train_y[i * batch:(i + 1) * batch])
            for i in range(n)]


def measure(fn, quick=False, sync=None, samples=50, sample_s=0.1, warmup_s=2.0):
    """Time `fn()`: warm up for `warmup_s`, then `samples` samples of k iterations each, k
    chosen so one sample takes about `sample_s`. `fn` must block on its results, or else
    `sync()` must wait for all work started (it is called at the end of each sample).
    Returns a dict of seconds per iteration."""
    if quick:
        samples, sample_s, warmup_s = 5, 0.02, 0.1
    sync = sync or (lambda: None)
    t0 = time.perf_counter()
    iters = 0
    while True:
        fn()
        iters += 1
        if iters % 10 == 0:
            sync()
        elapsed = time.perf_counter() - t0
        if elapsed >= warmup_s:
            break
    sync()
    k = max(1, round(sample_s / (elapsed / iters)))
    per_iter = []
    for _ in range(samples):
        t = time.perf_counter()
        for _ in range(k):
            fn()
        sync()
        per_iter.append((time.perf_counter() - t) / k)
    return summary(per_iter, iters_per_sample=k)


def measure_once(fn, repeats):
    """Time `repeats` single calls of `fn()` (each one a fresh first call)."""
    return summary([timed(fn) for _ in range(repeats)], iters_per_sample=1)


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def summary(xs, iters_per_sample):
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
    return {"median_s": q(0.5), "p25_s": q(0.25), "p75_s": q(0.75), "min_s": xs[0],
            "samples": len(xs), "iters_per_sample": iters_per_sample}


def emit(system, bench, stats=None, **extra):
    """Print one machine-readable result line."""
    record = {"system": system, "bench": bench}
    record.update(stats or {})
    record.update(extra)
    print("PEER_JSON " + json.dumps(record), flush=True)
