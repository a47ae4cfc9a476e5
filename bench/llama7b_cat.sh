#!/usr/bin/env bash
# llama7b_cat.sh [CATMERGE] [WORK_DIR]: the LLaMA-7B-shaped CAT merge of issue 10 on 1 and 2 ranks: a random
# bf16 base + 8 experts (tools/make_random_llama.py: hidden 4096, MLP 11008, 32 heads, 8 KV heads, vocab 32000,
# 2 blocks, untied lm_head; 9 checkpoints of 1.23 GB), 2 token exemplars of 512 tokens per task (tokens.h5,
# input_ids uniform in [0, vocab)), generated into WORK_DIR if it is not there (default build/bench-llama7b).
# For each rank count R it reads every input once (page cache) and runs
#   mpirun --oversubscribe -np R CATMERGE run cat.yaml --set runtime.threads=1 (OPENBLAS_NUM_THREADS=1)
# as bench/ranks_scaling.sh does (one rank included), under /usr/bin/time -v (wall) with each rank under its
# own /usr/bin/time (its exact peak RSS), and prints catmerge's output and a table:
#   - wall time (the whole mpirun) and catmerge's phases (rank 0's open/features/prepare/merge/write);
#   - per-block time = (features + merge) / blocks, from the phase line: the forward of every task's exemplars
#     plus the merge of every tensor (embeddings, norms and lm_head included), divided by the number of
#     transformer blocks; with R > 1 rank 0's merge phase ends when the last rank's tensors have reached it,
#     so this is the job's wall time per block, not one rank's compute;
#   - per rank: peak RSS (/usr/bin/time's "Maximum resident set size", and catmerge's own figure: its per-rank
#     summary line with R > 1, "peak RSS ... (largest rank)" with R = 1);
#   - the bytes of one transformer block (the model.layers.0.* tensors of base/model.safetensors, from its
#     header) times K + 1 (base + K experts), in the checkpoint dtype and in float32, and the feature bytes
#     catmerge reports ("features X GB" of its cat line: rank 0's feature store, all of them with R = 1);
#   - peak RSS / (K + 1 blocks + feature bytes), with the blocks in the checkpoint dtype and in float32 (for a
#     rank other than 0 the denominator still uses rank 0's feature bytes: catmerge reports no other rank's).
# CATMERGE (or env CATMERGE) defaults to build/catmerge. Environment: BENCH_HIDDEN (4096), BENCH_MLP (11008),
# BENCH_HEADS (32), BENCH_KV_HEADS (8), BENCH_VOCAB (32000), BENCH_LAYERS (2; 2 to 4), BENCH_EXPERTS (8),
# BENCH_EXEMPLARS (2), BENCH_SEQ (512), BENCH_BACKEND (cpu; cuda on a GPU machine), BENCH_RANKS ("1 2"),
# BENCH_THREADS (runtime.threads per rank, 1; 0 = all cores in every rank).
#
#   bench/llama7b_cat.sh build/catmerge                                   # CPU, work dir build/bench-llama7b
#   BENCH_BACKEND=cuda bench/llama7b_cat.sh build/catmerge                # GPU machine
#   BENCH_HIDDEN=256 BENCH_MLP=688 BENCH_HEADS=8 BENCH_KV_HEADS=2 BENCH_VOCAB=1000 BENCH_EXPERTS=3 BENCH_SEQ=64 \
#     bench/llama7b_cat.sh build/catmerge /tmp/llama7b-small            # quick try
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
binary=$(realpath "${1:-${CATMERGE:-$bench_root/build/catmerge}}")
work=${2:-${BENCH_WORK:-$bench_root/build/bench-llama7b}}
backend=${BENCH_BACKEND:-cpu}
hidden=${BENCH_HIDDEN:-4096} mlp=${BENCH_MLP:-11008} heads=${BENCH_HEADS:-32} kv_heads=${BENCH_KV_HEADS:-8}
vocab=${BENCH_VOCAB:-32000} layers=${BENCH_LAYERS:-2} experts=${BENCH_EXPERTS:-8}
exemplars=${BENCH_EXEMPLARS:-2} seq=${BENCH_SEQ:-512} threads=${BENCH_THREADS:-1}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[[ $threads == 0 ]] || export OPENBLAS_NUM_THREADS=$threads
ensure_set make_random_llama.py "$work" --hidden "$hidden" --intermediate "$mlp" --heads "$heads" \
  --kv-heads "$kv_heads" --vocab "$vocab" --layers "$layers" --experts "$experts" --exemplars "$exemplars" --seq "$seq"
