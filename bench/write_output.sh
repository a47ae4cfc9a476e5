#!/usr/bin/env bash
# write_output.sh [CATMERGE] [WORK_DIR]: the cost of writing the merged model, HDF5 against a HuggingFace
# directory of safetensors shards, for a task_arithmetic merge of the ViT-B/32-shaped 8-expert set of
# bench/cat_vs_torch.sh (tools/make_random_clip.py: width 768, 12 blocks, MLP 3072, patch 32, image 224;
# default WORK_DIR build/bench-vitb, generated there if it is not), on 1 and 2 ranks (mpirun, one BLAS thread
# and runtime.threads 1 per rank; BENCH_RANKS="1 2"), each from the page cache (every input is read once with
# cat just before). Prints, per format and rank count: wall time (/usr/bin/time), catmerge's merge phase,
# the seconds its threads spent writing merged bytes (largest rank; inside the merge), its write phase (after
# the merge: the HDF5 attributes and commit, or the base's other tensors, index, config, copies and rename),
# and the time to read every input once (bench/read_once.py) for scale. BENCH_SHARD_SIZE (default 5GB).
#
#   bench/write_output.sh build/catmerge
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
binary=$(realpath "${1:-${CATMERGE:-$bench_root/build/catmerge}}")
work=${2:-$bench_root/build/bench-vitb}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
experts=8
ensure_set make_random_clip.py "$work" --width 768 --layers 12 --mlp 3072 --patch 32 --image 224 --experts "$experts"
inputs=("$work/base/model.safetensors")
for ((k = 0; k < experts; k++)); do inputs+=("$work/expert$k/model.safetensors"); done
"$python" "$bench_root/bench/read_once.py" "${inputs[@]}" | tee "$work/read_once.log"
read_s=$(grep '^read_once: [0-9]' "$work/read_once.log" | grep -oE 'in [0-9.]+ s' | cut -d' ' -f2)

rows=()
for ranks in ${BENCH_RANKS:-1 2}; do
  for format in hdf5 safetensors; do
    label=ta-$format-$ranks
    out=$work/$label
    [[ $format == hdf5 ]] && out=$out.h5
    rm -rf "$out"
    sets=(--set method.name=task_arithmetic --set runtime.threads=1 --set "output.path=$out")
    [[ $format == safetensors ]] && sets+=(--set output.format=safetensors --set "output.shard_size=${BENCH_SHARD_SIZE:-5GB}")
    launcher=()
    ((ranks > 1)) && launcher=(mpirun -np "$ranks")
    warm_cache "${inputs[@]}"
    timed "$work/$label.log" "${launcher[@]}" "$binary" run "$work/merge.yaml" "${sets[@]}"
    line=$(grep '^catmerge: wrote' "$work/$label.log")
    echo "$line"
    merge=$(grep -oE 'merge [0-9.e+-]+ \(output' <<<"$line" | cut -d' ' -f2)
    write=$(grep -oE ', write [0-9][0-9.e+-]*\]' <<<"$line" | grep -oE '[0-9][0-9.e+-]*')
    # The largest rank's output writes: the per-rank lines with several ranks, else the summary's.
    io=$( (grep -oE 'output writes [0-9.e+-]+ s' "$work/$label.log" || true) | awk '{print $3}' | sort -g | tail -1)
    [[ -n $io ]] || io=$(grep -oE 'output writes [0-9][0-9.e+-]*\)' <<<"$line" | grep -oE '[0-9][0-9.e+-]*')
    rows+=("$(printf '| %-11s | %5s | %7s | %8s | %13s | %7s |' "$format" "$ranks" "$(wall_of "$work/$label.log")" \
      "$merge" "$io" "$write")")
  done
done
echo
echo "read every input once: $read_s s ($(input_bytes "$work" "$experts") bytes)"
echo "| format      | ranks | wall s  | merge s  | output writes | write s |"
echo "|-------------|-------|---------|----------|---------------|---------|"
printf '%s\n' "${rows[@]}"
