#!/usr/bin/env bash
# Installs what a private single-node Slurm cluster needs on Debian 12 (bookworm), from Debian's
# packages only: slurmctld + slurmd + slurm-client (+ slurm-wlm-basic-plugins, pulled in, which
# holds the mpi/pmix, mpi/pmi2, proctrack/linuxproc and select/cons_tres plugins) and munge.
# Open MPI (openmpi-bin, libopenmpi-dev) and gcc are installed by scripts/install-deps.sh; they are listed here
# too so that tests/slurm/smoke.sh works on a machine that only ran this script.
# Idempotent: when everything is already installed it returns at once, without touching apt.
# The packages' own services are never started (policy-rc.d), and any that got started are stopped:
# tests/slurm/slurm-up.sh runs private daemons with their own configuration.
set -euo pipefail
packages=(slurmctld slurmd slurm-client slurm-wlm-basic-plugins munge openmpi-bin libopenmpi-dev gcc libc6-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "install-slurm: missing ${missing[*]}; run this script as root" >&2
  exit 1
fi
echo "install-slurm: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Keep the packages' postinst scripts from starting the system-wide munge/slurm services.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  # shellcheck disable=SC2034  # read by the EXIT trap
  made_policy=1
fi
trap 'if ((made_policy)); then rm -f "$policy"; fi' EXIT
# Only refresh the package lists when apt cannot find a candidate for something that is missing.
need_update=0
for p in "${missing[@]}"; do
  cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
  [[ -n $cand && $cand != "(none)" ]] || need_update=1
done
((need_update)) && apt-get update -qq
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/install-slurm.$$.log 2>&1; then
  # Stale lists (a mirror that moved on) fail at download time: refresh once and retry.
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/install-slurm.$$.log 2>&1 ||
    { tail -n 30 /tmp/install-slurm.$$.log >&2; rm -f /tmp/install-slurm.$$.log; exit 1; }
fi
rm -f /tmp/install-slurm.$$.log
