#!/usr/bin/env bash
# Installs everything catmerge needs to build and test on Debian 12, from Debian's packages only.
# Idempotent: a second run on a machine that has it all returns quickly.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libopenblas-dev libopenblas0-pthread liblapacke-dev
  libhdf5-dev hdf5-tools
  libyaml-cpp-dev nlohmann-json3-dev libxxhash-dev
  libgtest-dev
  openmpi-bin libopenmpi-dev
  python3-h5py python3-numpy python3-xxhash python3-venv
  gnuplot-nox
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
