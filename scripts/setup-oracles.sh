#!/usr/bin/env bash
# setup-oracles.sh [VENV_DIR]: the Python environment of the tests that check catmerge against independent
# readers and HuggingFace's own models: torch (CPU use only), transformers, safetensors and peft from PyPI, on top
# of Debian's numpy and h5py (--system-site-packages). Default VENV_DIR: build/oracle-venv (git-ignored).
# Idempotent: a second run with the same package list does nothing. catmerge itself never uses it; a test
# that needs a package it cannot import is skipped and says why. PyPI's torch for x86-64 Linux brings CUDA
# libraries, a few GB to download (about a minute on the CI machines).
#
#   scripts/setup-oracles.sh && build/oracle-venv/bin/python -c 'import torch, transformers, safetensors'
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${1:-$root/build/oracle-venv}
# The versions the tests were written against; change together.
packages=(torch==2.15.0 transformers==5.24.0 safetensors==0.8.0 peft==0.21.2)
stamp=$venv/.catmerge-oracle-packages
if [[ -x $venv/bin/python && -f $stamp && "$(cat "$stamp")" == "${packages[*]}" ]]; then
  echo "setup-oracles: $venv is up to date"
  exit 0
fi
[[ -x $venv/bin/python ]] || /usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
echo "${packages[*]}" >"$stamp"
"$venv/bin/python" -c 'import torch, transformers, safetensors, h5py
print("setup-oracles: torch", torch.__version__, "transformers", transformers.__version__, "safetensors", safetensors.__version__)'
