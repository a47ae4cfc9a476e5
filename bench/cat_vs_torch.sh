#!/usr/bin/env bash
# cat_vs_torch.sh [CATMERGE] [WORK_DIR]: the ViT-B/32-shaped 8-expert CAT merge, catmerge against the
# straightforward PyTorch implementation (bench/torch_cat.py), in one command:
#   1. generates the set with tools/make_random_clip.py into WORK_DIR if it is not there (default
#      build/bench-vitb; width 768, 12 blocks, MLP 3072, patch 32, image 224, 8 experts, fp32: 3.2 GB);
#   2. reads every input once (page cache), then runs catmerge (runtime.threads 0: all cores) under
#      /usr/bin/time -v;
#   3. runs torch_cat.py (bench/setup-venv.sh's environment, made if missing; torch's default threads);
#   4. prints both wall times (whole processes, /usr/bin/time) and their ratio, catmerge's peak RSS against the input bytes, and the worst
#      tensor's max|catmerge - torch| / max|torch|.
# CATMERGE (or env CATMERGE) defaults to build/catmerge. Sizes: BENCH_WIDTH, BENCH_LAYERS, BENCH_MLP,
# BENCH_PATCH, BENCH_IMAGE, BENCH_EXPERTS (small test: BENCH_LAYERS=1 BENCH_EXPERTS=3); BENCH_BACKEND
# (cpu); BENCH_VENV (build/bench-venv); BENCH_SKIP_TORCH=1 runs catmerge alone.
#
#   bench/cat_vs_torch.sh build/catmerge
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
binary=$(realpath "${1:-${CATMERGE:-$bench_root/build/catmerge}}")
work=${2:-${BENCH_WORK:-$bench_root/build/bench-vitb}}
venv=${BENCH_VENV:-$bench_root/build/bench-venv}
width=${BENCH_WIDTH:-768}
experts=${BENCH_EXPERTS:-8}
ensure_set make_random_clip.py "$work" --width "$width" --layers "${BENCH_LAYERS:-12}" \
  --mlp "${BENCH_MLP:-$((4 * width))}" --patch "${BENCH_PATCH:-32}" --image "${BENCH_IMAGE:-224}" --experts "$experts"
if [[ ${BENCH_SKIP_TORCH:-0} != 1 ]]; then
  "$bench_root/bench/setup-venv.sh" "$venv"
fi
bytes=$(input_bytes "$work" "$experts")
warm_cache "$work"/base/* "$work"/expert*/* "$work/exemplars.h5"

echo "bench: catmerge ($(nproc) cores)"
timed "$work/catmerge-cat.log" "$binary" run "$work/merge.yaml" --set method.name=cat \
  --set runtime.backend="${BENCH_BACKEND:-cpu}" --set runtime.threads=0 --set output.path="$work/catmerge-cat.h5"
cat "$work/catmerge-cat.log"
cm_wall=$(wall_of "$work/catmerge-cat.log")
cm_rss=$(rss_of "$work/catmerge-cat.log")

if [[ ${BENCH_SKIP_TORCH:-0} != 1 ]]; then
  echo "bench: torch_cat.py"
  timed "$work/torch-cat.log" "$venv/bin/python" "$bench_root/bench/torch_cat.py" "$work/merge.yaml" \
    --out "$work/torch-cat.h5"
  cat "$work/torch-cat.log"
  torch_wall=$(wall_of "$work/torch-cat.log")
  torch_rss=$(rss_of "$work/torch-cat.log")
  torch_own=$(grep -oE 'torch_cat: wrote .* in [0-9.]+ s' "$work/torch-cat.log" | grep -oE '[0-9.]+ s$' | cut -d' ' -f1)
  compare=$("$python" "$bench_root/bench/compare_outputs.py" "$work/catmerge-cat.h5" "$work/torch-cat.h5" | tail -1)
fi

echo
echo "CAT, $experts experts, width $width, $(gb "$bytes") GB of checkpoints, $(nproc) cores"
printf '%-10s %9s %11s %9s\n' tool wall_s peak_rss_GB rss/input
printf '%-10s %9s %11s %9s\n' catmerge "$cm_wall" "$(gb "$cm_rss")" "$(ratio "$cm_rss" "$bytes")"
if [[ ${BENCH_SKIP_TORCH:-0} != 1 ]]; then
  printf '%-10s %9s %11s %9s\n' torch "$torch_wall" "$(gb "$torch_rss")" "$(ratio "$torch_rss" "$bytes")"
  echo "torch / catmerge wall time: $(ratio "$torch_wall" "$cm_wall")x"
  echo "torch_cat's own total (after importing torch): $torch_own s, $(ratio "$torch_own" "$cm_wall")x catmerge's"
  echo "$compare"
fi
