"""ONNX Runtime peer of benches/compiler_core.rs: inference of the tutorial's MNIST MLP
(784-300-10) at batch 1 and batch 1000, host numpy in, host numpy out.

The ONNX graph is built directly with the onnx helper API: Gemm(x, W1, b1) -> Relu ->
Gemm(., W2, b2) -> logits, the batch dimension symbolic, the weights (Flumen's initial
variables, target/bench-peers/weights.safetensors) stored as initializers. The session
runs on the CPU execution provider with all graph optimisations, sequential execution,
--threads intra-op threads (default 2) and one inter-op thread.

Run: /tmp/peers/bin/python benches/peers/mnist_ort.py [--threads 2] [--quick]
"""

import peer_common as pc

args = pc.parse_args(__doc__.splitlines()[0])
pc.pin_threads(args.threads)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def build_model(w1, b1, w2, b2):
    inits = [numpy_helper.from_array(a, name) for a, name in
             ((w1, "W1"), (b1, "b1"), (w2, "W2"), (b2, "b2"))]
    nodes = [
        helper.make_node("Gemm", ["x", "W1", "b1"], ["h_pre"], name="layer1"),
        helper.make_node("Relu", ["h_pre"], ["h"], name="relu"),
        helper.make_node("Gemm", ["h", "W2", "b2"], ["logits"], name="layer2"),
    ]
    graph = helper.make_graph(
        nodes, "mnist_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by any recent runtime
    onnx.checker.check_model(model)
    return model


def main():
    host_params = pc.load_params(args.weights)
    _, _, test_x, _ = pc.load_mnist()
    model = build_model(*host_params)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    common = dict(threads=args.threads, onnxruntime=ort.__version__)

    w1, b1, w2, b2 = host_params
    for batch in (1, 1000):
        x = np.ascontiguousarray(test_x[:batch])
        out = sess.run(["logits"], {"x": x})[0]
        expected = np.maximum(x @ w1 + b1, 0) @ w2 + b2
        assert np.allclose(out, expected, rtol=1e-4, atol=1e-4), "ORT disagrees with numpy"
        pc.emit("ort", "inference",
                pc.measure(lambda: sess.run(["logits"], {"x": x}), args.quick),
                batch=batch, **common)


if __name__ == "__main__":
    main()
