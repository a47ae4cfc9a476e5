#!/usr/bin/env bash
# Installs the dependencies (Debian packages) and builds into build/: every target, or the ones named
# (scripts/demo.sh builds only `catmerge`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# CATMERGE_TOOLS_PYTHON (scripts/test.sh sets it): the Python of the tools' and oracle tests.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  ${CATMERGE_TOOLS_PYTHON:+-DCATMERGE_TOOLS_PYTHON="$CATMERGE_TOOLS_PYTHON"} >/dev/null
cmake --build build -j"$(nproc)" ${1:+--target "$@"}
