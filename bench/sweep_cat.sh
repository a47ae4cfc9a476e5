#!/usr/bin/env bash
# sweep_cat.sh [CATMERGE] [WORK_DIR]: a CAT sweep over 4 alphas at one (lambda, c) on the ViT-B/32-shaped
# 8-expert set of section 1 (build/bench-vitb, made by tools/make_random_clip.py if it is not there), against
# one CAT run of the same set (docs/BENCHMARKS.md section 8). The set has no eval data, so the sweep writes
# every point's model (sweep.write: all) and scores none; the run writes its one. Both run under
# /usr/bin/time -v with runtime.threads 0 after the inputs are read once (page cache); prints both wall times,
# their ratio and the peak RSS of each. CATMERGE (or env CATMERGE) defaults to build/catmerge.
# Environment: BENCH_ALPHAS (default "0.1, 0.2, 0.3, 0.4"), BENCH_LAYERS, BENCH_EXPERTS (a small test:
# BENCH_LAYERS=1 BENCH_EXPERTS=2).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
binary=$(realpath "${1:-${CATMERGE:-$bench_root/build/catmerge}}")
work=${2:-${BENCH_WORK:-$bench_root/build/bench-vitb}}
experts=${BENCH_EXPERTS:-8}
alphas=${BENCH_ALPHAS:-0.1, 0.2, 0.3, 0.4}
ensure_set make_random_clip.py "$work" --width 768 --layers "${BENCH_LAYERS:-12}" --mlp 3072 --patch 32 \
  --image 224 --experts "$experts"
warm_cache "$work"/base/* "$work"/expert*/* "$work/exemplars.h5"
rm -rf "$work/sweep" "$work/sweep-run.h5" "$work/sweep-selected.h5"
common=(--set method.name=cat --set runtime.threads=0)
timed "$work/sweep-run.log" "$binary" run "$work/merge.yaml" "${common[@]}" --set output.path="$work/sweep-run.h5"
timed "$work/sweep.log" "$binary" sweep "$work/merge.yaml" "${common[@]}" --set output.path="$work/sweep-selected.h5" \
  --set sweep.dir="$work/sweep" --set sweep.write=all --set "sweep.grids=[{method: cat, alpha: [$alphas]}]"
cat "$work/sweep-run.log" "$work/sweep.log"
run=$(wall_of "$work/sweep-run.log")
sweep=$(wall_of "$work/sweep.log")
points=$(ls "$work"/sweep/points/*.h5 | wc -l)
echo "bench: one cat run: $run s, peak RSS $(rss_of "$work/sweep-run.log") bytes"
echo "bench: cat sweep of $points alphas: $sweep s, peak RSS $(rss_of "$work/sweep.log") bytes"
echo "bench: sweep / run = $(awk -v s="$sweep" -v r="$run" 'BEGIN {printf "%.2f", s / r}')x (target <= 1.3x)"
rm -rf "$work/sweep" "$work/sweep-run.h5" "$work/sweep-selected.h5"
