#!/usr/bin/env python3
"""Deterministically (re)writes data/fixtures/clip_full/{base,expert1..expert4}: full transformers `CLIPModel`
checkpoints (vision and text towers) for the tests of catmerge's HuggingFace-directory output.

- Vision tower (`vision_model.*`, `visual_projection.weight`): copied bit for bit from the matching
  data/fixtures/clip_hf checkpoint (base from clip_hf/base, expertK from clip_hf/expertK; clip_hf/expert2 is
  sharded), so every clip_hf merge case applies to clip_full unchanged and its expected output
  (data/fixtures/expected/<case>.h5) is the expected vision tower.
- Text tower (`text_model.*`, `text_projection.weight`) and `logit_scale`: a tiny random text tower (hidden 16,
  2 layers, 2 heads, intermediate 64, vocab 100, 16 positions, projection 16 as the vision tower's) in the
  base; each expert's is the base's plus a small random perturbation (about 2% of each tensor's rms), so a
  test can tell whether an output's text tower is the base's. Token ids: 98 is <|startoftext|>,
  99 <|endoftext|> (also the pad token); text pooling takes the first 99 of each row.
- config.json: transformers' own CLIPConfig (text_config, vision_config = clip_hf/base/config.json's values,
  projection_dim 16); weights written with CLIPModel.save_pretrained (float32; the non-persistent
  position_ids buffers are not saved).
- The base directory also holds the non-weight files an HF output directory must carry over unchanged:
  preprocessor_config.json (CLIPImageProcessor for 16x16 images), tokenizer_config.json,
  special_tokens_map.json, chat_template.jinja, and a hidden .gitattributes (which must not be carried over).
  Experts hold config.json + model.safetensors only.

Self-checks (the script fails if one fails): CLIPModel.from_pretrained loads every directory with no missing,
unexpected or mismatched keys and no error messages, to exactly the tensors written; every vision tensor equals
clip_hf's bit for bit, in the file and in the loaded model; the config's vision_config holds clip_hf's values;
every expert's text tower differs from the base's in every tensor; the whole fixture is under 1 MB.

It uses fixed seeds and one torch thread and writes only clip_full/ (removed first): running it twice gives
byte-identical files (compare `sha256sum data/fixtures/clip_full/*/* data/fixtures/clip_full/base/.gitattributes`).
It needs data/fixtures/clip_hf (make_fixtures.py) and is independent of catmerge.

    python3 tools/reference/make_hf_fixtures.py [--out data/fixtures]
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
import transformers  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from transformers import CLIPConfig, CLIPModel  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ckpt_io  # noqa: E402

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20250617            # the text tower of the base
EXPERT_SEED = 20250618     # + k: expert k's perturbation of it
PERTURBATION = 0.02        # relative to each tensor's rms (at least 0.05)
EXPERTS = 4

TEXT_CONFIG = dict(vocab_size=100, hidden_size=16, intermediate_size=64, projection_dim=16, num_hidden_layers=2,
                   num_attention_heads=2, max_position_embeddings=16, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                   pad_token_id=99, bos_token_id=98, eos_token_id=99)
# Keys of clip_hf/base/config.json that describe the file, not the vision tower.
NOT_VISION = ("architectures", "transformers_version", "dtype", "torch_dtype", "model_type")

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
PREPROCESSOR_CONFIG = {
    "crop_size": {"height": 16, "width": 16},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_processor_type": "CLIPImageProcessor",
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "processor_class": "CLIPProcessor",
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 16},
}
SPECIAL_TOKENS_MAP = {
    "bos_token": {"content": BOS, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False},
    "eos_token": {"content": EOS, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
    "pad_token": EOS,
    "unk_token": {"content": EOS, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
}
TOKENIZER_CONFIG = {
    "add_prefix_space": False,
    "added_tokens_decoder": {
        "98": {"content": BOS, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False,
               "special": True},
        "99": {"content": EOS, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
               "special": True},
    },
    "bos_token": BOS,
    "clean_up_tokenization_spaces": False,
    "do_lower_case": True,
    "eos_token": EOS,
    "errors": "replace",
    "model_max_length": 16,
    "pad_token": EOS,
    "processor_class": "CLIPProcessor",
    "tokenizer_class": "CLIPTokenizer",
    "unk_token": EOS,
}
CHAT_TEMPLATE = ("{# catmerge test fixture: a caption prompt per user message #}\n"
                 "{%- for message in messages -%}\n"
                 "{{ bos_token }}{{ 'a photo of ' if message['role'] == 'user' else '' }}"
                 "{{ message['content'] | trim }}{{ eos_token }}\n"
                 "{%- endfor -%}\n")
# A Hub repository's .gitattributes routes weights through git-lfs (filter=lfs diff=lfs merge=lfs -text); this
# one is committed inside catmerge's own repository, where a filter would turn the fixture's model.safetensors
# into an LFS pointer wherever git-lfs is installed, so it declares only attributes that leave bytes alone.
GITATTRIBUTES = ("# Hub repositories: *.safetensors filter=lfs diff=lfs merge=lfs -text (not here: plain git)\n"
                 "*.bin binary\n"
                 "*.h5 binary\n"
                 "*.msgpack binary\n"
                 "*.safetensors binary\n")


def is_vision(name):
    return name.startswith("vision_model.") or name == "visual_projection.weight"


def read_raw(directory):
    """Every tensor of an HF directory (model.safetensors or shards listed in the index) as stored."""
    out = {}
    for path in ckpt_io.checkpoint_files(directory):
        for k, v in load_file(path).items():
            assert k not in out, k
            out[k] = v
    return out


def clip_config(vision_directory):
    with open(os.path.join(vision_directory, "config.json")) as f:
        vision = {k: v for k, v in json.load(f).items() if k not in NOT_VISION}
    cfg = CLIPConfig(text_config=dict(TEXT_CONFIG), vision_config=vision, projection_dim=16)
    cfg.architectures = ["CLIPModel"]
    return cfg, vision


def random_text_tower(shapes, rng):
    """Base text tower: linear weights ~ N(0, 1/fan_in), biases small, LayerNorm weights near 1, embeddings
    O(0.3); logit_scale = log(1/0.07) as CLIP initialises it."""
    out = {}
    for name in sorted(shapes):
        shape = shapes[name]
        if name == "logit_scale":
            v = np.full(shape, np.log(1 / 0.07))
        elif "embedding" in name:
            v = 0.3 * rng.standard_normal(shape)
        elif "layer_norm" in name or "final_layer_norm" in name:
            v = 1.0 + 0.1 * rng.standard_normal(shape) if name.endswith("weight") else 0.05 * rng.standard_normal(shape)
        elif name.endswith("bias"):
            v = 0.05 * rng.standard_normal(shape)
        else:
            v = rng.standard_normal(shape) / np.sqrt(shape[-1])
        out[name] = np.asarray(v, dtype=np.float32)
    return out


def perturbed(text, rng):
    out = {}
    for name in sorted(text):
        v = text[name]
        r = max(float(np.sqrt(np.mean(v.astype(np.float64) ** 2))), 0.05)
        out[name] = np.asarray(v + PERTURBATION * r * rng.standard_normal(v.shape), dtype=np.float32)
    return out


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def save(directory, cfg, state):
    torch.manual_seed(0)
    model = CLIPModel(cfg)
    sd = model.state_dict()
    assert set(sd) == set(state), (sorted(set(sd) ^ set(state)))
    for k, v in state.items():
        assert tuple(sd[k].shape) == v.shape and sd[k].dtype == torch.float32, (k, sd[k].shape, v.shape)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()}, strict=True)
    os.makedirs(directory)
    model.save_pretrained(directory)
    assert sorted(os.listdir(directory)) == ["config.json", "model.safetensors"], os.listdir(directory)


def check_directory(directory, state, vision_directory, vision_values):
    # The file: exactly the tensors written, vision ones bit for bit those of clip_hf.
    raw = read_raw(directory)
    assert set(raw) == set(state), sorted(set(raw) ^ set(state))
    src = read_raw(vision_directory)
    assert {k for k in raw if is_vision(k)} == set(src), sorted({k for k in raw if is_vision(k)} ^ set(src))
    for k, v in raw.items():
        want = src[k] if is_vision(k) else state[k]
        assert v.dtype == want.dtype == np.float32 and v.shape == want.shape, k
        assert v.tobytes() == want.tobytes(), f"{directory}: {k} differs"
    # The config: a CLIPModel config whose vision_config holds clip_hf's values.
    with open(os.path.join(directory, "config.json")) as f:
        cfg = json.load(f)
    assert cfg["model_type"] == "clip" and cfg["architectures"] == ["CLIPModel"], cfg
    for k, v in vision_values.items():
        assert cfg["vision_config"].get(k) == v, (k, cfg["vision_config"].get(k), v)
    for k, v in TEXT_CONFIG.items():
        assert cfg["text_config"].get(k) == v, (k, cfg["text_config"].get(k), v)
    assert cfg["projection_dim"] == 16
    # transformers loads it cleanly, to the same tensors.
    model, info = CLIPModel.from_pretrained(directory, output_loading_info=True)
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        assert not info.get(key), (directory, key, info.get(key))
    for k, v in model.state_dict().items():
        if k.endswith("position_ids"):
            continue
        want = src[k] if is_vision(k) else state[k]
        assert v.dtype == torch.float32 and v.numpy().tobytes() == want.tobytes(), f"{directory}: loaded {k} differs"


def write_base_extras(directory):
    write_json(os.path.join(directory, "preprocessor_config.json"), PREPROCESSOR_CONFIG)
    write_json(os.path.join(directory, "tokenizer_config.json"), TOKENIZER_CONFIG)
    write_json(os.path.join(directory, "special_tokens_map.json"), SPECIAL_TOKENS_MAP)
    with open(os.path.join(directory, "chat_template.jinja"), "w") as f:
        f.write(CHAT_TEMPLATE)
    with open(os.path.join(directory, ".gitattributes"), "w") as f:
        f.write(GITATTRIBUTES)
    # They read back as what they claim to be.
    from transformers.image_processing_utils import ImageProcessingMixin
    proc, _ = ImageProcessingMixin.get_image_processor_dict(directory)
    assert proc["image_processor_type"] == "CLIPImageProcessor" and proc["crop_size"] == {"height": 16, "width": 16}
    import jinja2
    text = jinja2.Template(CHAT_TEMPLATE).render(messages=[{"role": "user", "content": " a cat "}],
                                                 bos_token=BOS, eos_token=EOS)
    assert text == f"{BOS}a photo of a cat{EOS}", text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "..", "data", "fixtures"))
    args = ap.parse_args()
    root = os.path.normpath(args.out)
    clip_hf, out = os.path.join(root, "clip_hf"), os.path.join(root, "clip_full")
    if os.path.exists(out):
        shutil.rmtree(out)

    cfg, vision_values = clip_config(os.path.join(clip_hf, "base"))
    shapes = {k: tuple(v.shape) for k, v in CLIPModel(cfg).state_dict().items()
              if not is_vision(k) and not k.endswith("position_ids")}
    assert "logit_scale" in shapes and "text_projection.weight" in shapes and all(
        k.startswith("text_model.") or k in ("logit_scale", "text_projection.weight") for k in shapes), shapes
    text_base = random_text_tower(shapes, np.random.default_rng(SEED))

    summary = []
    for k in range(EXPERTS + 1):
        name = "base" if k == 0 else f"expert{k}"
        text = text_base if k == 0 else perturbed(text_base, np.random.default_rng(EXPERT_SEED + k))
        if k:
            for t in text:
                assert not np.array_equal(text[t], text_base[t]), (name, t)
        vision = read_raw(os.path.join(clip_hf, name))
        state = dict(vision, **text)
        directory = os.path.join(out, name)
        save(directory, cfg, state)
        if k == 0:
            write_base_extras(directory)
        check_directory(directory, state, os.path.join(clip_hf, name), vision_values)
        summary.append(f"clip_full/{name}: {len(vision)} vision tensors from clip_hf/{name} (bit-exact), "
                       f"{len(text)} text tensors; CLIPModel loads it with no missing/unexpected keys")

    total = 0
    for dirpath, _, files in os.walk(out):
        for fn in files:
            os.chmod(os.path.join(dirpath, fn), 0o644)   # safetensors writes 0600
            total += os.path.getsize(os.path.join(dirpath, fn))
    assert total < 1e6, total
    print("\n".join(summary))
    print(f"clip_full: {total / 1e6:.3f} MB written")


if __name__ == "__main__":
    sys.exit(main())
