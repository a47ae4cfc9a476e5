#!/usr/bin/env bash
# The main command: installs the dependencies, builds catmerge, then runs the zoo demo (scripts/demo.py):
# the committed expert zoo (data/zoo, configs/zoo.yaml: 8 small CLIP-ViT experts) merged with weight
# averaging, task arithmetic, TIES, PCB, RegMean and CAT, each tuned on the validation split from a small
# grid and scored once on the test split, in one `catmerge sweep` job; prints the table and writes out/demo/ (results.md, results.csv,
# grid.csv, accuracy.png, alpha.png). docs/RESULTS.md reads the table.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/build.sh catmerge
python3 scripts/demo.py
echo "demo: total $((SECONDS - start)) s including the build"
