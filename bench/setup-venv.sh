#!/usr/bin/env bash
# setup-venv.sh [VENV_DIR]: creates (or reuses) the Python virtual environment that only the comparison
# benchmarks use (bench/torch_cat.py, mergekit in bench/elementwise_vs_mergekit.sh): torch on the CPU,
# safetensors, transformers, mergekit and h5py, from PyPI. Default VENV_DIR: build/bench-venv (git-ignored).
# Idempotent: a second run with the same package list does nothing. Nothing in catmerge itself, its
# build or its tests uses this environment.
#
#   bench/setup-venv.sh && build/bench-venv/bin/python -c 'import torch, mergekit'
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${1:-$root/build/bench-venv}
# The versions these benchmarks were tried with; change together (mergekit pins its own ranges).
packages=(torch==2.15.0 safetensors==0.8.0 transformers==5.24.0 mergekit==0.1.5 h5py==3.16.0)
stamp=$venv/.catmerge-bench-packages
if [[ -x $venv/bin/python && -f $stamp && "$(cat "$stamp")" == "${packages[*]}" ]]; then
  echo "setup-venv: $venv is up to date"
  exit 0
fi
[[ -x $venv/bin/python ]] || /usr/bin/python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "${packages[@]}"
echo "${packages[*]}" >"$stamp"
"$venv/bin/python" -c 'import torch, safetensors, transformers, mergekit, h5py; print("setup-venv: torch", torch.__version__,
"transformers", transformers.__version__)'
