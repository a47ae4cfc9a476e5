#!/usr/bin/env bash
# ranks_scaling.sh [CATMERGE] [WORK_DIR]: wall time and bytes read per rank of one merge with 1, 2 and 4
# ranks (mpirun --oversubscribe, one BLAS thread and runtime.threads=1 per rank) on a generated CLIP-ViT
# model (tools/make_random_clip.py; default width 384, 8 blocks, 4 experts; override with BENCH_WIDTH,
# BENCH_LAYERS, BENCH_EXPERTS, BENCH_RANKS="1 2 4", BENCH_METHODS="cat ties"). Prints a table and, per
# method, the speed-up of the largest rank count over the first; on a machine with fewer cores than ranks
# the extra ranks share cores (reported as such). Every run reads from the page cache (the inputs are read
# once with cat just before it).
# BENCH_CASE=vitb: the ViT-B/32-shaped 8-expert CAT case of bench/cat_vs_torch.sh (width 768, 12 blocks,
# MLP 3072, patch 32, image 224, 8 experts; the same set, default WORK_DIR build/bench-vitb) at 1 and 2
# ranks; BENCH_LAYERS, BENCH_EXPERTS, BENCH_WIDTH, BENCH_RANKS and BENCH_METHODS still apply.
#
#   bench/ranks_scaling.sh build/catmerge
#   BENCH_CASE=vitb bench/ranks_scaling.sh build/catmerge
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
binary=$(realpath "${1:-${CATMERGE:-$bench_root/build/catmerge}}")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
if [[ ${BENCH_CASE:-} == vitb ]]; then
  work=${2:-$bench_root/build/bench-vitb}
  width=${BENCH_WIDTH:-768} experts=${BENCH_EXPERTS:-8}
  ensure_set make_random_clip.py "$work" --width "$width" --layers "${BENCH_LAYERS:-12}" --mlp "$((4 * width))" \
    --patch 32 --image 224 --experts "$experts"
  ranks_list=${BENCH_RANKS:-1 2} methods=${BENCH_METHODS:-cat}
elif [[ -n ${BENCH_CASE:-} ]]; then
  echo "ranks_scaling.sh: unknown BENCH_CASE=$BENCH_CASE (vitb, or unset)" >&2
  exit 1
else
  work=${2:-$bench_root/build/bench-ranks}
  experts=${BENCH_EXPERTS:-4}
  ensure_set make_random_clip.py "$work" --width "${BENCH_WIDTH:-384}" --layers "${BENCH_LAYERS:-8}" --experts "$experts"
  ranks_list=${BENCH_RANKS:-1 2 4} methods=${BENCH_METHODS:-cat ties task_arithmetic}
fi
echo "model: $(du -sh "$work/base" | cut -f1) per checkpoint, $experts experts; $(nproc) cores"
printf '%-6s %5s %9s %9s %9s %9s  %s\n' method ranks wall_s features merge speedup "bytes read / shard bytes per rank"
summary=()
for method in $methods; do
  base_time="" first_ranks=""
  for ranks in $ranks_list; do
    log=$work/$method-$ranks.log
    warm_cache "$work"/base/* "$work"/expert*/* "$work"/exemplars.h5
    start=$(date +%s.%N)
    mpirun --oversubscribe -np "$ranks" "$binary" run "$work/merge.yaml" --set method.name="$method" \
      --set runtime.threads=1 --set output.path="$work/$method-$ranks.h5" >"$log"
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    base_time=${base_time:-$wall} first_ranks=${first_ranks:-$ranks}
    features=$(grep -oE 'features [0-9.e+-]+,' "$log" | tr -d , | cut -d' ' -f2)
    merge=$(grep -oE 'merge [0-9.e+-]+ \(output' "$log" | cut -d' ' -f2)
    bytes=$(grep -oE 'read [0-9]+ bytes, shard [0-9]+' "$log" | awk '{printf "%.0fM/%.0fM ", $2/1e6, $5/1e6}' || true)
    speedup=$(echo "$base_time / $wall" | bc -l)
    printf '%-6s %5d %9.2f %9.2f %9.2f %9.2f  %s\n' "${method:0:6}" "$ranks" "$wall" "$features" "$merge" \
      "$speedup" "${bytes:-(one rank: every tensor)}"
  done
  summary+=("$(printf '%s: %d ranks are %.2fx faster than %d (%d cores)' "$method" "$ranks" "$speedup" \
    "$first_ranks" "$(nproc)")")
done
printf '%s\n' "${summary[@]}"
