#!/usr/bin/env bash
# elementwise_vs_mergekit.sh [CATMERGE] [WORK_DIR]: catmerge's element-wise methods at the read floor and
# against mergekit, on the LLaMA-shaped bf16 set of tools/make_random_llama.py (default: hidden 2048,
# 8 layers, MLP 5632, 16 heads, 4 KV heads, vocab 32000, base + 4 experts, 4.9 GB), generated into WORK_DIR if it is
# not there (default build/bench-llama). Measures, each from the page cache (every input is read once
# with cat before each timed run):
#   - read once: bench/read_once.py, every input file read in full with 16 MiB read(2) calls into one
#     buffer, one thread, the fastest of 3 passes after a warming pass; and write once: the base
#     checkpoint's size written to a new file, for context (see read_once.py);
#   - catmerge (one rank, runtime.threads 0) task_arithmetic (alphas 0.3), ties with scope tensor (what
#     mergekit computes) and scope model (the default), density 0.2, alpha 0.3;
#   - mergekit-yaml (PyPI, CPU, bench/setup-venv.sh's environment) task_arithmetic and ties on the same
#     files, with the configurations make_random_llama.py wrote (--no-copy-tokenizer --quiet);
# each under /usr/bin/time -v (whole process: mergekit's includes importing torch). Prints wall times, peak
# RSS, catmerge / read-once and mergekit / catmerge ratios, whether catmerge's task_arithmetic output
# equals mergekit's bit for bit, and the largest difference of the TIES outputs (mergekit keeps exactly
# int(density * n) entries and elects + on a zero sum; METHODS.md keeps ties at the threshold).
# CATMERGE (or env CATMERGE) defaults to build/catmerge. Sizes by environment: BENCH_HIDDEN, BENCH_LAYERS,
# BENCH_INTERMEDIATE, BENCH_HEADS, BENCH_KV_HEADS, BENCH_VOCAB, BENCH_EXPERTS; BENCH_THREADS
# (runtime.threads, 0); MERGEKIT_ARGS (extra mergekit-yaml options); BENCH_SKIP_MERGEKIT=1; BENCH_VENV.
#
#   bench/elementwise_vs_mergekit.sh build/catmerge
#   BENCH_HIDDEN=256 BENCH_LAYERS=2 BENCH_INTERMEDIATE=512 BENCH_VOCAB=4000 BENCH_EXPERTS=2 bench/elementwise_vs_mergekit.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
binary=$(realpath "${1:-${CATMERGE:-$bench_root/build/catmerge}}")
work=${2:-${BENCH_WORK:-$bench_root/build/bench-llama}}
venv=${BENCH_VENV:-$bench_root/build/bench-venv}
experts=${BENCH_EXPERTS:-4}
skip_mk=${BENCH_SKIP_MERGEKIT:-0}
ensure_set make_random_llama.py "$work" --hidden "${BENCH_HIDDEN:-2048}" --layers "${BENCH_LAYERS:-8}" \
  --intermediate "${BENCH_INTERMEDIATE:-5632}" --heads "${BENCH_HEADS:-16}" --kv-heads "${BENCH_KV_HEADS:-4}" \
  --vocab "${BENCH_VOCAB:-32000}" --experts "$experts"
[[ $skip_mk == 1 ]] || "$bench_root/bench/setup-venv.sh" "$venv"
inputs=("$work/base/model.safetensors")
for ((k = 0; k < experts; k++)); do inputs+=("$work/expert$k/model.safetensors"); done
bytes=$(input_bytes "$work" "$experts")

# The output write for context: as many bytes as the base checkpoint (the merged model has its tensors and dtype).
out_bytes=$(stat -c %s "$work/base/model.safetensors")
"$python" "$bench_root/bench/read_once.py" "${inputs[@]}" --write "$out_bytes" "$work/write_once.tmp" |
  tee "$work/read_once.log"
read_s=$(grep '^read_once: [0-9]' "$work/read_once.log" | grep -oE 'in [0-9.]+ s' | cut -d' ' -f2)
write_s=$(grep '^write_once: [0-9]' "$work/read_once.log" | grep -oE 'in [0-9.]+ s' | cut -d' ' -f2)

declare -A wall rss
run_catmerge() {  # label config --set...
  local label=$1 config=$2
  shift 2
  rm -f "$work/cm-$label.h5"
  warm_cache "${inputs[@]}"
  timed "$work/cm-$label.log" "$binary" run "$work/$config" --set runtime.threads="${BENCH_THREADS:-0}" \
    --set output.path="$work/cm-$label.h5" "$@"
  grep '^catmerge: wrote' "$work/cm-$label.log"
  wall[$label]=$(wall_of "$work/cm-$label.log")
  rss[$label]=$(rss_of "$work/cm-$label.log")
}
run_mergekit() {  # method
  local label=mk-$1
  rm -rf "${work:?}/$label"
  warm_cache "${inputs[@]}"
  # shellcheck disable=SC2086
  timed "$work/$label.log" "$venv/bin/mergekit-yaml" "$work/mergekit-$1.yml" "$work/$label" --no-copy-tokenizer \
    --quiet ${MERGEKIT_ARGS:-}
  echo "mergekit: wrote $work/$label ($1) in $(wall_of "$work/$label.log") s"
  wall[$label]=$(wall_of "$work/$label.log")
  rss[$label]=$(rss_of "$work/$label.log")
}
run_catmerge ta task_arithmetic.yaml
run_catmerge ties-tensor ties.yaml --set method.scope=tensor
run_catmerge ties-model ties.yaml --set method.scope=model
if [[ $skip_mk != 1 ]]; then
  run_mergekit task_arithmetic
  run_mergekit ties
  ta_cmp=$("$python" "$bench_root/bench/compare_outputs.py" "$work/cm-ta.h5" "$work/mk-task_arithmetic" | tail -1)
  ties_cmp=$("$python" "$bench_root/bench/compare_outputs.py" "$work/cm-ties-tensor.h5" "$work/mk-ties" | tail -1)
fi

echo
echo "element-wise merges, $experts experts + base, $(gb "$bytes") GB of bf16 checkpoints, $(nproc) cores"
echo "read once from the page cache: $read_s s; the merged model's $(gb "$out_bytes") GB written to a new file: $write_s s (first pass; see read_once.py)"
printf '%-28s %8s %12s %11s %18s\n' run wall_s peak_rss_GB /read_once mergekit/catmerge
row() {  # label name mergekit-label
  local vs="-"
  [[ -n ${3:-} && -n ${wall[$3]:-} ]] && vs=$(ratio "${wall[$3]}" "${wall[$1]}")
  printf '%-28s %8s %12s %11s %18s\n' "$2" "${wall[$1]}" "$(gb "${rss[$1]}")" "$(ratio "${wall[$1]}" "$read_s")" "$vs"
}
row ta "catmerge task_arithmetic" mk-task_arithmetic
row ties-tensor "catmerge ties scope=tensor" mk-ties
row ties-model "catmerge ties scope=model" mk-ties
if [[ $skip_mk != 1 ]]; then
  row mk-task_arithmetic "mergekit task_arithmetic"
  row mk-ties "mergekit ties"
  echo "task_arithmetic, catmerge vs mergekit: $ta_cmp"
  echo "ties (scope tensor), catmerge vs mergekit: $ties_cmp"
fi
