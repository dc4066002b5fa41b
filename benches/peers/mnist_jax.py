"""JAX peer of benches/compiler_core.rs: the tutorial's MNIST MLP (784-300-10) under jax.jit.

Measures (each printed as a `PEER_JSON` line):
- train_step: one Adam step on a batch of 100, the loss fetched to the host every step as
  Flumen's Session::run does (train_step_async: the same, blocking only once per sample);
- inference b=1 and b=1000: logits, host numpy in, host numpy out;
- first_call: a fresh jax.jit of the train step (caches cleared): trace + compile + one step;
  plus the AOT breakdown trace / lower / XLA compile of the same function.

Weights: Flumen's initial variables (target/bench-peers/weights.safetensors). Adam is
written out (no optax) exactly as Keras / Flumen compute it:
  a_t = lr*sqrt(1-b2^t)/(1-b1^t); m += (g-m)(1-b1); v += (g^2-v)(1-b2); p -= a_t*m/(sqrt(v)+eps)
Loss: mean over the batch of softmax cross-entropy with one-hot labels.

Run: /tmp/peers/bin/python benches/peers/mnist_jax.py [--threads 2] [--quick]
"""

import peer_common as pc

args = pc.parse_args(__doc__.splitlines()[0])
pc.pin_threads(args.threads)

import time  # noqa: E402
import warnings  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

warnings.filterwarnings("ignore", message=".*donated buffers.*")

LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-7


def logits_fn(params, x):
    w1, b1, w2, b2 = params
    return jnp.maximum(x @ w1 + b1, 0.0) @ w2 + b2


def loss_fn(params, x, y):
    logp = jax.nn.log_softmax(logits_fn(params, x))
    return -jnp.mean(jnp.sum(jax.nn.one_hot(y, 10, dtype=logp.dtype) * logp, axis=1))


def make_train_step():
    """A new Python function each call, so a fresh jax.jit really traces and compiles."""

    def train_step(params, m, v, t, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        t = t + 1
        tf = t.astype(jnp.float32)
        alpha = LR * jnp.sqrt(1.0 - B2**tf) / (1.0 - B1**tf)
        m = tuple(mi + (g - mi) * (1.0 - B1) for mi, g in zip(m, grads))
        v = tuple(vi + (g * g - vi) * (1.0 - B2) for vi, g in zip(v, grads))
        params = tuple(p - alpha * mi / (jnp.sqrt(vi) + EPS) for p, mi, vi in zip(params, m, v))
        return params, m, v, t, loss

    return jax.jit(train_step, donate_argnums=(0, 1, 2, 3))


def initial_state(host_params):
    params = tuple(jax.device_put(p) for p in host_params)
    zeros = tuple(jnp.zeros_like(p) for p in params)
    return params, zeros, tuple(jnp.zeros_like(p) for p in params), jnp.zeros((), jnp.int32)


def main():
    host_params = pc.load_params(args.weights)
    train_x, train_y, test_x, _ = pc.load_mnist()
    batches = [(jax.device_put(x), jax.device_put(y.astype(np.int32)))
               for x, y in pc.train_batches(train_x, train_y)]
    common = dict(threads=args.threads, jax=jax.__version__)

    # Train step.
    step = make_train_step()
    state = list(initial_state(host_params))
    counter = [0]

    def one_step(sync):
        x, y = batches[counter[0] % len(batches)]
        counter[0] += 1
        *new_state, loss = step(*state, x, y)
        state[:] = new_state
        return float(loss) if sync else loss

    first_loss = one_step(True)
    pc.emit("jax", "first_step_loss", loss=first_loss, **common)
    pc.emit("jax", "train_step", pc.measure(lambda: one_step(True), args.quick), batch=100,
            **common)

    # The same steps without fetching each loss: blocks once per sample.
    last = [None]

    def async_step():
        last[0] = one_step(False)

    stats = pc.measure(async_step, args.quick, sync=lambda: jax.block_until_ready(last[0]))
    pc.emit("jax", "train_step_async", stats, batch=100, **common)

    # Inference: host in, host out.
    infer = jax.jit(logits_fn)
    params = tuple(jax.device_put(p) for p in host_params)
    for batch in (1, 1000):
        x = np.ascontiguousarray(test_x[:batch])
        np.asarray(infer(params, x))
        pc.emit("jax", "inference", pc.measure(lambda: np.asarray(infer(params, x)), args.quick),
                batch=batch, **common)

    # First call: a fresh jit (and cleared caches) + one step, host weights in.
    x0, y0 = batches[0]

    def first_call():
        jax.clear_caches()
        f = make_train_step()
        *_, loss = f(*initial_state(host_params), x0, y0)
        float(loss)

    repeats = 3 if args.quick else 10
    pc.emit("jax", "first_call", pc.measure_once(first_call, repeats), **common)

    # AOT breakdown of the same work: trace (incl. autodiff), lower to StableHLO, XLA compile.
    parts = {"trace_s": [], "lower_s": [], "compile_s": []}
    for _ in range(repeats):
        jax.clear_caches()
        f = make_train_step()
        st = initial_state(host_params)
        t0 = time.perf_counter()
        traced = f.trace(*st, x0, y0)
        t1 = time.perf_counter()
        lowered = traced.lower()
        t2 = time.perf_counter()
        lowered.compile()
        t3 = time.perf_counter()
        parts["trace_s"].append(t1 - t0)
        parts["lower_s"].append(t2 - t1)
        parts["compile_s"].append(t3 - t2)
    pc.emit("jax", "compile_breakdown",
            **{k: float(np.median(v)) for k, v in parts.items()}, **common)


if __name__ == "__main__":
    main()
