#!/usr/bin/env python3
"""Writes data/fixtures/lora/: PEFT LoRA adapters on the committed tiny models, each beside the full checkpoint
it makes, so catmerge's LoRA experts (src/io/peft_adapter.*) are checked against peft itself.

  /work/main/build/oracle-venv/bin/python tools/make_lora_fixtures.py      # from the repository root, ~10 s

Needs torch, transformers, peft and safetensors (scripts/setup-oracles.sh's environment; versions in
data/fixtures/VERSIONS.txt, peft 0.21.2). Deterministic: one torch thread, every LoRA factor drawn from its own
numpy generator seeded by (SEED, adapter, tensor index), HDF5 without timestamps; a second run gives the same
bytes. Each ADAPTER/ directory is what peft's save_pretrained writes (adapter_config.json,
adapter_model.safetensors; its README.md dropped, base_model_name_or_path the repository-relative base), and
ADAPTER.merged/ the expert it makes: peft's merge_and_unload() of the base and the adapter, saved with
save_pretrained in float32 (clip_bf16: each LoRA layer's merge() on the model widened to float32, then the model
rounded to bfloat16, so the value is rounded once, as a bf16 checkpoint of the float32 merge holds it).

  llama_qkvo/          data/fixtures/llama/base (LlamaForCausalLM): r 4, lora_alpha 8, q/k/v/o_proj of both
                       layers, modules_to_save lm_head (a full tensor in the adapter)
  llama_mlp_rslora/    the same base: r 4, lora_alpha 6, use_rslora (scale alpha / sqrt(r)), gate/up/down_proj and
                       embed_tokens (lora_embedding_A/B, and peft's copy of the base embedding
                       embed_tokens.base_layer.weight); rank_pattern {down_proj: 2}, alpha_pattern
                       {layers.1.mlp.up_proj: 12}
  llama_fan_in_fan_out/  the same base, fan_in_fan_out true on v_proj and up_proj (r 3, lora_alpha 5): peft allows
                       that on Conv1D layers only, so the config is peft's LoraConfig saved by hand, the factors
                       are written with the safetensors package and .merged/ is computed with numpy:
                       W + (B A)^T * alpha / r, A [r, W rows], B [W columns, r]
  clip/                data/fixtures/clip_hf/base (CLIPVisionModelWithProjection): r 4, lora_alpha 4,
                       q/v_proj, fc1 and fc2, modules_to_save post_layernorm (weight and bias)
  clip_bf16/           data/fixtures/clip_bf16/base (bfloat16): r 2, lora_alpha 3, k_proj and fc2, factors in
                       bfloat16, injected into the inner vision_model (peft's inject_adapter_in_model) and saved
                       as that module's state holds them: no base_model.model. prefix, the adapter name
                       ('digits') in every key (lora_A.digits.weight)
  bert_base/           a tiny random BertForSequenceClassification (bert.* names; hidden 16, 1 layer, float32)
  bert/                peft on its inner BertModel (keys base_model.model.encoder.layer.0.attention.self.query...,
                       which catmerge finds under bert.encoder...): r 2, lora_alpha 4, query and value
  tokens.h5            /task1..3/input_ids int64 [4, 8], uniform in the llama fixture's 64-token vocabulary: the
                       exemplars of the merges with features
  eval.h5, heads.safetensors   `catmerge eval` of llama_qkvo: task 'qkvo', split 'test', 12 token sequences of
                       length 6; a random 4-class head on the pooled output (model.norm of the last token) of
                       peft's own unmerged PeftModel forward; the labels are its predictions (each with a
                       margin), so llama_qkvo scores 12 of 12; attribute 'base_correct': what the base scores
"""
import json
import os
import shutil
import sys

import numpy as np
import peft
import torch
import transformers
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "data", "fixtures")
OUT = os.path.join(FIXTURES, "lora")
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import ckpt_io  # noqa: E402  (tools/reference: HDF5 and safetensors writers shared with the other fixtures)

SEED = 6061
FACTOR_STD = 0.1
EVAL_SEQUENCES, EVAL_LENGTH, EVAL_CLASSES = 12, 6, 4
TOKEN_TASKS, TOKENS_PER_TASK, TOKEN_LENGTH, TOKEN_VOCAB = 3, 4, 8, 64


def factor_values(adapter, index, shape, dtype=torch.float32):
    rng = np.random.default_rng([SEED, adapter, index])
    return torch.from_numpy(rng.normal(0.0, FACTOR_STD, shape).astype(np.float32)).to(dtype)


def fill_factors(model, adapter, dtype=torch.float32):
    """Every LoRA factor of `model` (peft's nn.Linear weights, or the embedding's nn.Parameters), in name order."""
    params = sorted((n, p) for n, p in model.named_parameters() if "lora_" in n)
    with torch.no_grad():
        for i, (_, p) in enumerate(params):
            p.copy_(factor_values(adapter, i, tuple(p.shape), dtype))
    return [n for n, _ in params]