bytes=$(input_bytes "$work" "$experts")
# One block's values and bytes in the base checkpoint, from its safetensors header.
read -r block_numel block_bytes < <("$python" - "$work/base/model.safetensors" <<'EOF'
import json, math, struct, sys
with open(sys.argv[1], "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
block = [v for k, v in header.items() if k.startswith("model.layers.0.")]
print(sum(math.prod(v["shape"]) for v in block), sum(v["data_offsets"][1] - v["data_offsets"][0] for v in block))
EOF
)
blocks_dtype=$((block_bytes * (experts + 1)))
blocks_f32=$((block_numel * 4 * (experts + 1)))

# phase NAME LOG: the seconds of phase NAME in catmerge's run line ([open A, features B, ..., write E]).
phase() { grep -oE '\[open [^]]*\]' "$2" | grep -oE "$1 [^],]+" | head -1 | cut -d' ' -f2; }
gb3() { awk -v b="$1" 'BEGIN {printf "%.3f", b / 1e9}'; }

rows=()
for ranks in ${BENCH_RANKS:-1 2}; do
  log=$work/cat-$backend-${ranks}r.log
  rm -f "$work/cat-$backend-${ranks}r.h5" "$log".rank*
  warm_cache "$work"/base/* "$work"/expert*/* "$work/tokens.h5"
  # Each rank under its own /usr/bin/time: LOG.rank<R> holds that rank's peak RSS in KB.
  # shellcheck disable=SC2016
  timed "$log" mpirun --oversubscribe -np "$ranks" \
    bash -c 'exec /usr/bin/time -f %M -o "$0.rank${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-0}}" "$@"' "$log" \
    "$binary" run "$work/cat.yaml" --set runtime.backend="$backend" --set runtime.threads="$threads" \
    --set output.path="$work/cat-$backend-${ranks}r.h5"
  echo "== $ranks rank(s): mpirun --oversubscribe -np $ranks catmerge run cat.yaml (runtime.threads $threads)"
  cat "$log"
  features=$(phase features "$log") merge=$(phase merge "$log")
  per_block=$(awk -v f="$features" -v m="$merge" -v b="$layers" 'BEGIN {printf "%.3g", (f + m) / b}')
  feat_gb=$(grep -oE 'features [0-9.e+-]+ GB' "$log" | tail -1 | cut -d' ' -f2)
  feat_bytes=$(awk -v g="$feat_gb" 'BEGIN {printf "%.0f", g * 1e9}')
  wall=$(wall_of "$log")
  for ((r = 0; r < ranks; r++)); do
    rss=$(awk '/^[0-9]+$/ {printf "%.0f", $1 * 1024}' "$log.rank$r")
    if ((ranks > 1)); then
      cm_rss=$(grep -E "^  rank $r: " "$log" | grep -oE 'peak RSS [0-9.]+' | cut -d' ' -f3)
    else
      cm_rss=$(grep -oE 'peak RSS [0-9.]+ GB \(largest rank\)' "$log" | cut -d' ' -f3)
    fi
    rows+=("$(printf '%5d %8s %9s %9s %9s %6d %9s %9s %10s %11s %10s' "$ranks" "$wall" "$features" "$merge" \
      "$per_block" "$r" "$(gb3 "$rss")" "$cm_rss" "$feat_gb" "$(ratio "$rss" $((blocks_dtype + feat_bytes)))" \
      "$(ratio "$rss" $((blocks_f32 + feat_bytes)))")")
  done
done
echo
echo "LLaMA-7B-shaped CAT: hidden $hidden, MLP $mlp, $heads heads, $kv_heads KV heads, vocab $vocab, $layers blocks," \
  "$experts experts, $exemplars x $seq tokens per task; backend $backend, runtime.threads $threads per rank, $(nproc) cores"
echo "checkpoints $(gb "$bytes") GB ($bytes bytes); one block: $block_numel values, $block_bytes bytes;" \
  "K + 1 = $((experts + 1)) blocks: $blocks_dtype bytes in the checkpoint dtype, $blocks_f32 bytes in float32"
echo "per_block_s = (features + merge) / $layers blocks (rank 0's phases); feat_GB: catmerge's (rank 0's store);" \
  "ratios: rank's peak RSS / (K + 1 blocks + feat bytes), blocks in the checkpoint dtype / in float32"
printf '%5s %8s %9s %9s %9s %6s %9s %9s %10s %11s %10s\n' ranks wall_s features merge per_block rank rss_GB \
  cm_rss_GB feat_GB /dtype+feat /f32+feat
printf '%s\n' "${rows[@]}"
