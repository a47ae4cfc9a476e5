#!/usr/bin/env python3
"""Writes a random LLaMA-shaped base and K experts in HF layout (config.json for LlamaForCausalLM +
model.safetensors, bf16), plus catmerge and mergekit configurations of the same merges, for the
element-wise benchmarks (bench/elementwise_vs_mergekit.sh), and on request token exemplars and a CAT
configuration (bench/llama7b_cat.sh). Needs only numpy (/usr/bin/python3), and h5py for --exemplars.

  tools/make_random_llama.py OUT_DIR [--hidden 2048 --layers 8 --intermediate 5632 --heads 16 --kv-heads 4
                                      --vocab 32000 --experts 4]      (defaults: 5 checkpoints, 4.9 GB)
  tools/make_random_llama.py OUT_DIR --hidden 4096 --intermediate 11008 --heads 32 --kv-heads 8 --layers 2 \
                                     --experts 8 --exemplars 2 --seq 512   # LLaMA-7B-shaped, 2 blocks, CAT

Values: weights N(0, 0.02^2), RMSNorm weights 1 + N(0, 0.02^2); expert k = base + a delta N(0, s^2),
s = 0.05 * 0.02 for weights and 0.05 * 0.2 for norm weights (bf16's spacing near 1 is 0.0078), computed in
float32 from the bf16 base and rounded to bf16 (nearest even). lm_head is untied. Each tensor
of each checkpoint comes from its own generator seeded by (seed, checkpoint, tensor index), and the K + 1
files are streamed side by side, one piece of at most 4M values at a time. Writes into OUT_DIR:
  base/, expert0/ ... expert{K-1}/              the checkpoints
  task_arithmetic.yaml, ties.yaml               catmerge: alphas 0.3 per expert; ties density 0.2, alpha 0.3
  mergekit-task_arithmetic.yml, mergekit-ties.yml   mergekit-yaml: the same merges (see below)
and with --exemplars N (N > 0; without it nothing else is written, and the files above do not change):
  tokens.h5                                     /task0 ... /task{K-1}: input_ids int64 [N, SEQ] (no
                                                attention_mask), uniform in [0, vocab), task k's from the
                                                generator seeded by (seed, 1000000 + k)
  cat.yaml                                      catmerge: method cat (its defaults), features.exemplars N,
                                                expert k's exemplars tokens.h5:/task{k}, output cat.h5
mergekit computes base + sum_k w_k T_k (weight 0.3, normalize false) for task arithmetic, which is catmerge's
`alphas` form; its TIES (density 0.2, weight 0.3, normalize true: the disjoint mean, lambda 0.3) is
catmerge's TIES with `scope: tensor`. Both do the arithmetic in float32 and write bf16, as catmerge does.
"""
import argparse
import json
import os
import struct

import numpy as np

STD = 0.02
CHUNK = 1 << 22  # values per piece: large tensors are generated and written in pieces of rows


def llama_specs(hidden, layers, intermediate, heads, kv_heads, vocab):
    """[(name, shape, offset)] in model order; a value is offset + STD * N(0, 1)."""
    kv = hidden // heads * kv_heads
    specs = [("model.embed_tokens.weight", (vocab, hidden), 0.0)]
    for i in range(layers):
        p = f"model.layers.{i}."
        specs += [(p + "input_layernorm.weight", (hidden,), 1.0),
                  (p + "self_attn.q_proj.weight", (hidden, hidden), 0.0),
                  (p + "self_attn.k_proj.weight", (kv, hidden), 0.0),
                  (p + "self_attn.v_proj.weight", (kv, hidden), 0.0),
                  (p + "self_attn.o_proj.weight", (hidden, hidden), 0.0),
                  (p + "post_attention_layernorm.weight", (hidden,), 1.0),
                  (p + "mlp.gate_proj.weight", (intermediate, hidden), 0.0),
                  (p + "mlp.up_proj.weight", (intermediate, hidden), 0.0),
                  (p + "mlp.down_proj.weight", (hidden, intermediate), 0.0)]
    return specs + [("model.norm.weight", (hidden,), 1.0), ("lm_head.weight", (vocab, hidden), 0.0)]


def bf16_bits(a):
    """float32 -> bf16 bit patterns (uint16), round to nearest even (no NaNs here); overwrites a."""
    u = a.view(np.uint32)
    r = u >> np.uint32(16)
    r &= np.uint32(1)
    r += np.uint32(0x7FFF)
    u += r
    u >>= np.uint32(16)
    return u.astype(np.uint16)


