#!/usr/bin/env bash
# The CUDA backend's device checks, one run of at most 7 minutes on one H200 with 16 cores: configure and build
# (Release, CATMERGE_CUDA=ON, sm_90 only to save time), run the GPU tests (ctest label gpu), then two CAT
# merges on the GPU, each given half of the time left: the ViT-L/14-shaped 8-expert one (bench/vit_l_cat.sh
# with BENCH_BACKEND=cuda: it generates the 11 GB set with tools/make_random_clip.py, which needs python3 with
# numpy and h5py, reads it once into the page cache and times `catmerge run`) and the LLaMA-7B-shaped
# 8-expert one on one rank (bench/llama7b_cat.sh, --llama-blocks blocks, 11 GB at 2). Everything it prints also goes to $OUT (the device runner brings back
# what is written there), else to build-device/out. Where no GPU is visible it still builds and the GPU
# tests skip themselves; on a small machine pass smaller sizes, e.g. --blocks 1 --experts 2.
#   tests/gpu/device-checks.sh [--blocks 24] [--llama-blocks 2] [--experts 8] [--budget 420]
set -euo pipefail
cd "$(dirname "$0")/../.."
blocks=24 llama_blocks=2 experts=8 budget=420
while [ $# -gt 0 ]; do
  case "$1" in
    --blocks) blocks=$2; shift 2 ;;
    --llama-blocks) llama_blocks=$2; shift 2 ;;
    --experts) experts=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;  # seconds for the whole script; the benchmark gets what is left
    *) echo "device-checks.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
start=$SECONDS
out=${OUT:-$PWD/build-device/out}
mkdir -p "$out"
log=$out/device-checks.log
: >"$log"
step() { echo "== $* ($((SECONDS - start)) s)" | tee -a "$log"; }

step "machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"; nproc; } | tee -a "$log"

step "configure and build"
cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release -DCATMERGE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  >>"$log" 2>&1
build_start=$SECONDS
cmake --build build-device -j"$(nproc)" >>"$log" 2>&1 || { tail -40 "$log"; exit 1; }
echo "build: $((SECONDS - build_start)) s" | tee -a "$log"

step "GPU tests"
tests_rc=0
(cd build-device && ctest -L gpu -j4 --timeout 300 --output-on-failure --output-junit "$out/gpu-tests.xml") \
  >"$out/gpu-tests.txt" 2>&1 || tests_rc=$?
grep -E "tests passed|Skipped|Failed|\(Failed\)" "$out/gpu-tests.txt" | tail -40 | tee -a "$log"

step "benchmarks"
bench_rc=0
if python3 -c "import numpy, h5py" 2>/dev/null; then
  left=$((budget - (SECONDS - start) - 5))
  BENCH_BACKEND=cuda BENCH_LAYERS=$blocks BENCH_EXPERTS=$experts timeout "$((left / 2 > 30 ? left / 2 : 30))" \
    bench/vit_l_cat.sh build-device/catmerge build-device/bench-vitl 2>&1 | tee "$out/bench.txt" | tee -a "$log" ||
    bench_rc=$?
  left=$((budget - (SECONDS - start) - 5))
  BENCH_BACKEND=cuda BENCH_LAYERS=$llama_blocks BENCH_EXPERTS=$experts BENCH_RANKS=1 BENCH_THREADS=0 \
    timeout "$((left > 30 ? left : 30))" bench/llama7b_cat.sh build-device/catmerge build-device/bench-llama7b 2>&1 |
    tee "$out/bench-llama7b.txt" | tee -a "$log" || bench_rc=$((bench_rc == 0 ? $? : bench_rc))
else
  echo "benchmarks skipped: python3 with numpy and h5py is needed to generate their sets" | tee -a "$log"
  bench_rc=1
fi
step "done (GPU tests rc $tests_rc, benchmark rc $bench_rc)"
exit $((tests_rc != 0 || bench_rc != 0))
