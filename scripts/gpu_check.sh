#!/usr/bin/env bash
# GPU verification of the CUDA backend (docs/cuda.md), in two halves:
#
#   scripts/gpu_check.sh build   # on the dev machine (no GPU or CUDA toolkit needed):
#                                # release test binaries with --features cuda, stripped,
#                                # copied to target/gpu-bin/ (about 30-60 MiB)
#   scripts/gpu_check.sh run     # on the GPU machine, from the repository root, with
#                                # target/gpu-bin/ carried over: the GPU tests, the GPU
#                                # benchmarks and the PyTorch/JAX peers; results go to
#                                # $OUT (or target/gpu-results/) and stdout. Exit 0: all
#                                # passed; 1: a test failed; 3: no usable GPU (skipped)
#
# With the device tool: build here, then
#   run(command="bash scripts/gpu_check.sh run", carry=["target/gpu-bin"], timeout_s=540)
#
# The run half needs the NVIDIA driver (libcuda.so.1), NVRTC (libnvrtc.so.12) and cuBLAS
# (libcublas.so.12). It also looks for them in pip's nvidia-* wheels (a PyTorch install
# brings them) and adds those directories to LD_LIBRARY_PATH.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=target/gpu-bin

build() {
  set -e
  rm -rf "$BIN" && mkdir -p "$BIN"
  # Binaries are named <test>-<hash>; cargo prints them as JSON artifacts.
  cargo test --release --features cuda --no-run --message-format=json \
      --test cuda_device --test cuda_models --test cuda_differential --test cuda_bench \
    | python3 -c '
import json, sys, shutil, os
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        name = m["target"]["name"]
        shutil.copy(m["executable"], os.path.join(sys.argv[1], name))
        print("built", name)
' "$BIN"
  strip "$BIN"/* || true
  # The MNIST tests read the embedded data through the crate (compiled in); nothing else
  # is needed at run time.
  du -sh "$BIN"; ls -l "$BIN"
}

run() {
  local out="${OUT:-target/gpu-results}"
  mkdir -p "$out"
  exec > >(tee "$out/gpu_check.log") 2>&1
  echo "== machine"; date -u; uname -a
  nvidia-smi || echo "nvidia-smi: not available"
  # CUDA libraries from pip wheels (nvidia-cublas-cu12, nvidia-cuda-nvrtc-cu12 …).
  for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null; then
      extra=$("$py" - <<'PY' 2>/dev/null
import glob, site, os
dirs = []
for s in site.getsitepackages() + [site.getusersitepackages()]:
    dirs += glob.glob(os.path.join(s, "nvidia", "*", "lib"))
print(":".join(sorted(set(dirs))))
PY
)
      [ -n "$extra" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$extra"
      break
    fi
  done
  # cudarc (built against the CUDA 12.8 API) tries libnvrtc.so, libnvrtc.so.12 …; a CUDA 13
  # machine has libnvrtc.so.13 / libcublas.so.13 only, whose entry points we use are the
  # same. Link the newest found under the unversioned names in a shim directory.
  local shim; shim=$(mktemp -d)
  for lib in nvrtc cublas; do
    found=""
    for d in ${LD_LIBRARY_PATH//:/ } /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
             /usr/lib/x86_64-linux-gnu; do
      for f in "$d"/lib$lib.so.1[0-9]*; do
        [ -e "$f" ] && found="$f"
      done
    done
    if [ -z "$found" ]; then
      found=$(ldconfig -p 2>/dev/null | awk -v n="lib$lib.so." '$1 ~ "^"n {print $NF; exit}')
    fi
    if [ -n "$found" ]; then
      ln -sf "$found" "$shim/lib$lib.so"
      echo "shim: lib$lib.so -> $found"
      export LD_LIBRARY_PATH="$shim:$(dirname "$found")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    fi
  done
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  ldconfig -p 2>/dev/null | grep -E "libcuda\.so|libnvrtc|libcublas" || true
  [ -d "$BIN" ] || { echo "no $BIN: run 'scripts/gpu_check.sh build' first and carry it"; exit 2; }

  # One deadline for the whole run (GPU_CHECK_BUDGET seconds, default 480), so a hang in
  # one step leaves time for the rest and the log still comes back.
  local deadline=$(( $(date +%s) + ${GPU_CHECK_BUDGET:-480} ))
  t() { # t SECONDS cmd... : run with min(SECONDS, time left) as its limit
    local left=$(( deadline - $(date +%s) )); local lim=$1; shift
    [ "$left" -lt "$lim" ] && lim=$left
    if [ "$lim" -le 5 ]; then echo "skipped (run budget spent): $*"; return 124; fi
    timeout "$lim" "$@"
  }
  local status=0
  echo "== GPU tests"
  for tb in cuda_device cuda_models; do
    t 90 "$BIN/$tb" --nocapture --test-threads 1 || status=1
  done
  t 120 env PROPTEST_CASES="${PROPTEST_CASES:-64}" "$BIN/cuda_differential" --nocapture || status=1

  echo "== Flumen GPU benchmarks"
  t 90 "$BIN/cuda_bench" --ignored --nocapture --test-threads 1 bench_mnist || status=1
  t 90 "$BIN/cuda_bench" --ignored --nocapture --test-threads 1 bench_bigbird || status=1
  t 45 "$BIN/cuda_bench" --ignored --nocapture --test-threads 1 bench_gemm || status=1
  t 45 env FLUMEN_CUDA_TF32=1 "$BIN/cuda_bench" --ignored --nocapture --test-threads 1 bench_gemm || status=1

  echo "== where the time goes (FLUMEN_CUDA_PROFILE=1: per-phase means, stream synchronised per phase)"
  for b in bench_mnist bench_bigbird; do
    t 90 env FLUMEN_CUDA_PROFILE=1 "$BIN/cuda_bench" --ignored --nocapture --test-threads 1 "$b" 2>&1 \
      | grep -vE "^(running|test |bench |$)" | head -60
    echo "-- $b without CUDA graphs, every step timed on its own (launch overhead included)"
    t 90 env FLUMEN_CUDA_PROFILE=1 FLUMEN_CUDA_GRAPHS=0 "$BIN/cuda_bench" --ignored --nocapture \
      --test-threads 1 "$b" 2>&1 | grep -vE "^(running|test |bench |$)" | head -80
  done

  echo "== peers (same GPU, same run)"
  t 120 env PYTHONUNBUFFERED=1 python3 scripts/gpu_peers.py || echo "peers failed"
  if python3 -c "import jax; assert any(d.platform == 'gpu' for d in jax.devices())" 2>/dev/null; then
    for n in 16384 65536; do
      (cd benches/peers && t 90 env PYTHONUNBUFFERED=1 python3 bigbird_jax.py --threads 16 --n "$n") || echo "bigbird_jax n=$n failed"
    done
  else
    echo "peer jax bigbird skipped: no JAX with a GPU"
  fi
  grep -hE "^(bench|peer) " "$out/gpu_check.log" > "$out/summary.txt" || true
  echo "== summary"; cat "$out/summary.txt"
  if grep -q "skipped, no usable CUDA device" "$out/gpu_check.log"; then
    echo "gpu_check: NO GPU WAS USED (the GPU tests skipped; see the reason above)"
    return 3
  fi
  echo "gpu_check: tests $([ $status = 0 ] && echo passed || echo FAILED)"
  return $status
}

case "${1:-}" in
  build) build ;;
  run) run ;;
  *) echo "usage: $0 build|run" >&2; exit 2 ;;
esac
