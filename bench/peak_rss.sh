#!/usr/bin/env bash
# peak_rss.sh [CATMERGE] [WORK_DIR]: catmerge's peak RSS (/usr/bin/time -v, "Maximum resident set size")
# against its input bytes, for CAT and task_arithmetic on random CLIP-ViT sets of growing size
# (tools/make_random_clip.py; widths 256, 512, 768, 8 blocks, MLP 4 x width, patch 32, image 224,
# 4 experts, fp32), each set generated once into WORK_DIR/w<width> (default build/bench-rss).
# Prints a table: input bytes | method | peak RSS | ratio. Memory flat in model size shows as a ratio
# that does not grow with the width. CATMERGE (or env CATMERGE) defaults to build/catmerge.
# Options by environment: BENCH_WIDTHS ("256 512 768"), BENCH_LAYERS (8), BENCH_EXPERTS (4),
# BENCH_METHODS ("cat task_arithmetic"), BENCH_THREADS (runtime.threads, 0 = all cores).
#
#   bench/peak_rss.sh build/catmerge
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
binary=$(realpath "${1:-${CATMERGE:-$bench_root/build/catmerge}}")
work=${2:-${BENCH_WORK:-$bench_root/build/bench-rss}}
experts=${BENCH_EXPERTS:-4}
rows=()
for width in ${BENCH_WIDTHS:-256 512 768}; do
  dir=$work/w$width
  ensure_set make_random_clip.py "$dir" --width "$width" --layers "${BENCH_LAYERS:-8}" --patch 32 --image 224 \
    --experts "$experts"
  bytes=$(input_bytes "$dir" "$experts")
  for method in ${BENCH_METHODS:-cat task_arithmetic}; do
    log=$dir/$method.log
    timed "$log" "$binary" run "$dir/merge.yaml" --set method.name="$method" --set runtime.backend=cpu \
      --set runtime.threads="${BENCH_THREADS:-0}" --set output.path="$dir/$method.h5"
    grep '^catmerge: wrote' "$log"
    rss=$(rss_of "$log")
    rows+=("$(printf '%14d %-16s %12d %7s' "$bytes" "$method" "$rss" "$(ratio "$rss" "$bytes")")")
    rm -f "$dir/$method.h5"
  done
done
echo
echo "peak RSS against input bytes ($experts experts, ${BENCH_LAYERS:-8} blocks; input = base + experts' safetensors)"
printf '%14s %-16s %12s %7s\n' input_bytes method peak_rss ratio
printf '%s\n' "${rows[@]}"
