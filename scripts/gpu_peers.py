"""GPU peers for scripts/gpu_check.sh: the same workloads as tests/cuda_bench.rs in PyTorch
and JAX on the same GPU, one line each:
    peer <framework> <name> median_ms=<m> min_ms=<m> [tflops=<t>]
- GEMM 8192x8192 f32 (full precision), TF32 and bf16;
- MNIST train step (784 -> 300 ReLU -> 10, softmax cross-entropy, Adam 1e-3) at batch 100
  and 4096, on random data (the step's cost does not depend on the values): fed from host
  arrays every step, as Flumen's `Session::run` is (`mnist_train_step_b*`), and with the
  batch already on the device (`..._resident`, for reference).
A framework that is not installed, or sees no GPU, is reported and skipped.

Run: python3 scripts/gpu_peers.py [--reps 20]
"""

import argparse
import statistics
import time

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--reps", type=int, default=20)
args = p.parse_args()


def report(fw, name, times_s, flops=None):
    ms = sorted(t * 1e3 for t in times_s)
    line = f"peer {fw} {name} median_ms={statistics.median(ms):.4f} min_ms={ms[0]:.4f}"
    if flops:
        line += f" tflops={flops / (ms[0] * 1e-3) / 1e12:.1f}"
    print(line, flush=True)


def torch_peers():
    try:
        import torch
    except ImportError as e:
        print(f"peer torch skipped: {e}")
        return
    if not torch.cuda.is_available():
        print("peer torch skipped: no CUDA device visible to PyTorch")
        return
    dev = torch.device("cuda")

    def timed(fn, warm=3):
        for _ in range(warm):
            fn()
        torch.cuda.synchronize()
        out = []
        for _ in range(args.reps):
            t = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            out.append(time.perf_counter() - t)
        return out

    n = 8192
    for name, dtype, tf32 in [("f32", torch.float32, False), ("tf32", torch.float32, True), ("bf16", torch.bfloat16, False)]:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a = torch.rand(n, n, device=dev, dtype=dtype)
        b = torch.rand(n, n, device=dev, dtype=dtype)
        report("torch", f"gemm8192_{name}", timed(lambda: a @ b), 2 * n**3)
    torch.backends.cuda.matmul.allow_tf32 = False

    for batch in [100, 4096]:
        model = torch.nn.Sequential(torch.nn.Linear(784, 300), torch.nn.ReLU(), torch.nn.Linear(300, 10)).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        # Host batches, as Flumen's step feeds them (8 in turn), and one resident batch.
        xs_host = [np.random.default_rng(i).random((batch, 784), dtype=np.float32) for i in range(8)]
        ys_host = [np.random.default_rng(i).integers(0, 10, batch) for i in range(8)]
        x_dev = torch.rand(batch, 784, device=dev)
        y_dev = torch.randint(0, 10, (batch,), device=dev)
        turn = [0]

        def step(resident):
            if resident:
                x, y = x_dev, y_dev
            else:
                i = turn[0] % 8
                turn[0] += 1
                x = torch.from_numpy(xs_host[i]).to(dev)
                y = torch.from_numpy(ys_host[i]).to(dev)
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()  # the loss comes back to the host, as in Flumen's step

        report("torch", f"mnist_train_step_b{batch}", timed(lambda: step(False), warm=10))
        report("torch", f"mnist_train_step_b{batch}_resident", timed(lambda: step(True), warm=10))


def jax_peers():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as e:
        print(f"peer jax skipped: {e}")
        return
    if not any(d.platform == "gpu" for d in jax.devices()):
        print(f"peer jax skipped: no GPU among {jax.devices()}")
        return

    def timed(fn, warm=3):
        for _ in range(warm):
            jax.block_until_ready(fn())
        out = []
        for _ in range(args.reps):
            t = time.perf_counter()
            jax.block_until_ready(fn())
            out.append(time.perf_counter() - t)
        return out

    n = 8192
    key = jax.random.PRNGKey(0)
    for name, dtype, prec in [("f32", jnp.float32, "highest"), ("tf32", jnp.float32, "tensorfloat32"), ("bf16", jnp.bfloat16, "default")]:
        a = jax.random.uniform(key, (n, n), dtype=dtype)
        b = jax.random.uniform(key, (n, n), dtype=dtype)
        f = jax.jit(lambda a, b, prec=prec: jnp.matmul(a, b, precision=prec))
        report("jax", f"gemm8192_{name}", timed(lambda: f(a, b)), 2 * n**3)

    for batch in [100, 4096]:
        k1, k2 = jax.random.split(key)
        params = {
            "w1": jax.random.normal(k1, (784, 300)) * 0.03, "b1": jnp.zeros(300),
            "w2": jax.random.normal(k2, (300, 10)) * 0.03, "b2": jnp.zeros(10),
        }
        m = jax.tree.map(jnp.zeros_like, params)
        v = jax.tree.map(jnp.zeros_like, params)
        x_dev = jax.random.uniform(key, (batch, 784))
        y_dev = jax.nn.one_hot(jax.random.randint(key, (batch,), 0, 10), 10)
        xs_host = [np.random.default_rng(i).random((batch, 784), dtype=np.float32) for i in range(8)]
        ys_host = [np.eye(10, dtype=np.float32)[np.random.default_rng(i).integers(0, 10, batch)] for i in range(8)]
        turn = [0]

        def loss(p, x, y):
            h = jax.nn.relu(x @ p["w1"] + p["b1"])
            return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(h @ p["w2"] + p["b2"]), axis=1))

        @jax.jit
        def step(p, m, v, t, x, y):
            l, g = jax.value_and_grad(loss)(p, x, y)
            m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
            v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
            lr = 1e-3 * jnp.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            p = jax.tree.map(lambda p, m, v: p - lr * m / (jnp.sqrt(v) + 1e-7), p, m, v)
            return p, m, v, l

        state = [params, m, v, 1.0]

        def run(resident):
            if resident:
                x, y = x_dev, y_dev
            else:  # host arrays: JAX copies them to the device in the call
                i = turn[0] % 8
                turn[0] += 1
                x, y = xs_host[i], ys_host[i]
            p, m_, v_, l = step(*state, x, y)
            state[0], state[1], state[2], state[3] = p, m_, v_, state[3] + 1
            return float(l)  # to the host, as in Flumen's step

        report("jax", f"mnist_train_step_b{batch}", timed(lambda: run(False), warm=10))
        report("jax", f"mnist_train_step_b{batch}_resident", timed(lambda: run(True), warm=10))


torch_peers()
jax_peers()
