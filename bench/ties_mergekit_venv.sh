#!/usr/bin/env bash
# ties_mergekit_venv.sh [VENV_DIR]: makes (or reuses) the virtual environment bench/ties_mergekit.sh runs
# mergekit from: `python3 -m venv --system-site-packages` (default VENV_DIR: build/mergekit-venv, git-ignored),
# then mergekit from PyPI, pinned. Where the oracle environment of scripts/setup-oracles.sh exists
# (ORACLE_VENV, default build/oracle-venv), a .pth file puts its site-packages on the path after the venv's own,
# so that pip finds torch, transformers and safetensors there and installs only what mergekit adds (the
# oracle environment is read, never installed into); without it pip installs torch as well (a few GB).
# Idempotent: a second run with the same pin does nothing.
#
#   bench/ties_mergekit_venv.sh && build/mergekit-venv/bin/python -c 'import mergekit'
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${1:-$root/build/mergekit-venv}
oracle=${ORACLE_VENV:-$root/build/oracle-venv}
package=mergekit==0.1.5  # the version bench/setup-venv.sh pins for the other mergekit comparison
stamp=$venv/.catmerge-mergekit
if [[ -x $venv/bin/python && -f $stamp && "$(cat "$stamp")" == "$package" ]]; then
  echo "ties_mergekit_venv: $venv is up to date ($package)"
  exit 0
fi
[[ -x $venv/bin/python ]] || /usr/bin/python3 -m venv --system-site-packages "$venv"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [[ -x $oracle/bin/python ]]; then
  "$oracle/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' >"$site/catmerge-oracle.pth"
  echo "ties_mergekit_venv: torch and transformers from $oracle (read only)"
fi
"$venv/bin/python" -m pip install --quiet "$package"
echo "$package" >"$stamp"
"$venv/bin/python" -c 'import mergekit, torch; print("ties_mergekit_venv: mergekit ready, torch", torch.__version__)'
