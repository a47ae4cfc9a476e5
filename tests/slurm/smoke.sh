#!/usr/bin/env bash
# smoke.sh [RUN_FOLDER]: proves the private Slurm cluster works the way catmerge uses it. Installs
# Slurm and munge if missing (scripts/install-slurm.sh), starts the cluster (slurm-up.sh), submits a
# batch job that launches a 2-task MPI program, checks that ranks 0 and 1 both report a world of size
# 2 (and an MPI_Allreduce over it), and always stops the cluster (slurm-down.sh, from a trap).
# RUN_FOLDER defaults to build/slurm-test. Prints one line on success; on failure, the job's output,
# its state and the daemons' log tails, and exits 1.
# Environment (optional): SLURM_SMOKE_LAUNCH (default "srun --mpi=pmix"): the launcher the job uses,
#   e.g. "mpirun -np 2" or "srun --mpi=pmi2" to reproduce the README's table;
#   SLURM_SMOKE_TIMEOUT (120): seconds the job may take from submission to end.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
run=${1:-$root/build/slurm-test}
launch=${SLURM_SMOKE_LAUNCH:-srun --mpi=pmix}
timeout_s=${SLURM_SMOKE_TIMEOUT:-120}

"$root/scripts/install-slurm.sh"
mkdir -p "$run"
run=$(cd "$run" && pwd -P)
mpicc -O1 -o "$run/mpi-hello" "$here/mpi_hello.c"

# shellcheck disable=SC2154  # rc is set inside the trap
trap 'rc=$?; "$here/slurm-down.sh" "$run" || rc=1; exit $rc' EXIT
trap 'exit 130' INT TERM
"$here/slurm-up.sh" "$run"
. "$run/env.sh"

cat >"$run/smoke-job.sh" <<JOB
#!/bin/bash
#SBATCH --job-name=catmerge-smoke
#SBATCH --ntasks=2
#SBATCH --time=2
$launch ./mpi-hello
JOB
rm -f "$run"/smoke-*.out
id=$(timeout 10 sbatch --parsable --chdir="$run" --output="$run/smoke-%j.out" "$run/smoke-job.sh")
out=$run/smoke-$id.out

. "$here/common.sh"
slurm_layout "$run"
fail() {
  echo "slurm smoke: $*" >&2
  cat "$out" >&2 2>/dev/null || true
  exit 1
}
wait_job "$id" "$out" "$timeout_s" || exit 1

for r in 0 1; do
  grep -qE "^rank $r of 2 on .* sum=2\$" "$out" || fail "no 'rank $r of 2 ... sum=2' line in $out"
done
[[ $(grep -c '^rank ' "$out") -eq 2 ]] || fail "expected exactly 2 rank lines in $out"
echo "slurm smoke: OK ($launch: ranks 0 and 1 of a world of size 2, job $id)"
