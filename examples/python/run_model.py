#!/usr/bin/env python3
"""Call a Flumen model exported with `flumen compile` from Python, with ctypes only.

    python3 examples/python/run_model.py ./libmnist.so [--prefix mnist] [--steps N] [--bits]

The library describes itself (`<prefix>_info()`, JSON: inputs, outputs and variables with
name, dtype, shape and byte size), so this script works for any exported model: it feeds
every f32/f64 input the pattern ((i * 37) % 256) / 255 (the one tests/aot.rs and
examples/c use), integer inputs i % 10 and bool inputs i % 2, runs the model `--steps`
times on one state (a training graph trains on the same batch each time) and prints each
output (with --bits: f32/f64 elements as hexadecimal bit patterns, one per line).
Bad calls are reported through the returned error codes, never by crashing.
"""

import argparse
import ctypes
import json
import os
import struct
import sys

DTYPES = {  # name -> (struct format, bytes)
    "f32": ("f", 4),
    "f64": ("d", 8),
    "i32": ("i", 4),
    "i64": ("q", 8),
    "u8": ("B", 1),
    "bool": ("?", 1),
}


class FlumenError(RuntimeError):
    pass


class Model:
    """An exported Flumen model: `Model(path).state()` gives a callable state."""

    def __init__(self, path, prefix=None):
        if prefix is None:
            stem = os.path.basename(path).split(".")[0]
            prefix = stem[3:] if stem.startswith("lib") else stem
        self.lib = ctypes.CDLL(os.path.abspath(path))
        self.prefix = prefix
        f = self._fn
        f("info", ctypes.c_char_p, [])
        f("error_message", ctypes.c_char_p, [ctypes.c_int])
        f("last_error", ctypes.c_char_p, [ctypes.c_void_p])
        f("state_new_with_threads", ctypes.c_int, [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t])
        f("state_free", None, [ctypes.c_void_p])
        ptrs = ctypes.POINTER(ctypes.c_void_p)
        sizes = ctypes.POINTER(ctypes.c_size_t)
        f("run", ctypes.c_int, [ctypes.c_void_p, ptrs, sizes, ptrs, sizes])
        f("read_variable", ctypes.c_int, [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t])
        self.info = json.loads(getattr(self.lib, prefix + "_info")().decode())

    def _fn(self, name, restype, argtypes):
        fn = getattr(self.lib, f"{self.prefix}_{name}")
        fn.restype = restype
        fn.argtypes = argtypes
        setattr(self, name, fn)

    def check(self, rc, state=None):
        if rc != 0:
            detail = self.last_error(state).decode() if state else ""
            msg = f"error {rc}: {self.error_message(rc).decode()}"
            raise FlumenError(f"{msg} ({detail})" if detail else msg)

    def state(self, threads=0):
        return State(self, threads)


class State:
    def __init__(self, model, threads):
        self.model = model
        self.ptr = ctypes.c_void_p()
        model.check(model.state_new_with_threads(ctypes.byref(self.ptr), threads))

    def run(self, inputs):
        """inputs: one bytes-like object per input; returns one bytes object per output."""
        m = self.model
        if len(inputs) != len(m.info["inputs"]):
            raise ValueError(f"expected {len(m.info['inputs'])} inputs, got {len(inputs)}")
        in_bufs = [ctypes.create_string_buffer(bytes(b), len(b)) for b in inputs]
        outs = [ctypes.create_string_buffer(o["bytes"]) for o in m.info["outputs"]]
        n_in, n_out = max(len(in_bufs), 1), max(len(outs), 1)
        in_ptrs = (ctypes.c_void_p * n_in)(*[ctypes.cast(b, ctypes.c_void_p) for b in in_bufs])
        in_sizes = (ctypes.c_size_t * n_in)(*[len(b) for b in inputs])
        out_ptrs = (ctypes.c_void_p * n_out)(*[ctypes.cast(b, ctypes.c_void_p) for b in outs])
        out_sizes = (ctypes.c_size_t * n_out)(*[o["bytes"] for o in m.info["outputs"]])
        m.check(m.run(self.ptr, in_ptrs, in_sizes, out_ptrs, out_sizes), self.ptr)
        return [o.raw for o in outs]

    def close(self):
        if self.ptr:
            self.model.state_free(self.ptr)
            self.ptr = ctypes.c_void_p()

    def __del__(self):
        self.close()


def pattern(desc):
    fmt, size = DTYPES[desc["dtype"]]
    n = desc["bytes"] // size
    if desc["dtype"] in ("f32", "f64"):
        # The f64 quotient rounded to f32 is the f32 quotient (53 >= 2 * 24 + 2 bits), so
        # packing as "f" matches C's float division exactly.
        values = [((i * 37) % 256) / 255.0 for i in range(n)]
    elif desc["dtype"] == "bool":
        values = [i % 2 == 1 for i in range(n)]
    else:
        values = [i % 10 for i in range(n)]
    return struct.pack(f"={n}{fmt}", *values)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("library")
    p.add_argument("--prefix")
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--bits", action="store_true", help="print float outputs as bit patterns")
    args = p.parse_args()

    model = Model(args.library, args.prefix)
    for kind in ("inputs", "outputs"):
        for i, d in enumerate(model.info[kind]):
            print(f"# {kind[:-1]} {i}: {d['name']} {d['dtype']}{d['shape']}", file=sys.stderr)
    state = model.state()
    inputs = [pattern(d) for d in model.info["inputs"]]
    for _ in range(args.steps):
        outputs = state.run(inputs)
    for d, raw in zip(model.info["outputs"], outputs):
        fmt, size = DTYPES[d["dtype"]]
        n = d["bytes"] // size
        if args.bits and d["dtype"] in ("f32", "f64"):
            ifmt = "I" if size == 4 else "Q"
            for v in struct.unpack(f"={n}{ifmt}", raw):
                print(f"{v:0{size * 2}x}")
        else:
            print(d["name"], list(struct.unpack(f"={n}{fmt}", raw)))

    # A wrong size is an error code (raised here as FlumenError), not a crash.
    if model.info["inputs"]:
        try:
            state.run([b[:-1] if j == 0 else b for j, b in enumerate(inputs)])
            print("error: a short input was accepted", file=sys.stderr)
            return 1
        except FlumenError as e:
            print(f"# short input rejected: {e}", file=sys.stderr)
    state.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
