#!/usr/bin/env bash
# slurm-up.sh RUN_FOLDER: starts a private single-node Slurm cluster on localhost (munged, slurmctld,
# slurmd), everything under RUN_FOLDER (configuration, munge key and socket, state, spool, logs, pid
# files), and waits until `sinfo` shows the node idle. Silent on success. Then:
#   . RUN_FOLDER/env.sh      # exports SLURM_CONF (and the Open MPI settings jobs need as root)
#   sbatch / srun / squeue ...
# Always starts from a clean cluster: a cluster already running in RUN_FOLDER is stopped first (its
# jobs are lost). On any failure it prints the log tails, stops what it started, and exits 1.
# Environment (all optional):
#   SLURM_TEST_CTLD_PORT (16817), SLURM_TEST_SLURMD_PORT (16818)  ports on 127.0.0.1
#   SLURM_TEST_UP_TIMEOUT (60)  seconds to wait for the node to become idle
#   SLURM_TEST_CPUS             CPUs to advertise instead of the real count (default: `slurmd -C`)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -eq 1 ]] || { echo "usage: $0 RUN_FOLDER" >&2; exit 2; }
for c in munged munge slurmctld slurmd sinfo scontrol; do
  command -v "$c" >/dev/null || { echo "slurm-up: $c not found; run scripts/install-slurm.sh" >&2; exit 1; }
done
[[ $(id -u) -eq 0 ]] || { echo "slurm-up: must run as root (SlurmUser=root)" >&2; exit 1; }
[[ $1 != *[[:space:]]* ]] || { echo "slurm-up: the run folder's path must not hold spaces: $1" >&2; exit 2; }
mkdir -p "$1"
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"
slurm_layout "$(cd "$1" && pwd -P)"
ctld_port=${SLURM_TEST_CTLD_PORT:-16817}
slurmd_port=${SLURM_TEST_SLURMD_PORT:-16818}
timeout_s=${SLURM_TEST_UP_TIMEOUT:-60}

# A previous cluster in this folder (or the leftovers of a failed start) goes first.
"$here/slurm-down.sh" "$run"
for port in "$ctld_port" "$slurmd_port"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "slurm-up: something already listens on 127.0.0.1:$port (another cluster?);" \
      "choose other ports with SLURM_TEST_CTLD_PORT / SLURM_TEST_SLURMD_PORT" >&2
    exit 1
  fi
done

ok=0
fail() {
  echo "slurm-up: $*" >&2
  log_tails
  exit 1
}
trap '((ok)) || "$here/slurm-down.sh" "$run" >&2 || true' EXIT
trap 'exit 130' INT TERM

rm -rf "${run:?}"/{etc,munge,state,spool,run,log,tmp}
mkdir -p "$run"/{etc,munge,state,spool,run,log,tmp}
chmod 0755 "$run/munge"
[[ $base == "$run" ]] || ln -sfn "$run" "$base"

# munge: a fresh key, own socket, pid, log and seed files.
dd if=/dev/urandom of="$run/munge/munge.key" bs=1024 count=1 status=none
chmod 0400 "$run/munge/munge.key"
# The marker goes to the daemons only (not to this shell, whose children slurm-down.sh must not kill).
marked=(env "CATMERGE_SLURM_RUN=$run" "SLURM_CONF=$conf")
"${marked[@]}" munged --force --socket="$munge_socket" --key-file="$run/munge/munge.key" --pid-file="$munge_pid" \
  --log-file="$run/log/munged.log" --seed-file="$run/munge/munged.seed" 2>>"$run/log/munged.log" ||
  fail "munged did not start"
munge -n -S "$munge_socket" 2>/dev/null | unmunge -S "$munge_socket" >/dev/null 2>&1 ||
  fail "munge round trip through $munge_socket failed"

# The node as slurmd sees it: real CPUs, sockets, cores, threads and memory.
node_line=$(env -u SLURM_CONF slurmd -C 2>/dev/null | grep '^NodeName=') || fail "slurmd -C failed"
node=$(sed -E 's/^NodeName=([^ ]+).*/\1/' <<<"$node_line")
overrides=
if [[ -n ${SLURM_TEST_CPUS:-} ]]; then
  # More CPUs than the machine has: slurmd would be refused (state INVAL) without config_overrides.
  node_line="NodeName=$node CPUs=$SLURM_TEST_CPUS $(grep -oE 'RealMemory=[0-9]+' <<<"$node_line")"
  overrides=SlurmdParameters=config_overrides
fi
mpi_default=none
[[ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so || -n $(find /usr/lib -name mpi_pmix.so -print -quit 2>/dev/null) ]] &&
  mpi_default=pmix

: >"$run/etc/plugstack.conf"
# Slurm's PMIx plugin makes a per-step folder spmix_appdir_<uid>_<job>.<step>, by default in /tmp; a
# step killed hard leaves it behind and makes the same job id fail in the next cluster (job ids
# restart at 1), so it goes in the run folder, wiped on every start.
echo "PMIxCliTmpDirBase=$base/tmp" >"$run/etc/mpi.conf"
cat >"$conf" <<CONF
# Private single-node test cluster written by tests/slurm/slurm-up.sh; regenerated on every start.
ClusterName=catmerge-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$munge_socket
StateSaveLocation=$run/state
SlurmdSpoolDir=$base/spool
SlurmctldPidFile=$ctld_pid
SlurmdPidFile=$slurmd_pid
SlurmctldLogFile=$run/log/slurmctld.log
SlurmdLogFile=$run/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$run/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0
EnforcePartLimits=ALL
MpiDefault=$mpi_default
ReturnToService=2
SlurmctldTimeout=10
SlurmdTimeout=10
MessageTimeout=10
TCPTimeout=5
InactiveLimit=0
KillWait=2
MinJobAge=60
Waittime=0
TmpFS=/tmp
MailProg=/bin/true
$overrides
$node_line NodeAddr=127.0.0.1 NodeHostname=$node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF

export SLURM_CONF=$conf
cat >"$run/env.sh" <<ENV
# Source this to use the test cluster in $run (written by tests/slurm/slurm-up.sh).
export SLURM_CONF=$conf
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ENV

"${marked[@]}" slurmctld -f "$conf" >>"$run/log/slurmctld.out" 2>&1 || fail "slurmctld did not start"
"${marked[@]}" slurmd -f "$conf" >>"$run/log/slurmd.out" 2>&1 || fail "slurmd did not start"

# Wait for the node to be idle. The daemons write their pid files just after they fork into the
# background, so a missing pid file only counts as a failure after a few seconds.
start=$SECONDS
deadline=$((SECONDS + timeout_s))
state=
while :; do
  state=$(timeout 5 sinfo -h -N -n "$node" -o '%T' 2>/dev/null || true)
  [[ $state == idle ]] && break
  [[ $state == inval* ]] && fail "slurmctld refused node $node (state $state): its slurm.conf line does not match the machine"
  for f in "$ctld_pid" "$slurmd_pid" "$munge_pid"; do
    if [[ -s $f ]]; then
      alive "$(cat "$f")" || fail "$(basename "$f" .pid) died (node state: ${state:-no answer})"
    elif ((SECONDS - start > 10)); then
      fail "$(basename "$f" .pid) did not write $f within 10s (node state: ${state:-no answer})"
    fi
  done
  ((SECONDS < deadline)) || fail "node $node not idle after ${timeout_s}s (state: ${state:-no answer from slurmctld})"
  sleep 0.25
done
# shellcheck disable=SC2034  # read by the EXIT trap
ok=1
