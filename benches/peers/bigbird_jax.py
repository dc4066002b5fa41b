"""JAX peer of examples/bigbird.rs: BigBird block-sparse attention (ITC), blockified by hand
exactly as MODELS.md §4a spells it out (reshape into blocks, gather of the random blocks,
dense global rows, rows 1 and nb-2 with five key groups, middle rows with the window by
roll, one batched matmul and one softmax), jit-compiled with XLA:CPU, float32.

Workload (the example's): B=1, H=2, n=8192 (--n), d=64, block b=64, r=3 random blocks per
row drawn so they avoid the window and global blocks. Reports the median time per call and
the peak bytes of XLA's buffer assignment (`compiled.memory_analysis()`, temp + output).

Run: /tmp/peers/bin/python benches/peers/bigbird_jax.py --threads 2 [--n 8192] [--quick]
"""

import peer_common as pc


def extra(p):
    p.add_argument("--n", type=int, default=8192, help="sequence length (default 8192)")
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--block", type=int, default=64)
    p.add_argument("--random", type=int, default=3)
    p.add_argument("--check", action="store_true", help="compare with masked dense attention")


args = pc.parse_args(__doc__.splitlines()[0], extra)
pc.pin_threads(args.threads)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

D = 64


def random_plan(heads, nb, r, seed=0):
    """R[h, i-1] for rows 1..nb-2: r distinct blocks outside {0, nb-1, i-1, i, i+1}."""
    rng = np.random.default_rng(seed)
    plan = np.zeros((heads, nb - 2, r), dtype=np.int32)
    for h in range(heads):
        for i in range(1, nb - 1):
            free = [j for j in range(1, nb - 1) if abs(j - i) > 1]
            plan[h, i - 1] = np.sort(rng.choice(free, size=r, replace=False))
    return plan


def bigbird(q, k, v, plan, b):
    bsz, h, n, d = q.shape
    nb = n // b
    r = plan.shape[-1]
    scale = 1.0 / np.sqrt(d)
    qb, kb, vb = (t.reshape(bsz, h, nb, b, d) for t in (q, k, v))
    idx = jnp.broadcast_to(plan, (bsz, h, nb - 2, r))
    gather = jax.vmap(jax.vmap(lambda t, i: t[i]))  # over B, H
    kr = gather(kb, idx).reshape(bsz, h, nb - 2, r * b, d)
    vr = gather(vb, idx).reshape(bsz, h, nb - 2, r * b, d)

    def attend(qq, keys, vals):
        s = jnp.einsum("...qd,...kd->...qk", qq, keys) * scale
        return jnp.einsum("...qk,...kd->...qd", jax.nn.softmax(s, axis=-1), vals)

    qg = jnp.concatenate([qb[:, :, 0], qb[:, :, -1]], axis=2)
    glob = attend(qg, k, v).reshape(bsz, h, 2, b, d)
    def edge(row, blocks, rr):
        keys = jnp.concatenate([kb[:, :, j] for j in blocks] + [kr[:, :, rr]], axis=2)
        vals = jnp.concatenate([vb[:, :, j] for j in blocks] + [vr[:, :, rr]], axis=2)
        return attend(qb[:, :, row], keys, vals)[:, :, None]
    out1 = edge(1, [0, 1, 2, nb - 1], 0)
    outp = edge(nb - 2, [0, nb - 3, nb - 2, nb - 1], nb - 3)
    def middle(t, tr):
        w = jnp.concatenate([jnp.roll(t, 1, axis=2), t, jnp.roll(t, -1, axis=2)], axis=3)[:, :, 2:-2]
        m = nb - 4
        first = jnp.broadcast_to(t[:, :, :1], (bsz, h, m, b, d))
        last = jnp.broadcast_to(t[:, :, -1:], (bsz, h, m, b, d))
        return jnp.concatenate([first, w, tr[:, :, 1:-1], last], axis=3)
    mid = attend(qb[:, :, 2:-2], middle(kb, kr), middle(vb, vr))
    out = jnp.concatenate([glob[:, :, :1], out1, mid, outp, glob[:, :, 1:]], axis=2)
    return out.reshape(bsz, h, n, d)


def dense_reference(q, k, v, plan, b):
    bsz, h, n, d = q.shape
    nb = n // b
    m = np.zeros((h, nb, nb), dtype=bool)
    for hh in range(h):
        for i in range(nb):
            for j in range(nb):
                m[hh, i, j] = i in (0, nb - 1) or j in (0, nb - 1) or abs(i - j) <= 1
            if 0 < i < nb - 1:
                m[hh, i, plan[hh, i - 1]] = True
    mask = np.kron(m, np.ones((b, b), dtype=bool))
    s = np.einsum("bhqd,bhkd->bhqk", q, k) / np.sqrt(d) - 10000.0 * (1 - mask)
    s = s - s.max(-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(-1, keepdims=True)
    return np.einsum("bhqk,bhkd->bhqd", p, v)


def main():
    n, b, h = args.n, args.block, args.heads
    nb = n // b
    plan = random_plan(h, nb, args.random)
    rng = np.random.default_rng(1)
    q, k, v = (rng.uniform(-1, 1, (1, h, n, D)).astype(np.float32) for _ in range(3))
    f = jax.jit(lambda q, k, v: bigbird(q, k, v, jnp.asarray(plan), b))
    qj, kj, vj = (jnp.asarray(t) for t in (q, k, v))
    compiled = f.lower(qj, kj, vj).compile()
    mem = compiled.memory_analysis()
    peak = None
    if mem is not None:
        peak = int(mem.temp_size_in_bytes + mem.output_size_in_bytes + mem.argument_size_in_bytes)
    stats = pc.measure(lambda: f(qj, kj, vj).block_until_ready(), quick=args.quick,
                       samples=20, sample_s=0.2)
    extra = {"n": n, "heads": h, "d": D, "block": b, "random_blocks": args.random,
             "peak_bytes": peak, "jax": jax.__version__}
    if args.check:
        want = dense_reference(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                               plan, b)
        extra["max_abs_diff_vs_dense"] = float(np.abs(np.asarray(f(qj, kj, vj)) - want).max())
    pc.emit("jax", f"bigbird_attention_{n}", stats, **extra)


if __name__ == "__main__":
    main()
