#!/usr/bin/env python3
"""Writes the small committed fixtures of catmerge's I/O tests under data/fixtures/io/.

The expected values come from numpy's and torch's own conversions, never from catmerge's code:
  dtypes.safetensors      F32, F16, BF16 copies of SOURCE, plus a 2-D, a scalar, an empty, an I64 and a BOOL tensor
  dtypes_expected.h5      what each float tensor must read as (float64), and what float32 values must round
                          to (round_f16: numpy float16; round_bf16: torch bfloat16 bits as uint16 marked
                          dtype="bfloat16"; both round to nearest even)
  sharded/                a HuggingFace directory with config.json and a 2-shard model.safetensors.index.json
  single/                 model.safetensors with open_clip_config.json (the config fallback)
  catmerge_style.h5       what catmerge's writer produces, written by h5py: f32, f16, bf16-as-uint16 datasets
  exemplars.h5            pixel_values groups for the exemplar reader, good and bad
  tokens.h5               input_ids / attention_mask groups and uint8 images for the exemplar reader, good and bad
  content_hash.txt        each file's content hash by content_hash.py (Python's xxhash), for the hash test
Run from anywhere: python3 tools/reference/make_io_fixtures.py. The output is deterministic.
"""
import json
import os

import h5py
import numpy as np
import torch
from safetensors.torch import save_file

from content_hash import write_fixture_list

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "fixtures", "io")

# Values chosen to hit every branch of the 16-bit conversions: zeros of both signs, normals, the extremes
# of half (65504, 2^-14, 2^-24), half subnormals, values that overflow half (but not bfloat16), bfloat16
# subnormals, infinities, and decimals that need rounding. No NaN: NaN payloads are not portable.
SOURCE = np.array([
    0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.140625, -2.71875, 0.1, -0.3, 1.0 / 3.0,
    65504.0, -65504.0, 65519.0, 70000.0, -1e6, 3.0e38,
    2.0 ** -14, 2.0 ** -24, -(2.0 ** -24), 3 * 2.0 ** -24, 2.0 ** -20 + 2.0 ** -24, 1e-6, -5e-8,
    1.17549435e-38, 2.0 ** -130, -(2.0 ** -133), 1e-40,
    float("inf"), float("-inf"), 123.456, -7.875, 1024.5, 2049.0, 4097.0,
], dtype=np.float64)


def write_dtypes():
    f32 = torch.tensor(SOURCE, dtype=torch.float32)
    tensors = {
        "f32": f32,
        "f16": torch.tensor(SOURCE).to(torch.float16),
        "bf16": torch.tensor(SOURCE).to(torch.bfloat16),
        "f16_2d": torch.arange(12, dtype=torch.float16).reshape(3, 4) * 0.25 - 1,
        "scalar": torch.tensor(42.5, dtype=torch.float32),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
        "position_ids": torch.arange(6, dtype=torch.int64).reshape(1, 6),
        "mask": torch.tensor([True, False, True]),
    }
    save_file(tensors, os.path.join(OUT, "dtypes.safetensors"), metadata={"format": "pt"})

    with h5py.File(os.path.join(OUT, "dtypes_expected.h5"), "w") as h:
        for name, t in tensors.items():
            if t.is_floating_point():
                h.create_dataset(name, data=t.to(torch.float64).numpy(), track_times=False)
        # float32 -> 16-bit rounding: every exact midpoint between adjacent finite halves (and between
        # adjacent bfloat16 values near 1), one float32 ulp either side of each, and random float32 values.
        halves = np.arange(0, 0x7c00, dtype=np.uint16).view(np.float16).astype(np.float64)
        mids = (halves[:-1] + halves[1:]) / 2
        mids = mids[::37]  # a spread-out sample keeps the file small; the C++ test checks all of them anyway
        bf = np.arange(0x3f00, 0x4000, dtype=np.uint32)
        bf_vals = (bf << 16).view(np.float32).astype(np.float64)
        bf_mids = (bf_vals[:-1] + bf_vals[1:]) / 2
        base = np.concatenate([mids, bf_mids]).astype(np.float32)
        assert np.all(base.astype(np.float64) == np.concatenate([mids, bf_mids])), "midpoints must be exact in float32"
        up = np.nextafter(base, np.float32(np.inf))
        down = np.nextafter(base, np.float32(-np.inf))
        rng = np.random.default_rng(20240531)
        random = rng.uniform(-70000, 70000, 300).astype(np.float32)
        small = (rng.uniform(-1, 1, 300) * 2.0 ** rng.integers(-30, -10, 300)).astype(np.float32)
        x = np.concatenate([base, -base, up, down, random, small, SOURCE.astype(np.float32)])
        h.create_dataset("round_source_f32", data=x, track_times=False)
        with np.errstate(over="ignore"):  # values beyond half's range are meant to become inf
            h.create_dataset("round_f16", data=x.astype(np.float16), track_times=False)
        bits = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        h.create_dataset("round_bf16", data=bits, track_times=False).attrs["dtype"] = "bfloat16"


def write_sharded():
    d = os.path.join(OUT, "sharded")
    os.makedirs(d, exist_ok=True)
    shard1 = {
        "embeddings.position_ids": torch.arange(4, dtype=torch.int64).reshape(1, 4),
        "layer0.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "layer0.bias": torch.tensor([0.5, -0.5], dtype=torch.float32),
    }
    shard2 = {
        "layer1.weight": (torch.arange(4, dtype=torch.float32) - 1.5).to(torch.bfloat16).reshape(2, 2),
        "layer1.bias": torch.tensor([1.0, 2.0], dtype=torch.float16),
    }
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    for name, tensors in zip(names, [shard1, shard2]):
        save_file(tensors, os.path.join(d, name), metadata={"format": "pt"})
    weight_map = {k: names[0] for k in shard1}
    weight_map.update({k: names[1] for k in shard2})
    total = sum(t.numel() * t.element_size() for t in list(shard1.values()) + list(shard2.values()))
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write('{"model_type": "toy", "hidden_size": 2}\n')


