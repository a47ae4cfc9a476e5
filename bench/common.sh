# common.sh: helpers sourced by the bench/*.sh scripts (not run on its own). Defines bench_root, python
# (/usr/bin/python3, or CATMERGE_TEST_PYTHON), and the functions below.
# shellcheck shell=bash
bench_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${CATMERGE_TEST_PYTHON:-/usr/bin/python3}

# ensure_set GENERATOR DIR ARGS...: runs tools/GENERATOR DIR ARGS unless DIR already holds a set that the
# same command made (recorded in DIR/.generated-with). A stale set made by these scripts (or by an older
# version: merge.yaml or task_arithmetic.yaml there) is replaced; any other non-empty DIR is refused.
ensure_set() {
  local generator=$1 dir=$2
  shift 2
  local want="$generator $*"
  if [[ -f $dir/.generated-with && "$(cat "$dir/.generated-with")" == "$want" ]]; then
    echo "bench: using the set in $dir ($want)"
    return
  fi
  if [[ -d $dir && ! -f $dir/.generated-with && ! -f $dir/merge.yaml && ! -f $dir/task_arithmetic.yaml &&
        -n "$(ls -A "$dir")" ]]; then
    echo "bench: $dir is not empty and was not made by these scripts; choose another work directory" >&2
    exit 1
  fi
  rm -rf "$dir"/base "$dir"/expert[0-9]* "$dir/.generated-with"
  mkdir -p "$dir"
  echo "bench: generating $want"
  local start=$SECONDS
  "$python" "$bench_root/tools/$generator" "$dir" "$@"
  echo "bench: generated in $((SECONDS - start)) s"
  echo "$want" >"$dir/.generated-with"
}

# input_bytes DIR K: bytes of the checkpoints of a generated set (base and expert0..K-1 safetensors).
input_bytes() {
  local dir=$1 k=$2 dirs=("$1/base")
  for ((i = 0; i < k; i++)); do dirs+=("$dir/expert$i"); done
  find "${dirs[@]}" -name '*.safetensors' -printf '%s\n' | awk '{s += $1} END {printf "%.0f", s}'
}

# warm_cache FILES...: reads every file once so that the timed runs read from the page cache.
warm_cache() {
  cat "$@" >/dev/null
}

# timed LOG CMD...: runs CMD under /usr/bin/time -v with stdout and stderr in LOG and the report in
# LOG.time; on failure prints the end of LOG and exits.
timed() {
  local log=$1
  shift
  if ! /usr/bin/time -v -o "$log.time" "$@" >"$log" 2>&1; then
    echo "bench: failed: $*" >&2
    tail -20 "$log" >&2
    exit 1
  fi
}

# wall_of LOG / rss_of LOG: wall seconds and peak RSS bytes from timed's LOG.time.
wall_of() {
  awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i];
    printf "%.2f", s}' "$1.time"
}
rss_of() {
  awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 * 1024}' "$1.time"
}

# gb BYTES: bytes as GB (10^9) with 2 decimals. ratio A B: A / B with 2 decimals.
gb() { awk -v b="$1" 'BEGIN {printf "%.2f", b / 1e9}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "-"}'; }