def finish_adapter(directory, base):
    """peft's save_pretrained output without its README, with the base named relative to the repository."""
    readme = os.path.join(directory, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    path = os.path.join(directory, "adapter_config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["base_model_name_or_path"] = os.path.relpath(base, ROOT)
    if isinstance(cfg.get("target_modules"), list):   # peft keeps a set: its order is the hash seed's
        cfg["target_modules"] = sorted(cfg["target_modules"])
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def save_merged(model, directory, dtype=torch.float32):
    model = model.to(dtype)
    model.save_pretrained(directory)


def llama_peft(name, adapter, lora_config):
    base = os.path.join(FIXTURES, "llama", "base")
    model = transformers.LlamaForCausalLM.from_pretrained(base, dtype=torch.float32)
    pm = peft.get_peft_model(model, lora_config)
    fill_factors(pm, adapter)
    pm.save_pretrained(os.path.join(OUT, name))
    finish_adapter(os.path.join(OUT, name), base)
    return pm


def write_llama_qkvo():
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                          modules_to_save=["lm_head"], init_lora_weights=False)
    pm = llama_peft("llama_qkvo", 1, cfg)
    with torch.no_grad():   # the full tensor the adapter keeps for lm_head: the base's, changed
        head = pm.base_model.model.lm_head.modules_to_save["default"].weight
        head.add_(factor_values(1, 1000, tuple(head.shape)))
    pm.save_pretrained(os.path.join(OUT, "llama_qkvo"))
    finish_adapter(os.path.join(OUT, "llama_qkvo"), os.path.join(FIXTURES, "llama", "base"))
    write_eval(pm)
    save_merged(pm.merge_and_unload(), os.path.join(OUT, "llama_qkvo.merged"))


def write_llama_mlp_rslora():
    cfg = peft.LoraConfig(r=4, lora_alpha=6, use_rslora=True,
                          target_modules=["gate_proj", "up_proj", "down_proj", "embed_tokens"],
                          rank_pattern={"down_proj": 2}, alpha_pattern={"layers.1.mlp.up_proj": 12},
                          init_lora_weights=False)
    pm = llama_peft("llama_mlp_rslora", 2, cfg)
    save_merged(pm.merge_and_unload(), os.path.join(OUT, "llama_mlp_rslora.merged"))


def write_llama_fan_in_fan_out():
    """fan_in_fan_out: the weight is stored [in, out] (Conv1D), so the delta is (B A)^T; computed with numpy."""
    name, r, alpha = "llama_fan_in_fan_out", 3, 5
    base_dir = os.path.join(FIXTURES, "llama", "base")
    directory = os.path.join(OUT, name)
    peft.LoraConfig(r=r, lora_alpha=alpha, fan_in_fan_out=True, target_modules=["v_proj", "up_proj"],
                    base_model_name_or_path=base_dir).save_pretrained(directory)
    finish_adapter(directory, base_dir)
    tensors, _ = ckpt_io.load_checkpoint(base_dir)
    factors, merged = {}, dict(tensors)
    targets = sorted(n for n in tensors if n.endswith(("v_proj.weight", "up_proj.weight")))
    for i, target in enumerate(targets):
        w = tensors[target]
        module = "base_model.model." + target[: -len(".weight")]
        a = factor_values(3, 2 * i, (r, w.shape[0])).numpy()      # [r, in] with in = the stored rows
        b = factor_values(3, 2 * i + 1, (w.shape[1], r)).numpy()  # [out, r] with out = the stored columns
        factors[module + ".lora_A.weight"], factors[module + ".lora_B.weight"] = a, b
        merged[target] = (w + (b @ a).T * np.float32(alpha / r)).astype(np.float32)
    save_file({k: torch.from_numpy(v) for k, v in factors.items()}, os.path.join(directory, "adapter_model.safetensors"),
              metadata={"format": "pt"})
    model = transformers.LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in merged.items()}, strict=True)
    assert not missing and not unexpected
    save_merged(model, directory + ".merged")


def write_clip():
    base = os.path.join(FIXTURES, "clip_hf", "base")
    model = transformers.CLIPVisionModelWithProjection.from_pretrained(base, dtype=torch.float32)
    cfg = peft.LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "v_proj", "fc1", "fc2"],
                          modules_to_save=["post_layernorm"], init_lora_weights=False)
    pm = peft.get_peft_model(model, cfg)
    fill_factors(pm, 4)
    with torch.no_grad():
        norm = pm.base_model.model.vision_model.post_layernorm.modules_to_save["default"]
        norm.weight.add_(factor_values(4, 1000, tuple(norm.weight.shape)))
        norm.bias.add_(factor_values(4, 1001, tuple(norm.bias.shape)))
    pm.save_pretrained(os.path.join(OUT, "clip"))
    finish_adapter(os.path.join(OUT, "clip"), base)
    save_merged(pm.merge_and_unload(), os.path.join(OUT, "clip.merged"))


