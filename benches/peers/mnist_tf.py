"""TensorFlow peer of benches/compiler_core.rs: the tutorial's MNIST MLP (784-300-10) under
tf.function(jit_compile=True) (XLA).

Measures (each printed as a `PEER_JSON` line):
- train_step: one Adam step on a batch of 100 (tf.Variables updated in place), the loss
  fetched to the host every step as Flumen's Session::run does;
- inference b=1 and b=1000: logits, host numpy in, host numpy out;
- first_call: create the variables, a fresh tf.function(jit_compile=True), one step
  (trace + XLA compile + run).

Weights: Flumen's initial variables (target/bench-peers/weights.safetensors). Adam is
written out as Keras / Flumen compute it (see mnist_jax.py); the loss is
tf.nn.softmax_cross_entropy_with_logits on one-hot labels, averaged over the batch.
Threads: intra-op and inter-op pools set to --threads (default 2).

Run: /tmp/peers/bin/python benches/peers/mnist_tf.py [--threads 2] [--quick]
"""

import peer_common as pc

args = pc.parse_args(__doc__.splitlines()[0])
pc.pin_threads(args.threads)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # the first-call loop retraces on purpose
tf.config.threading.set_intra_op_parallelism_threads(args.threads)
tf.config.threading.set_inter_op_parallelism_threads(args.threads)

LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-7


def logits_fn(params, x):
    w1, b1, w2, b2 = params
    return tf.matmul(tf.nn.relu(tf.matmul(x, w1) + b1), w2) + b2


class Model:
    """Variables (params, Adam slots, step counter) and a freshly traced XLA train step."""

    def __init__(self, host_params):
        self.params = [tf.Variable(p) for p in host_params]
        self.m = [tf.Variable(tf.zeros_like(p)) for p in host_params]
        self.v = [tf.Variable(tf.zeros_like(p)) for p in host_params]
        self.t = tf.Variable(0, dtype=tf.int64)
        self.step = tf.function(self._step, jit_compile=True)

    def _step(self, x, y):
        with tf.GradientTape() as tape:
            logits = logits_fn(self.params, x)
            loss = tf.reduce_mean(
                tf.nn.softmax_cross_entropy_with_logits(tf.one_hot(y, 10), logits))
        grads = tape.gradient(loss, self.params)
        self.t.assign_add(1)
        t = tf.cast(self.t, tf.float32)
        alpha = LR * tf.sqrt(1.0 - tf.pow(B2, t)) / (1.0 - tf.pow(B1, t))
        for p, m, v, g in zip(self.params, self.m, self.v, grads):
            m.assign_add((g - m) * (1.0 - B1))
            v.assign_add((tf.square(g) - v) * (1.0 - B2))
            p.assign_sub(alpha * m / (tf.sqrt(v) + EPS))
        return loss


def main():
    host_params = pc.load_params(args.weights)
    train_x, train_y, test_x, _ = pc.load_mnist()
    batches = [(tf.constant(x), tf.constant(y)) for x, y in pc.train_batches(train_x, train_y)]
    common = dict(threads=args.threads, tensorflow=tf.__version__)

    # Train step.
    model = Model(host_params)
    counter = [0]

    def one_step():
        x, y = batches[counter[0] % len(batches)]
        counter[0] += 1
        return float(model.step(x, y).numpy())

    pc.emit("tf", "first_step_loss", loss=one_step(), **common)
    pc.emit("tf", "train_step", pc.measure(one_step, args.quick), batch=100, **common)

    # Inference: host in, host out.
    params = [tf.constant(p) for p in host_params]
    for batch in (1, 1000):
        infer = tf.function(lambda x: logits_fn(params, x), jit_compile=True,
                            input_signature=[tf.TensorSpec([batch, 784], tf.float32)])
        x = np.ascontiguousarray(test_x[:batch])
        infer(x).numpy()
        pc.emit("tf", "inference", pc.measure(lambda: infer(x).numpy(), args.quick),
                batch=batch, **common)

    # First call: variables + a fresh tf.function + one step.
    x0, y0 = batches[0]

    def first_call():
        float(Model(host_params).step(x0, y0).numpy())

    pc.emit("tf", "first_call", pc.measure_once(first_call, 3 if args.quick else 10), **common)


if __name__ == "__main__":
    main()
