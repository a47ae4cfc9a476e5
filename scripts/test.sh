#!/usr/bin/env bash
# The test command: installs, builds and runs every test (unit, end-to-end against the Python
# reference's committed outputs, bad-input checks).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 900
