"""Reading and writing checkpoints and HDF5 files for the fixtures (safetensors, HF directories, HDF5).

Every tensor comes back as a float32 numpy array (16-bit values upcast exactly); the stored dtype is kept
beside it so the output dtype `base` can be resolved.
"""
import json
import os

import h5py
import numpy as np
import torch
from safetensors.torch import load_file, save_file

TORCH_TO_NAME = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def _to_numpy_f32(t):
    return t.to(torch.float32).numpy().copy()


def checkpoint_files(path):
    """The safetensors files of a checkpoint: an HF directory's model.safetensors or the shards of its
    model.safetensors.index.json (in the order they first appear there), or the .safetensors file itself."""
    if not os.path.isdir(path):
        return [path]
    index = os.path.join(path, "model.safetensors.index.json")
    if not os.path.exists(index):
        return [os.path.join(path, "model.safetensors")]
    with open(index) as f:
        weight_map = json.load(f)["weight_map"]
    files = []
    for name in weight_map.values():
        if name not in files:
            files.append(name)
    return [os.path.join(path, f) for f in files]


def load_checkpoint(path):
    """(tensors, dtypes): dict name -> float32 array, dict name -> 'F32'|'F16'|'BF16', in container order.

    path: an HF directory (model.safetensors or model.safetensors.index.json) or a .safetensors file.
    Non-float tensors (e.g. position_ids) are skipped.
    """
    tensors, dtypes = {}, {}
    for file in checkpoint_files(path):
        for name, t in load_file(file).items():
            if t.dtype not in TORCH_TO_NAME:
                continue
            tensors[name] = _to_numpy_f32(t)
            dtypes[name] = TORCH_TO_NAME[t.dtype]
    return tensors, dtypes


def save_hf_model(directory, state, hf_config, dtype=torch.float32, max_shard_size=None, model_class=None):
    """Writes a transformers model (default CLIPVisionModelWithProjection; e.g. LlamaForCausalLM) holding
    `state` in HF layout with save_pretrained (no position_ids buffer)."""
    if model_class is None:
        from transformers import CLIPVisionModelWithProjection as model_class
    torch.manual_seed(0)
    model = model_class(hf_config)
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    tied = {"lm_head.weight"} if getattr(hf_config, "tie_word_embeddings", False) and hasattr(model, "lm_head") \
        else set()
    assert not unexpected and all(m.endswith("position_ids") or m in tied for m in missing), (missing, unexpected)
    if tied:   # tied: lm_head is the embedding, which the state set
        assert model.lm_head.weight is model.model.embed_tokens.weight
    model = model.to(dtype)
    os.makedirs(directory, exist_ok=True)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(directory, **kwargs)
    # save_pretrained keeps only persistent parameters, but make sure no integer buffer slipped in.
    for name in os.listdir(directory):
        if name.endswith(".safetensors"):
            for k, t in load_file(os.path.join(directory, name)).items():
                assert t.dtype in TORCH_TO_NAME, (name, k, t.dtype)


def save_safetensors(path, state):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()},
              path, metadata={"format": "pt"})


def f32_to_bf16_bits(x):
    """Round-to-nearest-even float32 -> bfloat16, returned as uint16 bit patterns (finite inputs)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounding = ((bits >> 16) & 1) + 0x7FFF
    return ((bits + rounding) >> 16).astype(np.uint16)


def bf16_bits_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def write_expected(path, tensors, dtypes):
    """One dataset per tensor at the root, named as the tensor. dtypes[name]: 'F32' | 'F16' | 'BF16'."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        for name in sorted(tensors):
            v = np.asarray(tensors[name], dtype=np.float32)
            if dtypes[name] == "F32":
                f.create_dataset(name, data=v, track_times=False)
            elif dtypes[name] == "F16":
                f.create_dataset(name, data=v.astype(np.float16), track_times=False)  # numpy rounds RNE
            elif dtypes[name] == "BF16":
                d = f.create_dataset(name, data=f32_to_bf16_bits(v), track_times=False)
                d.attrs["dtype"] = "bfloat16"
            else:
                raise ValueError(dtypes[name])


def write_h5_datasets(path, datasets, attrs=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with h5py.File(path, "w") as f:
        for name in datasets:
            f.create_dataset(name, data=datasets[name], track_times=False)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v


def read_exemplars(path, group, count):
    with h5py.File(path, "r") as f:
        return f[group]["pixel_values"][:count].astype(np.float32)


def read_token_exemplars(path, group, count):
    """(input_ids, attention_mask) int64 [count, L] of a token exemplar group; the mask is all ones when the
    group has none."""
    with h5py.File(path, "r") as f:
        g = f[group]
        ids = g["input_ids"][:count].astype(np.int64)
        mask = g["attention_mask"][:count].astype(np.int64) if "attention_mask" in g else np.ones_like(ids)
    assert ids.shape == mask.shape and set(np.unique(mask)) <= {0, 1}
    return ids, mask
