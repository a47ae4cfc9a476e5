# shellcheck shell=bash
# Shared by slurm-up.sh and slurm-down.sh (sourced, not run). Sets the layout of a run folder.
# Every daemon is started with CATMERGE_SLURM_RUN=<run folder> in its environment, which slurmstepd
# inherits from slurmd: that marker is how slurm-down.sh finds everything this cluster started,
# even when a pid file is missing (a daemon that died or was killed halfway).

# slurm_layout RUN: sets run (absolute), base and the file names. Unix socket paths are limited to 108
# bytes, so the folders where sockets are made (munge/, spool/, tmp/) are named in the configuration
# through base: the run folder itself, or, when its path is long, a short /tmp symlink to it.
# shellcheck disable=SC2034  # the names are used by the scripts that source this file
slurm_layout() {
  run=$1
  local hash
  hash=$(printf '%s' "$run" | md5sum | cut -c1-10)
  link=/tmp/catmerge-slurm-$hash
  if ((${#run} > 60)); then base=$link; else base=$run; fi
  conf=$run/etc/slurm.conf
  munge_socket=$base/munge/munge.socket
  munge_pid=$run/run/munged.pid
  ctld_pid=$run/run/slurmctld.pid
  slurmd_pid=$run/run/slurmd.pid
  logs=("$run/log/munged.log" "$run/log/slurmctld.log" "$run/log/slurmctld.out" "$run/log/slurmd.log"
    "$run/log/slurmd.out")
}

# proc_stat PID: sets st (state letter) and ppid from /proc/PID/stat, whose command name may hold
# spaces ("slurmstepd: [1.0]"). Builtins only: the scans below must stay fast on busy machines.
proc_stat() {
  local line
  { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
  line=${line##*) }
  st=${line%% *}
  line=${line#* }
  ppid=${line%% *}
}

# alive PID: running (a zombie waiting for its parent or init to reap it counts as gone).
alive() {
  local st ppid
  [[ -n $1 ]] && kill -0 "$1" 2>/dev/null && proc_stat "$1" && [[ $st != Z ]]
}

# proc_env PID: sets env to PID's environment as "\nNAME=value\n...\n"; false if unreadable.
proc_env() {
  local -a vars
  { mapfile -d '' -t vars <"/proc/$1/environ"; } 2>/dev/null || return 1
  ((${#vars[@]})) || return 1
  printf -v env '\n%s' "${vars[@]}"
  env+=$'\n'
}

# has_marker PID: true when process PID was started by this run folder's slurm-up.sh.
has_marker() {
  local env
  proc_env "$1" && [[ $env == *$'\n'"CATMERGE_SLURM_RUN=$run"$'\n'* ]]
}

# cluster_pids: processes of this cluster: marked daemons and slurmstepd, and job tasks (processes
# whose environment has this cluster's SLURM_CONF and a SLURM_JOB_ID), never this shell, its
# ancestors (slurm-down.sh may itself run inside a job) or their short-lived children.
cluster_pids() {
  local keep=" " p=$BASHPID env d st ppid
  while [[ -n $p && $p -gt 1 ]]; do
    keep+="$p "
    proc_stat "$p" || break
    p=$ppid
  done
  keep+="$$ "
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [[ $keep == *" $p "* ]] && continue
    proc_env "$p" || continue
    if [[ $env == *$'\n'"CATMERGE_SLURM_RUN=$run"$'\n'* ]] ||
       [[ $env == *$'\n'"SLURM_CONF=$conf"$'\n'* && $env == *$'\n'SLURM_JOB_ID=* ]]; then
      proc_stat "$p" || continue
      [[ $st == Z || $keep == *" $ppid "* ]] && continue
      echo "$p"
    fi
  done
}

# shellcheck disable=SC2120  # the extra files are optional
log_tails() {
  local f
  for f in "${logs[@]}" "$@"; do
    [[ -s $f ]] || continue
    echo "---- last lines of $f ----" >&2
    tail -n "${SLURM_TEST_LOG_LINES:-25}" "$f" >&2
  done
}

# wait_job ID OUT TIMEOUT: waits (polling scontrol every 0.25 s) until job ID (or every task of an array
# job ID) has ended; returns 0 when all COMPLETED. Otherwise prints the job, OUT (its output file or
# glob) and the daemons' log tails, cancels it if it is still running, and returns 1. Needs slurm_layout.
wait_job() {
  local id=$1 out=$2 timeout_s=$3 states deadline=$((SECONDS + $3))
  while :; do
    states=$(timeout 5 scontrol show job "$id" -o 2>/dev/null | grep -oE 'JobState=[A-Z_]+' | cut -d= -f2 | sort -u | tr '\n' ' ' || true)
    case " $states" in
      *" PENDING "* | *" CONFIGURING "* | *" RUNNING "* | *" COMPLETING "* | " ") ;;
      " COMPLETED ") return 0 ;;
      *) echo "slurm: job $id ended ${states% }" >&2; break ;;
    esac
    if ((SECONDS >= deadline)); then
      echo "slurm: job $id not finished after ${timeout_s}s (state: ${states:-unknown})" >&2
      timeout 5 scancel "$id" || true
      break
    fi
    sleep 0.25
  done
  echo "---- job $id ----" >&2
  timeout 5 scontrol show job "$id" >&2 || true
  local f
  for f in $out; do
    echo "---- $f ----" >&2
    cat "$f" >&2 2>/dev/null || true
  done
  log_tails
  return 1
}
