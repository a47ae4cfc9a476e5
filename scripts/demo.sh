#!/usr/bin/env bash
# The main command: installs, builds and merges the embedded default (configs/default.yaml: the committed
# CLIP-ViT fixture experts merged with CAT), then lists the merged file.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
mkdir -p out
build/catmerge run configs/default.yaml "$@"
build/catmerge inspect out/default-cat.h5
