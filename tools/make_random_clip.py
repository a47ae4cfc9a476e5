#!/usr/bin/env python3
"""Writes a random CLIP-ViT base, K experts (HF layout: config.json + model.safetensors), exemplars and a
catmerge configuration, at any size: for benchmarks and for tests that need a merge that takes a while.
Needs only numpy and h5py (Debian's python3-numpy, python3-h5py).

  tools/make_random_clip.py OUT_DIR --width 384 --layers 8 --experts 4 [--method cat]
  tools/make_random_clip.py OUT_DIR --width 768 --layers 12 --patch 32 --image 224 --experts 8   # ViT-B/32
  tools/make_random_clip.py OUT_DIR --width 1024 --layers 24 --patch 14 --image 224 --experts 8  # ViT-L/14

Every checkpoint is streamed to disk one tensor at a time (all K + 1 files are written side by side), so
memory stays at a few tensors whatever the size. Each tensor of each checkpoint comes from its own
generator, seeded by (seed, checkpoint, tensor index): the files do not depend on the order of writing.
Expert k = base + delta_k, delta_k a fresh draw of the base's distribution scaled by 0.05, in float32
(then rounded to bf16 with --dtype bf16). Prints the bytes written.
"""
import argparse
import json
import os
import struct

import h5py
import numpy as np

DELTA_SCALE = np.float32(0.05)


def clip_specs(width, layers, mlp, patch, image):
    """[(name, shape, std, offset)] of a CLIPVisionModel (HF names); a value is offset + std * N(0, 1)."""
    d, tokens = width, (image // patch) ** 2 + 1
    specs = [("vision_model.embeddings.class_embedding", (d,), 0.02, 0.0),
             ("vision_model.embeddings.patch_embedding.weight", (d, 3, patch, patch), 0.02, 0.0),
             ("vision_model.embeddings.position_embedding.weight", (tokens, d), 0.02, 0.0),
             ("vision_model.pre_layrnorm.weight", (d,), 0.02, 1.0),
             ("vision_model.pre_layrnorm.bias", (d,), 0.02, 0.0),
             ("vision_model.post_layernorm.weight", (d,), 0.02, 1.0),
             ("vision_model.post_layernorm.bias", (d,), 0.02, 0.0)]
    for i in range(layers):
        p = f"vision_model.encoder.layers.{i}."
        for ln in ("layer_norm1", "layer_norm2"):
            specs += [(p + ln + ".weight", (d,), 0.02, 1.0), (p + ln + ".bias", (d,), 0.02, 0.0)]
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            specs += [(p + f"self_attn.{proj}.weight", (d, d), d ** -0.5, 0.0),
                      (p + f"self_attn.{proj}.bias", (d,), 0.02, 0.0)]
        specs += [(p + "mlp.fc1.weight", (mlp, d), d ** -0.5, 0.0), (p + "mlp.fc1.bias", (mlp,), 0.02, 0.0),
                  (p + "mlp.fc2.weight", (d, mlp), mlp ** -0.5, 0.0), (p + "mlp.fc2.bias", (d,), 0.02, 0.0)]
    return specs


def draw(seed, model, index, shape, std, offset):
    """offset + std * N(0, 1) in float32 from the generator of (seed, model, tensor index)."""
    a = np.random.default_rng([seed, model, index]).standard_normal(shape, dtype=np.float32)
    a *= np.float32(std)
    if offset:
        a += np.float32(offset)
    return a


def to_bf16_bits(a):
    """float32 -> bf16 bit patterns (uint16), round to nearest even (no NaNs here)."""
    u = a.view(np.uint32)
    return ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)


class SafetensorsStream:
    """A safetensors file whose header is written first (from the shapes) and tensors appended in order."""

    def __init__(self, path, specs, dtype):
        self.size = 2 if dtype == "BF16" else 4
        header, offset = {}, 0
        for name, shape, *_ in specs:
            n = int(np.prod(shape)) * self.size
            header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
            offset += n
        text = json.dumps(header).encode()
        text += b" " * ((8 - len(text) % 8) % 8)
        self.file = open(path, "wb")
        self.file.write(struct.pack("<Q", len(text)) + text)
        self.bytes = 8 + len(text) + offset

    def write(self, a):
        self.file.write((to_bf16_bits(a) if self.size == 2 else a).tobytes())

    def close(self):
        self.file.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--width", type=int, default=384)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--mlp", type=int, default=None, help="MLP width (default 4 * width)")
    ap.add_argument("--heads", type=int, default=None, help="attention heads (default width // 64, at least 1)")
    ap.add_argument("--patch", type=int, default=8)
    ap.add_argument("--image", type=int, default=32)
    ap.add_argument("--exemplars", type=int, default=4, help="images stored per task (default 4)")
    ap.add_argument("--dtype", choices=("f32", "bf16"), default="f32")
    ap.add_argument("--method", default="cat")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    mlp = a.mlp or 4 * a.width
    heads = a.heads or max(1, a.width // 64)
    if a.width % heads:
        ap.error(f"--width {a.width} is not a multiple of --heads {heads}")
    cfg = {"architectures": ["CLIPVisionModel"], "model_type": "clip_vision_model", "hidden_size": a.width,
           "intermediate_size": mlp, "num_hidden_layers": a.layers, "num_attention_heads": heads,
           "image_size": a.image, "patch_size": a.patch, "num_channels": 3, "hidden_act": "quick_gelu",
           "layer_norm_eps": 1e-5, "torch_dtype": "float32" if a.dtype == "f32" else "bfloat16"}
    specs = clip_specs(a.width, a.layers, mlp, a.patch, a.image)
    folders = ["base"] + [f"expert{k}" for k in range(a.experts)]
    files = []
    for folder in folders:
        os.makedirs(os.path.join(a.out, folder), exist_ok=True)
        with open(os.path.join(a.out, folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        files.append(SafetensorsStream(os.path.join(a.out, folder, "model.safetensors"), specs, a.dtype.upper()))
    for index, (name, shape, std, offset) in enumerate(specs):
        base = draw(a.seed, 0, index, shape, std, offset)
        files[0].write(base)
        for k in range(a.experts):
            delta = draw(a.seed, k + 1, index, shape, std, offset)
            delta *= DELTA_SCALE
            delta += base
            files[k + 1].write(delta)
    for f in files:
        f.close()
    total = sum(f.bytes for f in files)
    exemplars = os.path.join(a.out, "exemplars.h5")
    with h5py.File(exemplars, "w") as f:
        for k in range(a.experts):
            rng = np.random.default_rng([a.seed, 1_000_000 + k])
            f[f"task{k}/pixel_values"] = rng.standard_normal((a.exemplars, 3, a.image, a.image), dtype=np.float32)
    total += os.path.getsize(exemplars)
    experts = [f"  - {{name: task{k}, path: expert{k}, exemplars: 'exemplars.h5:/task{k}'}}" for k in range(a.experts)]
    with open(os.path.join(a.out, "merge.yaml"), "w") as f:
        f.write("model: {arch: clip_vit, base: base}\nexperts:\n" + "\n".join(experts) + "\n"
                f"method: {{name: {a.method}}}\noutput: {{path: merged.h5}}\nruntime: {{backend: cpu, threads: 1}}\n")
    print(f"make_random_clip: wrote {total} bytes ({total / 1e9:.2f} GB) in {a.out}: {a.experts} experts + base, "
          f"{files[0].bytes} bytes per checkpoint")


if __name__ == "__main__":
    main()
