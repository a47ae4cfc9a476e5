#!/usr/bin/env bash
# test_sbatch.sh CATMERGE [RUN_FOLDER]: the slurm/ templates on a real single-node Slurm (slurmctld, slurmd,
# munge from Debian on localhost, brought up and torn down here). Submits slurm/merge-1node.sbatch with 2
# tasks on the fixture case hf_cat and slurm/merge-array.sbatch with two lines (hf_ties, hf_pcb), waits,
# and checks each output against the reference's expected tensors with h5py (max relative error 1e-5).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
binary=$(realpath "$1")
run=${2:-$root/build/slurm-catmerge}
python=${CATMERGE_TEST_PYTHON:-/usr/bin/python3}

"$root/scripts/install-slurm.sh"
mkdir -p "$run"
run=$(cd "$run" && pwd -P)
# shellcheck disable=SC2154  # rc is set inside the trap
trap 'rc=$?; "$here/slurm-down.sh" "$run" || rc=1; exit $rc' EXIT
trap 'exit 130' INT TERM
"$here/slurm-up.sh" "$run"
. "$run/env.sh"
. "$here/common.sh"
slurm_layout "$run"

work=$run/catmerge
rm -rf "$work" && mkdir -p "$work"
for c in hf_cat hf_ties hf_pcb; do
  PYTHONPATH=$root/tests/mpi "$python" -c "import common, sys; c = {x['name']: x for x in common.cases()}['$c']; \
print(common.write_case_config(c, '$work', '$work/$c.h5'))" >/dev/null
done
# Two tasks on a node without GPUs: command-line options override the template's #SBATCH lines.
opts=(--parsable --chdir="$work" --ntasks-per-node=2 --gpus-per-node=0 --cpus-per-task=1)
one=$(CONFIG=$work/hf_cat.yaml CATMERGE=$binary sbatch "${opts[@]}" --output="$work/one-%j.out" \
  "$root/slurm/merge-1node.sbatch")
printf '%s\n' "# fixture sweep" "$work/hf_ties.yaml" "" "$work/hf_pcb.yaml --set runtime.threads=1" >"$work/sweep.txt"
array=$(SWEEP=$work/sweep.txt CATMERGE=$binary sbatch "${opts[@]}" --array=0-1 --output="$work/array-%A_%a.out" \
  "$root/slurm/merge-array.sbatch")
wait_job "$one" "$work/one-*.out" 120
wait_job "$array" "$work/array-*.out" 120

PYTHONPATH=$root/tests/mpi "$python" - "$work" <<'PY'
import os, sys
import common
work = sys.argv[1]
by_name = {c["name"]: c for c in common.cases()}
failed = 0
for name in ("hf_cat", "hf_ties", "hf_pcb"):
    err = common.max_relative_error(common.tensors(os.path.join(work, name + ".h5")),
                                    common.tensors(os.path.join(common.FIXTURES, by_name[name]["expected"])))
    ok = err <= 1e-5
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {name} through Slurm (2 tasks): max relative error {err:.2e}")
print(f"{3 - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
