#!/usr/bin/env bash
# slurm-down.sh RUN_FOLDER: stops the cluster slurm-up.sh started in RUN_FOLDER: cancels its jobs,
# stops slurmd, slurmctld and munged (pid files first, then anything else carrying this run folder's
# marker: slurmstepd, daemons whose pid file is missing), SIGKILL after a bounded wait. Works whatever
# state slurm-up left (nothing started, half started, daemons killed by hand) and is silent and
# successful when there is nothing to stop. Keeps the logs; removes sockets and pid files.
# Exits 1 only when some process would not die.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -eq 1 ]] || { echo "usage: $0 RUN_FOLDER" >&2; exit 2; }
[[ -d $1 ]] || exit 0
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"
slurm_layout "$(cd "$1" && pwd -P)"

pid_of() { [[ -s $1 ]] && cat "$1" 2>/dev/null; }

# Jobs first, while the controller may still answer (at most about 10 s in all), so that slurmstepd
# ends its tasks itself.
ctld=$(pid_of "$ctld_pid")
if alive "$ctld" && has_marker "$ctld" && [[ -f $conf ]]; then
  export SLURM_CONF=$conf
  deadline=$((SECONDS + 8))
  jobs=$(timeout 3 squeue -h -o %i 2>/dev/null)
  if [[ -n $jobs ]]; then
    # shellcheck disable=SC2086
    timeout 3 scancel $jobs >/dev/null 2>&1
    while ((SECONDS < deadline)) && [[ -n $(timeout 2 squeue -h -t R,CG -o %i 2>/dev/null) ]]; do
      sleep 0.25
    done
  fi
fi

# Then the daemons: slurmd, slurmctld, munged (TERM), then any other process of this cluster.
for f in "$slurmd_pid" "$ctld_pid" "$munge_pid"; do
  p=$(pid_of "$f")
  alive "$p" && has_marker "$p" && kill -TERM "$p" 2>/dev/null
done
for _ in $(seq 20); do
  alive "$(pid_of "$slurmd_pid")" || alive "$(pid_of "$ctld_pid")" || alive "$(pid_of "$munge_pid")" || break
  sleep 0.25
done
left=$(cluster_pids)
if [[ -n $left ]]; then
  # shellcheck disable=SC2086
  kill -TERM $left 2>/dev/null
  for _ in $(seq 20); do
    left=$(cluster_pids)
    [[ -z $left ]] && break
    sleep 0.25
  done
fi
if [[ -n $left ]]; then
  # shellcheck disable=SC2086
  kill -KILL $left 2>/dev/null
  for _ in $(seq 20); do
    left=$(cluster_pids)
    [[ -z $left ]] && break
    sleep 0.25
  done
fi
rm -f "$slurmd_pid" "$ctld_pid" "$munge_pid" "$munge_socket" "$munge_socket.lock"
[[ $base == "$run" ]] || rm -f "$base"
if [[ -n $left ]]; then
  echo "slurm-down: processes of $run still alive after SIGKILL: $left" >&2
  ps -o pid,ppid,stat,args -p "${left// /,}" >&2 2>/dev/null
  exit 1
fi
exit 0