def write_single():
    d = os.path.join(OUT, "single")
    os.makedirs(d, exist_ok=True)
    save_file({"visual.proj": torch.ones(2, 2)}, os.path.join(d, "model.safetensors"))
    with open(os.path.join(d, "open_clip_config.json"), "w") as f:
        f.write('{"model_cfg": {"embed_dim": 2}}\n')


def write_catmerge_style():
    with h5py.File(os.path.join(OUT, "catmerge_style.h5"), "w") as h:
        h.attrs["config_json"] = '{"model_type": "toy"}'
        h.create_dataset("a.weight", data=np.array([[1, -2, 0.5], [0.25, 3, -4]], np.float32), track_times=False)
        h.create_dataset("b.weight", data=np.array([1.5, -0.125, 65504, 2.0 ** -24], np.float16), track_times=False)
        # bfloat16 of 1.0, -2.5, 2^-128 (subnormal); h5py writes the str attribute as variable-length UTF-8.
        c = h.create_dataset("c.bias", data=np.array([0x3F80, 0xC020, 0x0020], np.uint16), track_times=False)
        c.attrs["dtype"] = "bfloat16"
        # The same with a fixed-length attribute, as catmerge's writer stores it.
        d = h.create_dataset("d.bias", data=np.array([0x4040], np.uint16), track_times=False)
        d.attrs["dtype"] = np.bytes_("bfloat16")
        h.create_dataset("plain_u16", data=np.array([1, 2], np.uint16), track_times=False)
        h.create_dataset("steps", data=np.array([1, 2, 3], np.int32), track_times=False)
        h.create_dataset("fisher64", data=np.array([0.5, 1e300], np.float64), track_times=False)
        h.create_group("meta")


def write_exemplars():
    with h5py.File(os.path.join(OUT, "exemplars.h5"), "w") as h:
        a = (np.arange(3 * 2 * 4 * 4, dtype=np.float32) * 0.25 - 8).reshape(3, 2, 4, 4)  # exact in float32
        h.create_dataset("task_a/pixel_values", data=a, track_times=False)
        b = (np.arange(2 * 2 * 4 * 4, dtype=np.float64) * 0.5).reshape(2, 2, 4, 4)
        h.create_dataset("task_b/pixel_values", data=b, track_times=False)
        h.create_dataset("rank3/pixel_values", data=np.zeros((2, 4, 4), np.float32), track_times=False)
        bad = np.zeros((2, 1, 2, 2), np.float32)
        bad[1, 0, 1, 0] = np.nan
        h.create_dataset("nan/pixel_values", data=bad, track_times=False)
        inf = np.zeros((1, 1, 2, 2), np.float64)
        inf[0, 0, 0, 1] = 1e300  # finite in float64, infinite in float32
        h.create_dataset("inf/pixel_values", data=inf, track_times=False)
        h.create_dataset("ints/pixel_values", data=np.zeros((1, 1, 2, 2), np.int32), track_times=False)
        h.create_group("empty_group")


def write_tokens():
    with h5py.File(os.path.join(OUT, "tokens.h5"), "w") as h:
        h.create_dataset("plain/input_ids", data=np.arange(15, dtype=np.int64).reshape(3, 5), track_times=False)
        # int32 ids and a boolean mask (h5py stores it as an enum of integers); row 0 left-padded by 2.
        h.create_dataset("masked/input_ids", data=np.array([[0, 0, 7, 8], [5, 6, 7, 8]], np.int32), track_times=False)
        h.create_dataset("masked/attention_mask", data=np.array([[0, 0, 1, 1], [1, 1, 1, 1]], bool), track_times=False)
        h.create_dataset("u8mask/input_ids", data=np.array([[1, 2, 3]], np.int64), track_times=False)
        h.create_dataset("u8mask/attention_mask", data=np.array([[1, 1, 0]], np.uint8), track_times=False)
        h.create_dataset("negative/input_ids", data=np.array([[1, -1]], np.int64), track_times=False)
        h.create_dataset("mask_two/input_ids", data=np.ones((1, 2), np.int64), track_times=False)
        h.create_dataset("mask_two/attention_mask", data=np.array([[1, 2]], np.int64), track_times=False)
        h.create_dataset("mask_shape/input_ids", data=np.ones((2, 4), np.int64), track_times=False)
        h.create_dataset("mask_shape/attention_mask", data=np.ones((2, 3), np.int64), track_times=False)
        h.create_dataset("all_padding/input_ids", data=np.ones((2, 3), np.int64), track_times=False)
        h.create_dataset("all_padding/attention_mask", data=np.array([[1, 1, 1], [0, 0, 0]], np.int64),
                         track_times=False)
        h.create_dataset("float_ids/input_ids", data=np.ones((1, 2), np.float32), track_times=False)
        h.create_dataset("rank1/input_ids", data=np.ones(4, np.int64), track_times=False)
        h.create_dataset("bytes/images", data=np.array([0, 51, 127, 255] * 2, np.uint8).reshape(2, 1, 2, 2),
                         track_times=False)
        h.create_dataset("signed_bytes/images", data=np.zeros((1, 1, 2, 2), np.int8), track_times=False)


def main():
    os.makedirs(OUT, exist_ok=True)
    write_dtypes()
    write_sharded()
    write_single()
    write_catmerge_style()
    write_exemplars()
    write_tokens()
    write_fixture_list(OUT)


if __name__ == "__main__":
    main()
