#!/usr/bin/env bash
# vit_l_cat.sh [CATMERGE] [WORK_DIR]: the ViT-L/14-shaped 8-expert CAT merge end to end from HF
# directories: generates the set with tools/make_random_clip.py into WORK_DIR if it is not there (default
# build/bench-vitl; width 1024, 24 blocks, MLP 4096, 16 heads, patch 14, image 224, 8 experts, fp32:
# 9 checkpoints of 1.2 GB), reads every input once (page cache), runs `catmerge run` (runtime.threads 0)
# under /usr/bin/time -v and prints the wall time, catmerge's phase line, peak RSS, input bytes and
# their ratio. CATMERGE (or env CATMERGE) defaults to build/catmerge.
# Environment: BENCH_BACKEND (cpu; cuda on a GPU machine), BENCH_WIDTH, BENCH_LAYERS, BENCH_MLP,
# BENCH_EXPERTS, BENCH_PATCH, BENCH_IMAGE (small test: BENCH_LAYERS=1 BENCH_EXPERTS=2).
#
#   bench/vit_l_cat.sh build/catmerge                      # CPU
#   BENCH_BACKEND=cuda bench/vit_l_cat.sh build/catmerge   # GPU machine
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
binary=$(realpath "${1:-${CATMERGE:-$bench_root/build/catmerge}}")
work=${2:-${BENCH_WORK:-$bench_root/build/bench-vitl}}
backend=${BENCH_BACKEND:-cpu}
width=${BENCH_WIDTH:-1024}
experts=${BENCH_EXPERTS:-8}
ensure_set make_random_clip.py "$work" --width "$width" --layers "${BENCH_LAYERS:-24}" \
  --mlp "${BENCH_MLP:-$((4 * width))}" --patch "${BENCH_PATCH:-14}" --image "${BENCH_IMAGE:-224}" --experts "$experts"
bytes=$(input_bytes "$work" "$experts")
warm_cache "$work"/base/* "$work"/expert*/* "$work/exemplars.h5"
log=$work/catmerge-cat-$backend.log
timed "$log" "$binary" run "$work/merge.yaml" --set method.name=cat --set runtime.backend="$backend" \
  --set runtime.threads=0 --set output.path="$work/catmerge-cat-$backend.h5"
cat "$log"
wall=$(wall_of "$log")
rss=$(rss_of "$log")
echo
echo "ViT-L/14-shaped CAT, $experts experts, ${BENCH_LAYERS:-24} blocks, backend $backend, $(nproc) cores"
echo "wall ${wall} s, peak RSS $(gb "$rss") GB, input $(gb "$bytes") GB ($bytes bytes), RSS / input $(ratio "$rss" "$bytes")"
