"""Peers of benches/numerics.rs on the same inputs (the same LCG, the same ring graph, angles jittered by the LCG):

- expm/{4,64,256}: scipy.linalg.expm of one f64 n x n matrix;
- pic/10000: power iteration clustering in NumPy/SciPy (scipy.sparse CSR affinities built from
  the edge list, degrees, row normalisation, degree init, L1-normalised power steps with
  Spark's stopping rule, then 1-D k-means from the same quantile start) - the same steps
  flumen::models::pic times, edge list in, labels out;
- quantiles/exact_1e7: the exact weighted median of the 10^7 weighted points by sort + cumsum
  (NumPy), for scale: there is no GK summary in NumPy/SciPy.

Timing like Criterion's median: warm up, then samples of several iterations, median of the
per-iteration time. Threads: --threads (default 1) for BLAS, as FLUMEN_BENCH_THREADS.

Run: /tmp/peers/bin/python benches/peers/numerics_scipy.py [--threads N] [--quick]
"""

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_common import pin_threads  # noqa: E402

MASK = (1 << 64) - 1


def lcg(seed, count):
    """The Rust bench's generator: uniform on [-0.5, 0.5) (Knuth MMIX LCG, top 53 bits)."""
    import numpy as np

    out = np.empty(count)
    s = seed
    for i in range(count):
        s = (s * 6364136223846793005 + 1442695040888963407) & MASK
        out[i] = (s >> 11) / float(1 << 53) - 0.5
    return out


def median_time(fn, min_time=1.0, samples=11):
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    iters = max(1, int(min_time / samples / once))
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        times.append((time.perf_counter() - t0) / iters)
    times.sort()
    return times[len(times) // 2]


def ring_edges(n):
    import numpy as np

    half = n // 2
    i = np.arange(n)
    ring, j = i // half, i % half
    src, dst = [], []
    for d in range(1, 11):
        k = ring * half + (j + d) % half
        src.append(k)
        dst.append(i)
    src, dst = np.concatenate(src), np.concatenate(dst)

    jitter = lcg(7, n)

    def point(idx):
        r = np.where(idx // half == 0, 1.0, 4.0)
        t = 2.0 * np.pi * (idx % half + 0.4 * jitter[idx]) / half
        return r * np.cos(t), r * np.sin(t)

    (px, py), (qx, qy) = point(src), point(dst)
    a = np.exp(-((px - qx) ** 2 + (py - qy) ** 2) / 2.0)
    return src, dst, a


def pic(n, src, dst, a, k=2, max_iter=10):
    import numpy as np
    import scipy.sparse as sp

    keep = src != dst
    rows = np.concatenate([src[keep], dst[keep]])
    cols = np.concatenate([dst[keep], src[keep]])
    vals = np.concatenate([a[keep], a[keep]])
    aff = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    d = np.asarray(aff.sum(axis=1)).ravel()
    w = sp.diags(1.0 / np.maximum(d, 2.22e-16)) @ aff
    v = d / d.sum()
    tol = max(1e-5 / n, 1e-8)
    prev, diff, it = math.inf, math.inf, 0
    while it < max_iter and abs(diff) > tol:
        u = w @ v
        new = u / np.abs(u).sum()
        delta = np.abs(new - v).sum()
        v = new
        diff = abs(delta - prev)
        prev = delta
        it += 1
    s = np.sort(v)
    c = np.array([s[(2 * i + 1) * n // (2 * k)] for i in range(k)])
    labels = None
    for _ in range(20):
        new_labels = np.argmin(np.abs(v[:, None] - c[None, :]), axis=1)
        sums = np.bincount(new_labels, weights=v, minlength=k)
        counts = np.bincount(new_labels, minlength=k)
        c = np.where(counts > 0, sums / np.maximum(counts, 1), c)
        if labels is not None and np.array_equal(labels, new_labels):
            break
        labels = new_labels
    return labels, it


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    pin_threads(args.threads)
    import numpy as np
    import scipy
    import scipy.linalg

    budget = 0.2 if args.quick else 2.0

    def report(bench, seconds, **extra):
        print("PEER_JSON " + json.dumps({"peer": "scipy", "bench": bench,
                                         "median_s": seconds, **extra}))

    print(f"# numpy {np.__version__}, scipy {scipy.__version__}, threads {args.threads}")
    for n in (4, 64, 256):
        a = math.sqrt(12.0 / n) * lcg(n, n * n).reshape(n, n)
        e = scipy.linalg.expm(a)
        report(f"expm/{n}", median_time(lambda: scipy.linalg.expm(a), budget),
               checksum=float(e.sum()))
    n = 10_000
    src, dst, a = ring_edges(n)
    labels, it = pic(n, src, dst, a)
    inner = int((labels[: n // 2] == labels[0]).sum())
    report("pic/10000", median_time(lambda: pic(n, src, dst, a), budget),
           iterations=it, inner_same_cluster=inner)
    count = 10_000_000 if not args.quick else 1_000_000
    r = lcg(42, 2 * count).reshape(count, 2)
    x, w = r[:, 0], r[:, 1] + 0.5

    def exact():
        order = np.argsort(x, kind="stable")
        cum = np.cumsum(w[order])
        return x[order][np.searchsorted(cum, 0.5 * cum[-1])]

    report(f"quantiles/exact_{count:.0e}", median_time(exact, budget, samples=3),
           median=float(exact()))


if __name__ == "__main__":
    main()
