#!/usr/bin/env bash
# ranks_scaling.sh [CATMERGE] [WORK_DIR]: wall time and bytes read per rank of one merge with 1, 2 and 4
# ranks (mpirun, one BLAS thread per rank) on a generated CLIP-ViT model (tools/make_random_clip.py;
# default width 384, 8 blocks, 4 experts; override with BENCH_WIDTH, BENCH_LAYERS, BENCH_EXPERTS,
# BENCH_METHODS="cat ties"). Prints a table; on a machine with fewer cores than ranks the extra ranks
# share cores (reported as such).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
binary=$(realpath "${1:-$root/build/catmerge}")
work=${2:-$root/build/bench-ranks}
python=${CATMERGE_TEST_PYTHON:-/usr/bin/python3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$work"
if [[ ! -f $work/merge.yaml ]]; then
  "$python" "$root/tools/make_random_clip.py" "$work" --width "${BENCH_WIDTH:-384}" --layers "${BENCH_LAYERS:-8}" \
    --experts "${BENCH_EXPERTS:-4}"
fi
echo "model: $(du -sh "$work/base" | cut -f1) per checkpoint, ${BENCH_EXPERTS:-4} experts; $(nproc) cores"
printf '%-6s %5s %9s %9s %9s %9s  %s\n' method ranks wall_s features merge speedup "bytes read / shard bytes per rank"
for method in ${BENCH_METHODS:-cat ties task_arithmetic}; do
  base_time=""
  for ranks in 1 2 4; do
    log=$work/$method-$ranks.log
    start=$(date +%s.%N)
    mpirun --oversubscribe -np "$ranks" "$binary" run "$work/merge.yaml" --set method.name="$method" \
      --set output.path="$work/$method-$ranks.h5" >"$log"
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    base_time=${base_time:-$wall}
    features=$(grep -oE 'features [0-9.e-]+' "$log" | cut -d' ' -f2)
    merge=$(grep -oE 'merge\+write [0-9.e-]+' "$log" | cut -d' ' -f2)
    bytes=$(grep -oE 'read [0-9]+ bytes, shard [0-9]+' "$log" | awk '{printf "%.0fM/%.0fM ", $2/1e6, $5/1e6}' || true)
    printf '%-6s %5d %9.2f %9.2f %9.2f %9.2f  %s\n' "${method:0:6}" "$ranks" "$wall" "$features" "$merge" \
      "$(echo "$base_time / $wall" | bc -l)" "${bytes:-(one rank: every tensor)}"
  done
done