def write_clip_bf16():
    base = os.path.join(FIXTURES, "clip_bf16", "base")
    model = transformers.CLIPVisionModelWithProjection.from_pretrained(base, dtype=torch.bfloat16)
    cfg = peft.LoraConfig(r=2, lora_alpha=3, target_modules=["k_proj", "fc2"], init_lora_weights=False)
    inner = peft.inject_adapter_in_model(cfg, model.vision_model, adapter_name="digits")
    fill_factors(inner, 5, torch.bfloat16)
    directory = os.path.join(OUT, "clip_bf16")
    os.makedirs(directory, exist_ok=True)
    lora = {n: p.detach().clone().contiguous() for n, p in inner.state_dict().items() if "lora_" in n}
    save_file(lora, os.path.join(directory, "adapter_model.safetensors"), metadata={"format": "pt"})
    cfg.base_model_name_or_path = base
    cfg.save_pretrained(directory)
    finish_adapter(directory, base)
    model = model.float()   # factors and base widened exactly: the merge is float32, rounded to bf16 once
    for module in model.modules():
        if isinstance(module, peft.tuners.lora.LoraLayer):
            module.merge(adapter_names=["digits"])
    merged = {k: v for k, v in model.state_dict().items() if "lora_" not in k}
    merged = {k.replace(".base_layer.", "."): v for k, v in merged.items()}
    plain = transformers.CLIPVisionModelWithProjection.from_pretrained(base, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(merged, strict=False)
    assert not unexpected and all(m.endswith("position_ids") for m in missing), (missing, unexpected)
    save_merged(plain, directory + ".merged", torch.bfloat16)


def write_bert():
    torch.manual_seed(SEED)
    cfg = transformers.BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=16, num_labels=2)
    base_dir = os.path.join(OUT, "bert_base")
    transformers.BertForSequenceClassification(cfg).save_pretrained(base_dir)
    model = transformers.BertForSequenceClassification.from_pretrained(base_dir, dtype=torch.float32)
    lcfg = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["query", "value"], init_lora_weights=False)
    pm = peft.get_peft_model(model.bert, lcfg)
    fill_factors(pm, 6)
    pm.save_pretrained(os.path.join(OUT, "bert"))
    finish_adapter(os.path.join(OUT, "bert"), base_dir)
    pm.merge_and_unload()   # in place: model.bert's layers are plain again
    save_merged(model, os.path.join(OUT, "bert.merged"))


def write_eval(pm):
    """Labels: the head's predictions on the pooled output of peft's own (unmerged) forward of llama_qkvo."""
    rng = np.random.default_rng([SEED, 100])
    ids = rng.integers(0, pm.config.vocab_size, (EVAL_SEQUENCES, EVAL_LENGTH)).astype(np.int64)
    weight = rng.normal(0.0, 1.0, (EVAL_CLASSES, pm.config.hidden_size)).astype(np.float32)
    bias = rng.normal(0.0, 0.1, EVAL_CLASSES).astype(np.float32)

    def logits_of(decoder):
        with torch.no_grad():
            pooled = decoder(torch.from_numpy(ids)).last_hidden_state[:, -1].numpy()
        return pooled.astype(np.float64) @ weight.T.astype(np.float64) + bias

    logits = logits_of(pm.base_model.model.model)
    top = np.sort(logits, axis=1)
    assert np.all(top[:, -1] - top[:, -2] > 1e-3 * np.abs(top[:, -1])), "a prediction too close to call"
    labels = logits.argmax(axis=1).astype(np.int64)
    with pm.disable_adapter():
        base_correct = int((logits_of(pm.base_model.model.model).argmax(axis=1) == labels).sum())
    assert base_correct < EVAL_SEQUENCES, "the adapter changes no prediction"
    ckpt_io.write_h5_datasets(os.path.join(OUT, "eval.h5"), {"qkvo/test/input_ids": ids, "qkvo/test/labels": labels},
                              attrs={"model": "lora/llama_qkvo", "base_correct": base_correct,
                                     "sequences": EVAL_SEQUENCES})
    ckpt_io.save_safetensors(os.path.join(OUT, "heads.safetensors"), {"qkvo.weight": weight, "qkvo.bias": bias})


def write_tokens():
    rng = np.random.default_rng([SEED, 200])
    ckpt_io.write_h5_datasets(os.path.join(OUT, "tokens.h5"), {
        f"task{t}/input_ids": rng.integers(0, TOKEN_VOCAB, (TOKENS_PER_TASK, TOKEN_LENGTH)).astype(np.int64)
        for t in range(1, TOKEN_TASKS + 1)})


def main():
    torch.set_num_threads(1)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    write_llama_qkvo()
    write_llama_mlp_rslora()
    write_llama_fan_in_fan_out()
    write_clip()
    write_clip_bf16()
    write_bert()
    write_tokens()
    for dirpath, _, files in sorted(os.walk(OUT)):
        for f in sorted(files):
            print(f"{os.path.relpath(os.path.join(dirpath, f), OUT):55s} {os.path.getsize(os.path.join(dirpath, f)):8d}")


if __name__ == "__main__":
    main()
