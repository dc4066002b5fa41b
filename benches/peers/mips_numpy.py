"""NumPy peer of the exact MIPS benchmark of examples/long_qa_bench.rs (issue #10): for a
batch of B queries, the top k = 5 documents by inner product among N = 10^6 documents of
d = 128 (float32), computed the obvious NumPy way: scores = q @ docs.T (sgemm, the whole
[B, N] matrix), np.argpartition for the k best per row, then a sort of those k by score.
Reports queries/s = B / median time, peak RSS, and the same index checksum as Flumen's
bench (the data come from the same stateless SplitMix64 generator: docs seed 1, queries
seed 2, element i = top 24 bits of splitmix64(seed + (i+1)*gamma) * 2^-24 - 0.5).

--blocked scores the documents in blocks of --block rows and merges running top-k
(bounded memory) instead of forming [B, N]; --chunked additionally selects each block's
candidates by chunk maxima (--chunk columns per chunk), Flumen's algorithm, in NumPy.

Run: /tmp/peers/bin/python benches/peers/mips_numpy.py [--threads 2] [--queries 256]
     [--n 1000000] [--blocked | --chunked] [--quick]
"""

import peer_common as pc


def extra(p):
    p.add_argument("--queries", type=int, default=256, help="queries per batch (B)")
    p.add_argument("--n", type=int, default=1_000_000, help="documents (N)")
    p.add_argument("--block", type=int, default=16384, help="rows per block with --blocked")
    p.add_argument("--blocked", action="store_true", help="blocked scores + running top-k")
    p.add_argument("--chunked", action="store_true", help="blocked + chunk-max candidates")
    p.add_argument("--chunk", type=int, default=128, help="columns per chunk with --chunked")


args = pc.parse_args(__doc__.splitlines()[0], extra)
pc.pin_threads(args.threads)

import resource  # noqa: E402

import numpy as np  # noqa: E402

D, K = 128, 5
GAMMA = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)


def uniform_data(seed, length, chunk=1 << 22):
    """The generator of long_qa_bench.rs's `uniform_data`, vectorised in uint64."""
    out = np.empty(length, dtype=np.float32)
    with np.errstate(over="ignore"):
        for start in range(0, length, chunk):
            i = np.arange(start + 1, min(length, start + chunk) + 1, dtype=np.uint64)
            z = np.uint64(seed) + i * GAMMA
            z = (z ^ (z >> np.uint64(30))) * M1
            z = (z ^ (z >> np.uint64(27))) * M2
            z = z ^ (z >> np.uint64(31))
            out[start:start + len(i)] = (z >> np.uint64(40)).astype(np.float32) * np.float32(
                1.0 / 16777216.0) - np.float32(0.5)
    return out


def top_k_full(q, docs):
    s = q @ docs.T
    part = np.argpartition(-s, K - 1, axis=1)[:, :K]
    vals = np.take_along_axis(s, part, axis=1)
    # Largest first, ties to the lower index (as Flumen's top_k).
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def block_candidates(s, chunk):
    """Column indices of the k best chunks (by chunk maximum) of s [B, len], all their
    columns; len must be a multiple of chunk (the last block falls back to all columns)."""
    b, length = s.shape
    if length % chunk or length // chunk <= K:
        return None
    maxima = s.reshape(b, length // chunk, chunk).max(axis=2)
    best = np.sort(np.argpartition(-maxima, K - 1, axis=1)[:, :K], axis=1)
    return (best[:, :, None] * chunk + np.arange(chunk)).reshape(b, K * chunk)


def top_k_blocked(q, docs, block, chunk=None):
    best_i = best_v = None
    for start in range(0, docs.shape[0], block):
        s = q @ docs[start:start + block].T
        kk = min(K, s.shape[1])
        cols = block_candidates(s, chunk) if chunk else None
        if cols is None:
            part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        else:
            cand = np.take_along_axis(s, cols, axis=1)
            sel = np.argpartition(-cand, kk - 1, axis=1)[:, :kk]
            part = np.take_along_axis(cols, sel, axis=1)
        vals = np.take_along_axis(s, part, axis=1)
        idx = part + start
        if best_i is not None:
            idx = np.concatenate([best_i, idx], axis=1)
            vals = np.concatenate([best_v, vals], axis=1)
        order = np.lexsort((idx, -vals), axis=1)[:, :K]
        best_i = np.take_along_axis(idx, order, axis=1)
        best_v = np.take_along_axis(vals, order, axis=1)
    return best_i, best_v


def main():
    n, b = args.n, args.queries
    docs = uniform_data(1, n * D).reshape(n, D)
    q = uniform_data(2, b * D).reshape(b, D)
    if args.chunked:
        fn = lambda: top_k_blocked(q, docs, args.block, args.chunk)  # noqa: E731
    elif args.blocked:
        fn = lambda: top_k_blocked(q, docs, args.block)  # noqa: E731
    else:
        fn = lambda: top_k_full(q, docs)  # noqa: E731
    idx, _ = fn()
    checksum = int(sum(int(j) * (i + 1) for i, j in enumerate(idx.reshape(-1))))
    stats = pc.measure(fn, args.quick, samples=5 if not args.quick else 3, sample_s=0.0,
                       warmup_s=0.0)
    stats["queries_per_s"] = b / stats["median_s"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    bench = "mips_chunked" if args.chunked else "mips_blocked" if args.blocked else "mips"
    pc.emit("numpy", bench, stats, threads=args.threads,
            n=n, d=D, k=K, queries=b, peak_rss_mib=round(peak, 1), index_checksum=checksum,
            first_row=[int(x) for x in idx[0]], numpy=np.__version__)


if __name__ == "__main__":
    main()
