#!/usr/bin/env bash
# ties_mergekit.sh [CATMERGE] [WORK_DIR]: what TIES at density 0.2 keeps of each task on a bf16 LLaMA-shaped set,
# and how catmerge's TIES differs from mergekit's `ties` on the same files (docs/BENCHMARKS.md section 10).
# Generates a small set with tools/make_random_llama.py into WORK_DIR (default build/bench-ties-mergekit; hidden
# 512, 2 layers, MLP 1376, 8 heads, 2 KV heads, vocab 4000, base + 3 experts, 19 MB each), makes mergekit's
# environment with bench/ties_mergekit_venv.sh, then merges, all in float32 output so that no bf16 rounding
# hides a difference:
#   - catmerge TIES, density 0.2, alpha 0.3, scope tensor (what mergekit computes) and scope model, all three
#     experts, and each expert alone (K = 1: the merge is theta_0 + alpha * That_k, so the trimmed task vector
#     shows in the output);
#   - mergekit-yaml `ties` (density 0.2, weight 0.3, normalize true, lambda 0.3), the three experts and each alone;
# and runs bench/ties_mergekit.py on the outputs: the kept fraction per task, the old rule's, the differences of
# the merged models and where they come from. CATMERGE (or env CATMERGE) defaults to build/catmerge. Sizes by
# environment: BENCH_HIDDEN, BENCH_LAYERS, BENCH_INTERMEDIATE, BENCH_HEADS, BENCH_KV_HEADS, BENCH_VOCAB,
# BENCH_EXPERTS, BENCH_DELTA_SCALE (the experts' delta, make_random_llama.py --delta-scale, default 0.05: a few
# bf16 spacings; 0.005: mostly one, as in a short fine-tune, where many magnitudes tie); the venv: MERGEKIT_VENV (default build/mergekit-venv), ORACLE_VENV (see ties_mergekit_venv.sh).
#
#   bench/ties_mergekit.sh build-cpu/catmerge
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
binary=$(realpath "${1:-${CATMERGE:-$bench_root/build/catmerge}}")
work=${2:-${BENCH_WORK:-$bench_root/build/bench-ties-mergekit}}
venv=${MERGEKIT_VENV:-$bench_root/build/mergekit-venv}
experts=${BENCH_EXPERTS:-3}
ensure_set make_random_llama.py "$work" --hidden "${BENCH_HIDDEN:-512}" --layers "${BENCH_LAYERS:-2}" \
  --intermediate "${BENCH_INTERMEDIATE:-1376}" --heads "${BENCH_HEADS:-8}" --kv-heads "${BENCH_KV_HEADS:-2}" \
  --vocab "${BENCH_VOCAB:-4000}" --experts "$experts" --delta-scale "${BENCH_DELTA_SCALE:-0.05}"
"$bench_root/bench/ties_mergekit_venv.sh" "$venv"

# Configurations of the merges: all experts ("all"), or expert k alone ("k").
write_configs() {  # label experts...
  local label=$1
  shift
  local cm_experts="" mk_models=""
  for k in "$@"; do
    cm_experts+="  - {name: expert$k, path: expert$k}"$'\n'
    mk_models+="  - model: $work/expert$k"$'\n'"    parameters: {density: 0.2, weight: 0.3}"$'\n'
  done
  printf 'model: {arch: llama, base: base}\nexperts:\n%smethod: {name: ties, density: 0.2, alpha: 0.3}\n' \
    "$cm_experts" >"$work/ties-$label.yaml"
  printf 'output: {path: cm-%s.h5, dtype: f32}\nruntime: {backend: cpu, threads: 0}\n' "$label" >>"$work/ties-$label.yaml"
  printf 'merge_method: ties\nbase_model: %s/base\nmodels:\n%sparameters: {normalize: true, lambda: 0.3}\n' \
    "$work" "$mk_models" >"$work/mergekit-ties-$label.yml"
  printf 'dtype: float32\nout_dtype: float32\n' >>"$work/mergekit-ties-$label.yml"
}
all=()
for ((k = 0; k < experts; k++)); do
  write_configs "$k" "$k"
  all+=("$k")
done
write_configs all "${all[@]}"

start=$SECONDS
for label in all "${all[@]}"; do
  for scope in tensor model; do
    "$binary" run "$work/ties-$label.yaml" --set method.scope=$scope --set output.path="$work/cm-$label-$scope.h5" \
      >"$work/cm-$label-$scope.log" 2>&1 || { tail -5 "$work/cm-$label-$scope.log" >&2; exit 1; }
  done
  rm -rf "${work:?}/mk-$label"
  "$venv/bin/mergekit-yaml" "$work/mergekit-ties-$label.yml" "$work/mk-$label" --no-copy-tokenizer --quiet \
    >"$work/mk-$label.log" 2>&1 || { tail -5 "$work/mk-$label.log" >&2; exit 1; }
done
echo "ties_mergekit: $((1 + experts)) catmerge merges per scope and $((1 + experts)) mergekit merges in $((SECONDS - start)) s"
"$python" "$bench_root/bench/ties_mergekit.py" "$work" "$experts"
