#!/usr/bin/env python3
"""Compares two merged models tensor by tensor: catmerge's HDF5 output against another tool's (HDF5, e.g.
bench/torch_cat.py's, a .safetensors file, or an HF directory of safetensors shards, e.g. mergekit's).
Both are read as float32 (bf16 and f16 widened exactly). For every tensor in both it takes
max|a - b| / max|b| (b: the second file) and prints the worst tensor, whether the stored bits are equal
for every tensor, and the tensors found in only one file. Needs only numpy and h5py (/usr/bin/python3).

  bench/compare_outputs.py merged.h5 other.h5|other.safetensors|other_dir [--names PREFIX]
Last line: `compare: max_rel_diff R (TENSOR), bit_identical yes|no, N tensors compared`.
"""
import argparse
import glob
import json
import os
import struct

import h5py
import numpy as np

WIDE = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F64": np.float64}


def widen(raw, bf16):
    """(stored array, is_bf16) -> float32 values."""
    if bf16:
        return (raw.astype(np.uint32) << np.uint32(16)).view(np.float32)
    return raw.astype(np.float32)


def open_h5(path):
    f = h5py.File(path, "r")
    names = [n for n in f.keys() if isinstance(f[n], h5py.Dataset)]

    def get(name):
        d = f[name]
        bf16 = d.attrs.get("dtype", b"")
        bf16 = (bf16.decode() if isinstance(bf16, bytes) else str(bf16)) == "bfloat16"
        raw = d[...]
        return raw, widen(raw, bf16)
    return names, get


def open_safetensors(paths):
    where = {}
    for path in paths:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        header.pop("__metadata__", None)
        for name, h in header.items():
            where[name] = (path, 8 + n, h)

    def get(name):
        path, start, h = where[name]
        lo, hi = h["data_offsets"]
        dtype = WIDE[h["dtype"]]
        raw = np.fromfile(path, dtype=dtype, count=(hi - lo) // np.dtype(dtype).itemsize, offset=start + lo)
        raw = raw.reshape(h["shape"])
        return raw, widen(raw, h["dtype"] == "BF16")
    return list(where), get


def open_any(path):
    if os.path.isdir(path):
        return open_safetensors(sorted(glob.glob(os.path.join(path, "*.safetensors"))))
    if path.endswith(".safetensors"):
        return open_safetensors([path])
    return open_h5(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--names", default="", help="compare only tensors whose names start with this")
    args = ap.parse_args()
    names_a, get_a = open_any(args.a)
    names_b, get_b = open_any(args.b)
    common = [n for n in names_a if n in set(names_b) and n.startswith(args.names)]
    worst, worst_name, identical = 0.0, "-", True
    for name in common:
        raw_a, a = get_a(name)
        raw_b, b = get_b(name)
        if a.shape != b.shape:
            raise SystemExit(f"compare: {name}: shapes {a.shape} and {b.shape}")
        identical = identical and raw_a.dtype == raw_b.dtype and np.array_equal(raw_a.view(np.uint8), raw_b.view(np.uint8))
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        diff = float(np.max(np.abs(a.astype(np.float64) - b))) if b.size else 0.0
        rel = diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf"))
        if rel > worst or worst_name == "-":
            worst, worst_name = rel, name
    only_a = [n for n in names_a if n not in set(names_b) and n.startswith(args.names)]
    only_b = [n for n in names_b if n not in set(names_a) and n.startswith(args.names)]
    for side, only in (("first", only_a), ("second", only_b)):
        if only:
            print(f"compare: {len(only)} tensors only in the {side} file, e.g. {only[0]}")
    print(f"compare: max_rel_diff {worst:.3g} ({worst_name}), bit_identical {'yes' if identical and common else 'no'}, "
          f"{len(common)} tensors compared")


if __name__ == "__main__":
    main()
