#!/usr/bin/env python3
"""Writes a random CLIP-ViT base, K experts (HF layout: config.json + model.safetensors), exemplars and a
catmerge configuration, at any size: for benchmarks and for tests that need a merge that takes a while.
Needs only numpy and h5py (Debian's python3-numpy, python3-h5py).

  tools/make_random_clip.py OUT_DIR --width 384 --layers 8 --experts 4 [--method cat]
"""
import argparse
import json
import os
import struct

import h5py
import numpy as np


def clip_tensors(width, layers, patch, image, rng, scale=1.0):
    """Name -> float32 array of a CLIPVisionModel (HF names), mlp = 4 * width."""
    d, mlp = width, 4 * width
    tokens = (image // patch) ** 2 + 1
    t = {
        "vision_model.embeddings.class_embedding": rng.normal(0, 0.02, (d,)),
        "vision_model.embeddings.patch_embedding.weight": rng.normal(0, 0.02, (d, 3, patch, patch)),
        "vision_model.embeddings.position_embedding.weight": rng.normal(0, 0.02, (tokens, d)),
        "vision_model.pre_layrnorm.weight": 1 + rng.normal(0, 0.02, (d,)),
        "vision_model.pre_layrnorm.bias": rng.normal(0, 0.02, (d,)),
        "vision_model.post_layernorm.weight": 1 + rng.normal(0, 0.02, (d,)),
        "vision_model.post_layernorm.bias": rng.normal(0, 0.02, (d,)),
    }
    for i in range(layers):
        p = f"vision_model.encoder.layers.{i}."
        for ln in ("layer_norm1", "layer_norm2"):
            t[p + ln + ".weight"] = 1 + rng.normal(0, 0.02, (d,))
            t[p + ln + ".bias"] = rng.normal(0, 0.02, (d,))
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t[p + f"self_attn.{proj}.weight"] = rng.normal(0, d ** -0.5, (d, d))
            t[p + f"self_attn.{proj}.bias"] = rng.normal(0, 0.02, (d,))
        t[p + "mlp.fc1.weight"] = rng.normal(0, d ** -0.5, (mlp, d))
        t[p + "mlp.fc1.bias"] = rng.normal(0, 0.02, (mlp,))
        t[p + "mlp.fc2.weight"] = rng.normal(0, mlp ** -0.5, (d, mlp))
        t[p + "mlp.fc2.bias"] = rng.normal(0, 0.02, (d,))
    return {k: (v * scale).astype(np.float32) for k, v in t.items()}


def write_safetensors(path, tensors):
    header, offset = {}, 0
    for name, a in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for a in tensors.values():
            f.write(np.ascontiguousarray(a).tobytes())


def write_model(folder, tensors, cfg):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f)
    write_safetensors(os.path.join(folder, "model.safetensors"), tensors)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--width", type=int, default=384)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--patch", type=int, default=8)
    ap.add_argument("--image", type=int, default=32)
    ap.add_argument("--method", default="cat")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    cfg = {"model_type": "clip_vision_model", "hidden_size": a.width, "intermediate_size": 4 * a.width,
           "num_hidden_layers": a.layers, "num_attention_heads": max(1, a.width // 64), "image_size": a.image,
           "patch_size": a.patch, "num_channels": 3, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}
    base = clip_tensors(a.width, a.layers, a.patch, a.image, rng)
    write_model(os.path.join(a.out, "base"), base, cfg)
    with h5py.File(os.path.join(a.out, "exemplars.h5"), "w") as f:
        for k in range(a.experts):
            f[f"task{k}/pixel_values"] = rng.normal(0, 1, (4, 3, a.image, a.image)).astype(np.float32)
    experts = []
    for k in range(a.experts):
        delta = clip_tensors(a.width, a.layers, a.patch, a.image, rng, scale=0.05)
        write_model(os.path.join(a.out, f"expert{k}"), {n: base[n] + delta[n] for n in base}, cfg)
        experts.append(f"  - {{name: task{k}, path: expert{k}, exemplars: 'exemplars.h5:/task{k}'}}")
    with open(os.path.join(a.out, "merge.yaml"), "w") as f:
        f.write("model: {arch: clip_vit, base: base}\nexperts:\n" + "\n".join(experts) + "\n"
                f"method: {{name: {a.method}}}\noutput: {{path: merged.h5}}\nruntime: {{backend: cpu, threads: 1}}\n")


if __name__ == "__main__":
    main()
