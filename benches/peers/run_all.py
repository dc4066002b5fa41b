"""Run Flumen's compiler-core benchmarks and every Python peer in one sitting, then print a
table of medians, ratios and the performance targets (markdown, as in BENCHMARKS.md).

Steps (per round; rounds interleave the systems so load changes hit all of them alike):
1. export Flumen's initial weights (cargo run --release --example export_bench_weights);
2. cargo bench --bench compiler_core (Criterion; medians read from target/criterion);
3. mnist_jax.py, mnist_tf.py, mnist_ort.py, gemm_numpy.py --threads 1 and --threads 2.
With several rounds, each cell is the median over rounds of the per-round medians.

Threads: every system on --threads (default 2) except the single-thread GEMM row (1).
Results: target/bench-peers/results.json (all raw records) and results.md (the table).

Run: /tmp/peers/bin/python benches/peers/run_all.py [--rounds 3] [--quick]
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "target", "bench-peers")
WEIGHTS = os.path.join(OUT, "weights.safetensors")
PEERS = ["mnist_jax.py", "mnist_tf.py", "mnist_ort.py"]
# Criterion benchmark ids (target/criterion/<id>/new/estimates.json) -> result keys.
CRITERION = {
    "mnist_train_step/compiled": ("flumen", "train_step"),
    "mnist_train_step/interpreter": ("flumen-interp", "train_step"),
    "mnist_inference/1": ("flumen", "inference_1"),
    "mnist_inference/1000": ("flumen", "inference_1000"),
    "first_call/train_step": ("flumen", "first_call"),
    "gemm_1024/matmul_into/1": ("flumen", "gemm_t1"),
    "gemm_1024/matmul_into/2": ("flumen", "gemm_t2"),
}
GEMM_FLOP = 2 * 1024**3


def log(msg):
    print(f"[run_all {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, env=None, echo=True):
    """Run `cmd` in the repository root; return its stdout, echoed to stderr as it comes."""
    log(" ".join(cmd))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, **(env or {})),
                            stdout=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if echo:
            sys.stderr.write(line)
    if proc.wait() != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    return "".join(lines)


def target_dir():
    meta = run(["cargo", "metadata", "--format-version", "1", "--no-deps"], echo=False)
    return json.loads(meta)["target_directory"]


def flumen_round(args, crit_dir):
    """Run the Criterion benches; return {(system, bench): seconds} and the JSON lines."""
    started = time.time()
    cmd = ["cargo", "bench", "--bench", "compiler_core", "--"]
    if args.quick:
        cmd += ["--warm-up-time", "0.3", "--measurement-time", "1"]
    out = run(cmd, env={"FLUMEN_BENCH_THREADS": str(args.threads),
                        "RAYON_NUM_THREADS": str(args.threads)})
    results = {}
    for bench_id, key in CRITERION.items():
        path = os.path.join(crit_dir, bench_id, "new", "estimates.json")
        if not os.path.exists(path) or os.path.getmtime(path) < started:
            sys.exit(f"no fresh Criterion estimate for {bench_id} ({path})")
        with open(path) as f:
            results[key] = json.load(f)["median"]["point_estimate"] * 1e-9
    extra = [json.loads(line.split(" ", 1)[1]) for line in out.splitlines()
             if line.startswith("FLUMEN_JSON ")]
    return results, extra


def peer_round(args):
    """Run the Python peers; return their PEER_JSON records."""
    records = []
    runs = [[script, "--threads", str(args.threads)] for script in PEERS]
    runs += [["gemm_numpy.py", "--threads", "1"], ["gemm_numpy.py", "--threads", "2"]]
    for script, *opts in runs:
        cmd = [sys.executable, os.path.join(HERE, script), "--weights", WEIGHTS, *opts]
        if args.quick:
            cmd.append("--quick")
        out = run(cmd)
        records += [json.loads(line.split(" ", 1)[1]) for line in out.splitlines()
                    if line.startswith("PEER_JSON ")]
    return records


def peer_key(r):
    """(system, bench) of a peer record, in the keys the table uses."""
    bench = r["bench"]
    if bench == "inference":
        bench = f"inference_{r['batch']}"
    elif bench == "gemm_1024":
        bench = f"gemm_t{r['threads']}"
    return r["system"], bench


def collect(rounds):
    """{(system, bench): [seconds per round]} over all rounds."""
    times = {}
    for rnd in rounds:
        for key, secs in rnd["flumen"].items():
            times.setdefault(key, []).append(secs)
        for r in rnd["peers"]:
            if "median_s" in r:
                times.setdefault(peer_key(r), []).append(r["median_s"])
        for r in rnd["flumen_extra"]:
            if r["bench"] == "compile_report":
                compile_s = (r["passes_ms"] + r["lowering_ms"] + r["codegen_ms"]) / 1e3
                times.setdefault(("flumen", "compile"), []).append(compile_s)
        for r in rnd["peers"]:
            if r["bench"] == "compile_breakdown":
                times.setdefault(("jax", "compile"), []).append(r["lower_s"] + r["compile_s"])
    return {k: statistics.median(v) for k, v in times.items()}


def fmt_time(s):
    if s is None:
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def table(med):
    get = med.get
    rows = []
    header = ("| workload (median) | Flumen | JAX jit | TF XLA | ORT | NumPy | target | ratio "
              "| met |")
    rows += [header, "|" + "---|" * 9]

    def row(name, cells, target, ratio, ok):
        rows.append(f"| {name} | " + " | ".join(cells) +
                    f" | {target} | {ratio} | {ok} |")

    def yes(ok):
        return "yes" if ok else "**no**"

    # Train step, steps/s.
    f, j, t = get(("flumen", "train_step")), get(("jax", "train_step")), get(("tf", "train_step"))
    sps = lambda s: f"{1 / s:.0f} steps/s" if s else "—"
    ratio = j / f if f and j else None
    row("MNIST train step, b=100 (Adam)", [sps(f), sps(j), sps(t), "—", "—"],
        "≥ 2× JAX", f"{ratio:.2f}×" if ratio else "—", yes(ratio and ratio >= 2) if ratio else "—")
    fi, ja = get(("flumen-interp", "train_step")), get(("jax", "train_step_async"))
    row("  … Flumen interpreter; JAX without per-step loss fetch", [sps(fi), sps(ja), "—", "—",
                                                                     "—"], "", "", "")
    for batch, peer, limit, peer_name in ((1, "ort", 0.5, "ORT"), (1000, "jax", 0.7, "JAX")):
        f = get(("flumen", f"inference_{batch}"))
        cells = [fmt_time(f)] + [fmt_time(get((s, f"inference_{batch}")))
                                 for s in ("jax", "tf", "ort")] + ["—"]
        p = get((peer, f"inference_{batch}"))
        ratio = f / p if f and p else None
        row(f"inference latency, b={batch}", cells, f"≤ {limit}× {peer_name}",
            f"{ratio:.2f}×" if ratio else "—", yes(ratio <= limit) if ratio else "—")
    fc = get(("flumen", "compile"))
    row("training-graph compile (Flumen: passes+lowering+codegen; JAX: lower+XLA compile)",
        [fmt_time(fc), fmt_time(get(("jax", "compile"))), "—", "—", "—"], "≤ 50 ms",
        f"{fc / 0.05:.2f}× budget" if fc else "—", yes(fc <= 0.05) if fc else "—")
    row("first call: build + compile + one step",
        [fmt_time(get((s, "first_call"))) for s in ("flumen", "jax", "tf")] + ["—", "—"],
        "", "", "")
    gf = lambda s: f"{GEMM_FLOP / s / 1e9:.0f} GFLOP/s" if s else "—"
    for threads in (1, 2):
        f, n = get(("flumen", f"gemm_t{threads}")), get(("numpy", f"gemm_t{threads}"))
        ratio = n / f if f and n else None
        target = "≥ 0.9× NumPy" if threads == 1 else ""
        ok = (yes(ratio >= 0.9) if ratio else "—") if threads == 1 else ""
        row(f"GEMM 1024² f32, {threads} thread{'s' if threads > 1 else ''}",
            [gf(f), "—", "—", "—", gf(n)], target, f"{ratio:.2f}×" if ratio else "—", ok)
    return "\n".join(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=1, help="interleaved rounds (default 1)")
    p.add_argument("--threads", type=int, default=2, help="threads of every system")
    p.add_argument("--quick", action="store_true", help="short measurements (smoke test)")
    args = p.parse_args()

    os.makedirs(OUT, exist_ok=True)
    crit_dir = os.path.join(target_dir(), "criterion")
    run(["cargo", "build", "--release", "--example", "export_bench_weights"])
    run(["cargo", "bench", "--bench", "compiler_core", "--no-run"])
    run(["cargo", "run", "--release", "--quiet", "--example", "export_bench_weights", "--",
         WEIGHTS])
    rounds = []
    for i in range(args.rounds):
        log(f"round {i + 1}/{args.rounds}: load average {os.getloadavg()}")
        flumen, extra = flumen_round(args, crit_dir)
        rounds.append({"flumen": flumen, "flumen_extra": extra, "peers": peer_round(args),
                       "loadavg": os.getloadavg()})
    rounds_json = [{**r, "flumen": {"/".join(k): v for k, v in r["flumen"].items()}}
                   for r in rounds]
    med = collect(rounds)
    md = table(med)
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    commit = run(["git", "rev-parse", "--short", "HEAD"], echo=False).strip()
    dirty = run(["git", "status", "--porcelain", "--untracked-files=no"], echo=False)
    commit += f" (+{len(dirty.splitlines())} modified files)" if dirty.strip() else ""
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({"date": stamp, "commit": commit, "threads": args.threads, "quick": args.quick,
                   "rounds": rounds_json,
                   "medians": {"/".join(k): v for k, v in med.items()}}, f, indent=1)
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write(md + "\n")
    print(f"\n{stamp}, commit {commit}, {args.rounds} round(s), {args.threads} threads"
          f"{' (quick)' if args.quick else ''}\n")
    print(md)
    for rnd in rounds:
        losses = {r.get("system", "flumen-" + r.get("backend", "")): r["loss"]
                  for r in rnd["peers"] + rnd["flumen_extra"] if r["bench"] == "first_step_loss"}
        comp = [r for r in rnd["flumen_extra"] if r["bench"] == "compile_report"]
        jaxc = [r for r in rnd["peers"] if r["bench"] == "compile_breakdown"]
        print(f"\nfirst-step loss (same weights and batch): {losses}")
        print(f"Flumen first call, medians (ms): {comp}")
        print(f"JAX compile breakdown, medians (s): {jaxc}")
        print(f"load average after the round: {rnd['loadavg']}")


if __name__ == "__main__":
    main()