def bf16_value(bits):
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def open_safetensors(path, specs):
    header, offset = {}, 0
    for name, shape, _ in specs:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    f = open(path, "wb")
    f.write(struct.pack("<Q", len(text)) + text)
    return f, 8 + len(text) + offset


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--intermediate", type=int, default=5632)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--delta-scale", type=float, default=0.05, help="delta std: this times 0.02 (weights), 0.2 (norms)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--exemplars", type=int, default=0,
                    help="token sequences per task: also write tokens.h5 and cat.yaml (default 0: neither)")
    ap.add_argument("--seq", type=int, default=512, help="tokens per exemplar sequence (default 512)")
    a = ap.parse_args()
    if a.hidden % a.heads or a.heads % a.kv_heads:
        ap.error("--hidden must be a multiple of --heads, and --heads of --kv-heads")
    if a.exemplars < 0 or (a.exemplars and not 1 <= a.seq <= 4096):
        ap.error("--exemplars must be >= 0, and --seq in [1, 4096] (max_position_embeddings)")
    out = os.path.abspath(a.out)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": a.hidden,
           "intermediate_size": a.intermediate, "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
           "num_key_value_heads": a.kv_heads, "vocab_size": a.vocab, "max_position_embeddings": 4096,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False,
           "attention_bias": False, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16"}
    specs = llama_specs(a.hidden, a.layers, a.intermediate, a.heads, a.kv_heads, a.vocab)
    folders = ["base"] + [f"expert{k}" for k in range(a.experts)]
    files, total = [], 0
    for folder in folders:
        os.makedirs(os.path.join(out, folder), exist_ok=True)
        with open(os.path.join(out, folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        f, size = open_safetensors(os.path.join(out, folder, "model.safetensors"), specs)
        files.append(f)
        total += size
    for index, (name, shape, offset) in enumerate(specs):
        rngs = [np.random.default_rng([a.seed, m, index]) for m in range(a.experts + 1)]
        row = int(np.prod(shape[1:]))
        for rows in [min(max(1, CHUNK // row), shape[0] - r) for r in range(0, shape[0], max(1, CHUNK // row))]:
            piece = (rows,) + tuple(shape[1:])
            base = rngs[0].standard_normal(piece, dtype=np.float32)
            base *= np.float32(STD)
            base += np.float32(offset)
            bits = bf16_bits(base)
            files[0].write(bits.data)
            base = bf16_value(bits)
            for k in range(a.experts):
                delta = rngs[k + 1].standard_normal(piece, dtype=np.float32)
                delta *= np.float32(a.delta_scale * (0.2 if offset else STD))
                delta += base
                files[k + 1].write(bf16_bits(delta).data)
    for f in files:
        f.close()

    experts = "".join(f"  - {{name: expert{k}, path: expert{k}}}\n" for k in range(a.experts))
    alphas = ", ".join(["0.3"] * a.experts)
    for method, params in (("task_arithmetic", f"alphas: [{alphas}]"), ("ties", "density: 0.2, alpha: 0.3, scope: model")):
        with open(os.path.join(out, f"{method}.yaml"), "w") as f:
            f.write(f"model: {{arch: llama, base: base}}\nexperts:\n{experts}method: {{name: {method}, {params}}}\n"
                    f"output: {{path: {method}.h5}}\nruntime: {{backend: cpu, threads: 0}}\n")
    for method, model_params, params in (("task_arithmetic", "{weight: 0.3}", "{normalize: false}"),
                                         ("ties", "{density: 0.2, weight: 0.3}", "{normalize: true, lambda: 0.3}")):
        models = "".join(f"  - model: {out}/expert{k}\n    parameters: {model_params}\n" for k in range(a.experts))
        with open(os.path.join(out, f"mergekit-{method}.yml"), "w") as f:
            f.write(f"merge_method: {method}\nbase_model: {out}/base\nmodels:\n{models}parameters: {params}\n"
                    "dtype: float32\nout_dtype: bfloat16\n")
    if a.exemplars:
        import h5py  # only here: the element-wise sets need numpy alone
        tokens = os.path.join(out, "tokens.h5")
        with h5py.File(tokens, "w") as f:
            for k in range(a.experts):
                rng = np.random.default_rng([a.seed, 1_000_000 + k])
                f[f"task{k}/input_ids"] = rng.integers(0, a.vocab, size=(a.exemplars, a.seq), dtype=np.int64)
        experts = "".join(f"  - {{name: expert{k}, path: expert{k}, exemplars: 'tokens.h5:/task{k}'}}\n"
                          for k in range(a.experts))
        with open(os.path.join(out, "cat.yaml"), "w") as f:
            f.write(f"model: {{arch: llama, base: base}}\nexperts:\n{experts}method: {{name: cat}}\n"
                    f"features: {{exemplars: {a.exemplars}}}\noutput: {{path: cat.h5}}\n"
                    "runtime: {backend: cpu, threads: 0}\n")
        print(f"make_random_llama: wrote {tokens}: {a.experts} tasks x {a.exemplars} sequences x {a.seq} tokens; "
              f"cat.yaml")
    print(f"make_random_llama: wrote {total} bytes ({total / 1e9:.2f} GB) in {out}: {a.experts} experts + base, "
          f"{total // len(files)} bytes per checkpoint")


if __name__ == "__main__":
    main()
