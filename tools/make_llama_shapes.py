#!/usr/bin/env python3
"""Writes the shape file (names, dtypes, shapes, config; no weights) of a LLaMA-family checkpoint from its
HF config values, for `catmerge plan` on models that are not on this machine.

  tools/make_llama_shapes.py data/shapes/llama-2-70b.json   (defaults: LLaMA-2-70B, bf16)

With --tokens N L it also writes OUT-tokens.h5 (OUT without .json): /task0/input_ids int64 [N, L], zeros,
exemplars whose only use is their length: a plan of `cat` or `regmean` counts the rows they record (h5py).
"""
import argparse
import json


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=8192)
    ap.add_argument("--intermediate", type=int, default=28672)
    ap.add_argument("--layers", type=int, default=80)
    ap.add_argument("--heads", type=int, default=64)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--dtype", default="BF16")
    ap.add_argument("--tokens", type=int, nargs=2, metavar=("N", "L"), help="also write N exemplars of L tokens")
    a = ap.parse_args()
    d, kv = a.hidden, a.hidden // a.heads * a.kv_heads
    tensors = [("model.embed_tokens.weight", [a.vocab, d])]
    for i in range(a.layers):
        p = f"model.layers.{i}."
        tensors += [(p + "input_layernorm.weight", [d]),
                    (p + "self_attn.q_proj.weight", [d, d]), (p + "self_attn.k_proj.weight", [kv, d]),
                    (p + "self_attn.v_proj.weight", [kv, d]), (p + "self_attn.o_proj.weight", [d, d]),
                    (p + "post_attention_layernorm.weight", [d]),
                    (p + "mlp.gate_proj.weight", [a.intermediate, d]), (p + "mlp.up_proj.weight", [a.intermediate, d]),
                    (p + "mlp.down_proj.weight", [d, a.intermediate])]
    tensors += [("model.norm.weight", [d]), ("lm_head.weight", [a.vocab, d])]
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": d,
              "intermediate_size": a.intermediate, "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
              "num_key_value_heads": a.kv_heads, "vocab_size": a.vocab, "torch_dtype": "bfloat16"}
    with open(a.out, "w") as f:
        json.dump({"catmerge_shapes": 1, "config": config,
                   "tensors": [{"name": n, "dtype": a.dtype, "shape": s} for n, s in tensors]}, f, indent=0)
        f.write("\n")
    if a.tokens:
        import h5py
        import numpy as np
        stem = a.out[:-len(".json")] if a.out.endswith(".json") else a.out
        with h5py.File(stem + "-tokens.h5", "w") as f:
            f.create_dataset("task0/input_ids", data=np.zeros(a.tokens, np.int64), track_times=False)


if __name__ == "__main__":
    main()
