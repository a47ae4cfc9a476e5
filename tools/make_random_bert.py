#!/usr/bin/env python3
"""Writes the bert fixtures of data/fixtures/: tiny random BertModel and RobertaModel checkpoints (a base and
three experts each), padded token exemplars, one BertForSequenceClassification-keyed checkpoint (names under
bert., a classifier head), the transformers forward oracle of each, and a token eval set. Deterministic
(fixed seeds, one torch thread, HDF5 without times): a second run gives byte-identical files.

  /work/main/build/oracle-venv/bin/python tools/make_random_bert.py [--out data/fixtures]

Needs torch, transformers, safetensors and h5py (scripts/setup-oracles.sh makes build/oracle-venv). Writes
(and rewrites only) bert/, roberta/ and bert_seqcls/ under the output folder:

  bert/base, expert1..3/       BertModel (config.json + model.safetensors, F32): vocab 64, hidden 32, 2 layers,
                               4 heads, intermediate 48, 20 positions, 2 token types, layer_norm_eps 1e-12,
                               gelu, pad_token_id 0, the pooler; plus the int64 buffer embeddings.position_ids
                               [1, 20] as older transformers saved it (the real all-MiniLM-L6-v2 has it)
  roberta/base, expert1..3/    RobertaModel (F32): vocab 64, hidden 32, 3 layers, 2 heads, intermediate 48, 24
                               positions, 1 token type, layer_norm_eps 1e-5, pad_token_id 1, the pooler; no
                               position_ids buffer
  bert_seqcls/model/           BertForSequenceClassification, 3 labels: bert/expert1's encoder and pooler under
                               bert. (position_ids buffer included) and a random classifier
  <f>/tokens.h5                /task1..3: input_ids + attention_mask int64 [4, 12], a different token
                               distribution per task (tools/reference/models.py random_token_exemplars), padded
                               right and left by 2..6 tokens (models.PADDING) with the fixture's pad id
                               (bert 0, roberta 1); a real token equal to the pad id is redrawn as pad id + 1
  bert/oracle_expert1.h5       the first 2 sequences of <f>/tokens.h5:/task1 through <f>/expert1 (bert_seqcls:
  roberta/oracle_expert1.h5    /task2 of bert/tokens.h5 through bert_seqcls/model), transformers float32 eager
  bert_seqcls/oracle.h5        (tools/reference/bert_features.py): one float32 dataset per feature site
                               ("embed.ln", "layers.0.attn_in", ...; [real tokens, dim]), "pooled" [2, 32] (mean
                               of last_hidden_state over the real tokens), and the "input_ids" / "attention_mask"
                               [2, 12] used
  bert/eval.h5                 catmerge eval on bert: /task1/test/input_ids, attention_mask [4, 12]
  bert/heads.safetensors       (bert/tokens.h5:/task1) and labels [4]; head task1.weight [3, 32], task1.bias [3];
                               the labels are argmax(pooled W^T + b) of transformers' pooled output through
                               bert/expert1, sequence 2's moved to the next class: 3 of 4 correct (attribute
                               "correct")

Weights: tools/reference/models.py random_base (LayerNorm weights near 1, biases small, embeddings and linear
weights ~ 1/sqrt(fan_in), position embeddings O(0.3)); experts = base + models.make_experts task vectors.
Every checkpoint loads through from_pretrained to exactly the tensors written (checked here).
"""
import argparse
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
import transformers  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import (BertConfig, BertForSequenceClassification, BertModel, RobertaConfig,  # noqa: E402
                          RobertaModel)

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()

import bert_features  # noqa: E402
import ckpt_io  # noqa: E402
import models  # noqa: E402

FIXTURES = {
    "bert": dict(config_class=BertConfig, model_class=BertModel, seed=5151, scales=[0.03, 0.02, 0.04],
                 position_ids=True, config=dict(
                     vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=48, max_position_embeddings=20, type_vocab_size=2, layer_norm_eps=1e-12,
                     hidden_act="gelu", pad_token_id=0)),
    "roberta": dict(config_class=RobertaConfig, model_class=RobertaModel, seed=5252, scales=[0.025, 0.04, 0.02],
                    position_ids=False, config=dict(
                        vocab_size=64, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=48, max_position_embeddings=24, type_vocab_size=1, layer_norm_eps=1e-5,
                        hidden_act="gelu", pad_token_id=1, bos_token_id=0, eos_token_id=2)),
}
SEQCLS_SEED = 5353
SEQCLS_LABELS = 3
TOKEN_SEED = 5454
TOKEN_TASKS, TOKENS_PER_TASK, TOKEN_LENGTH = 3, 4, 12
EVAL_SEED = 5555
ORACLE_SEQUENCES = 2
OWNED = ("bert", "roberta", "bert_seqcls")


def random_weights(shapes, rng):
    """models.random_base, which knows a LayerNorm by 'norm' in its name: BERT's spell it LayerNorm."""
    lower = {n: n.replace("LayerNorm", "layernorm") for n in shapes}
    drawn = models.random_base({lower[n]: s for n, s in shapes.items()}, rng)
    return {n: drawn[lower[n]] for n in shapes}


def float_shapes(model):
    return {n: tuple(t.shape) for n, t in model.state_dict().items() if t.is_floating_point()}


def save(directory, state, cfg, model_class, position_ids_name=None):
    """save_pretrained of `state`, then (position_ids_name) the int64 arange buffer added to model.safetensors."""
    ckpt_io.save_hf_model(directory, state, cfg, model_class=model_class)
    if position_ids_name:
        path = os.path.join(directory, "model.safetensors")
        tensors = load_file(path)
        tensors[position_ids_name] = torch.arange(cfg.max_position_embeddings, dtype=torch.int64).unsqueeze(0)
        save_file(tensors, path, metadata={"format": "pt"})
    check_loads(directory, state, model_class)


def check_loads(directory, state, model_class):
    """from_pretrained gives exactly the float tensors written, nothing missing or unexpected."""
    model, info = model_class.from_pretrained(directory, output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"], info
    assert all(k.endswith("position_ids") for k in info["unexpected_keys"]), info
    got = {n: t.numpy() for n, t in model.state_dict().items() if t.is_floating_point()}
    assert set(got) == set(state), set(got) ^ set(state)
    for n, v in state.items():
        assert np.array_equal(got[n], v), n
    loaded, _ = ckpt_io.load_checkpoint(directory)
    assert set(loaded) == set(state)


def check_roles(model):
    """tools/reference/arch.py's bert roles agree with the module structure of the transformers model: inside the
    encoder nn.Linear weights are linear (query, key, value sharing attn_in), LayerNorm weights norm_scale, their
    biases shift; embeddings, the pooler and the classifier heads other; every site is one the forward names."""
    import arch
    encoder = bert_features.encoder_of(model)
    sites = set(bert_features.bert_site_names(model.config.num_hidden_layers))
    heads = {id(m) for m in [encoder.pooler] + ([model.classifier] if hasattr(model, "classifier") else [])}
    in_heads = {id(p) for h in model.modules() if id(h) in heads for p in h.parameters()}
    for prefix, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            name = f"{prefix}.{pname}" if prefix else pname
            role, site, parts = arch.classify(name, "bert")
            assert parts == 1 and arch.classify(name) == (role, site, parts), name
            if id(p) in in_heads or isinstance(module, torch.nn.Embedding):
                want = arch.OTHER
            elif isinstance(module, torch.nn.LayerNorm):
                want = arch.NORM if pname == "weight" else arch.SHIFT
            else:
                assert isinstance(module, torch.nn.Linear), name
                want = arch.LINEAR if pname == "weight" else arch.SHIFT
            assert role == want and (site in sites) == (role in (arch.LINEAR, arch.NORM)), (name, role, site)
    for name, _ in model.named_buffers():
        assert arch.classify(name, "bert") == (arch.OTHER, "", 1), name


def write_tokens(root, fixture, pad_id, rng):
    import h5py
    seqs = models.random_token_exemplars(TOKEN_TASKS, TOKENS_PER_TASK, TOKEN_LENGTH,
                                         FIXTURES[fixture]["config"]["vocab_size"], rng)
    with h5py.File(f"{root}/{fixture}/tokens.h5", "w") as f:
        for t, ids in enumerate(seqs, 1):
            ids, mask = models.pad_exemplars(ids, models.PADDING[t - 1], pad_id)
            assert set(np.unique(ids[mask == 0])) == {pad_id} and pad_id not in ids[mask == 1]
            g = f.create_group(f"task{t}")
            g.create_dataset("input_ids", data=ids, track_times=False)
            g.create_dataset("attention_mask", data=mask, track_times=False)


def build(directory, model_class):
    model = model_class.from_pretrained(directory, attn_implementation="eager", dtype=torch.float32)
    return model.eval()


def write_oracle(root, model_path, tokens, group, out, model_class):
    ids, mask = ckpt_io.read_token_exemplars(f"{root}/{tokens}", group, ORACLE_SEQUENCES)
    model = build(f"{root}/{model_path}", model_class)
    check_roles(model)
    rows = bert_features.bert_forward_sites(model, ids, mask)
    sites = bert_features.bert_site_names(model.config.num_hidden_layers)
    assert set(rows) == set(sites) | {"pooled"}
    datasets = {s: rows[s] for s in sites + ["pooled"]}
    datasets["input_ids"], datasets["attention_mask"] = ids, mask
    ckpt_io.write_h5_datasets(f"{root}/{out}", datasets,
                              attrs={"model": model_path, "exemplars": f"{tokens}:/{group}",
                                     "sequences": ORACLE_SEQUENCES})


def write_eval(root):
    """bert/eval.h5 + bert/heads.safetensors: a random 3-class head on transformers' pooled output through
    bert/expert1 of the 4 sequences of bert/tokens.h5:/task1; sequence 2's label moved: 3 of 4 correct."""
    ids, mask = ckpt_io.read_token_exemplars(f"{root}/bert/tokens.h5", "task1", TOKENS_PER_TASK)
    pooled = bert_features.bert_forward_sites(build(f"{root}/bert/expert1", BertModel), ids, mask)["pooled"]
    rng = np.random.default_rng(EVAL_SEED)
    hidden = FIXTURES["bert"]["config"]["hidden_size"]
    weight = rng.normal(0.0, 1.0, (3, hidden)).astype(np.float32)
    bias = rng.normal(0.0, 0.1, 3).astype(np.float32)
    logits = pooled.astype(np.float64) @ weight.T.astype(np.float64) + bias
    top = np.sort(logits, axis=1)
    assert np.all(top[:, -1] - top[:, -2] > 1e-3 * np.abs(top[:, -1])), "a prediction too close to call"
    labels = logits.argmax(axis=1).astype(np.int64)
    labels[2] = (labels[2] + 1) % 3
    ckpt_io.write_h5_datasets(f"{root}/bert/eval.h5",
                              {"task1/test/input_ids": ids, "task1/test/attention_mask": mask,
                               "task1/test/labels": labels},
                              attrs={"model": "bert/expert1", "correct": 3, "sequences": TOKENS_PER_TASK})
    ckpt_io.save_safetensors(f"{root}/bert/heads.safetensors", {"task1.weight": weight, "task1.bias": bias})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "data", "fixtures"))
    root = os.path.normpath(ap.parse_args().out)
    for entry in OWNED:
        shutil.rmtree(os.path.join(root, entry), ignore_errors=True)
    token_rng = np.random.default_rng(TOKEN_SEED)
    for fixture, spec in FIXTURES.items():
        cfg = spec["config_class"](**spec["config"])
        rng = np.random.default_rng(spec["seed"])
        torch.manual_seed(0)
        base = random_weights(float_shapes(spec["model_class"](cfg)), rng)
        experts = models.make_experts(base, spec["scales"], rng)
        buffer = "embeddings.position_ids" if spec["position_ids"] else None
        for name, state in [("base", base)] + [(f"expert{k}", e) for k, e in enumerate(experts, 1)]:
            save(f"{root}/{fixture}/{name}", state, cfg, spec["model_class"], buffer)
        write_tokens(root, fixture, cfg.pad_token_id, token_rng)
        write_oracle(root, f"{fixture}/expert1", f"{fixture}/tokens.h5", "task1", f"{fixture}/oracle_expert1.h5",
                     spec["model_class"])

    # The sequence-classification keys: bert/expert1's encoder and pooler under bert., a random classifier.
    cfg = BertConfig(**FIXTURES["bert"]["config"], num_labels=SEQCLS_LABELS)
    torch.manual_seed(0)
    shapes = float_shapes(BertForSequenceClassification(cfg))
    encoder, _ = ckpt_io.load_checkpoint(f"{root}/bert/expert1")
    heads = random_weights({n: s for n, s in shapes.items() if not n.startswith("bert.")},
                           np.random.default_rng(SEQCLS_SEED))
    state = {n: (encoder[n[len("bert."):]] if n.startswith("bert.") else heads[n]) for n in shapes}
    save(f"{root}/bert_seqcls/model", state, cfg, BertForSequenceClassification, "bert.embeddings.position_ids")
    write_oracle(root, "bert_seqcls/model", "bert/tokens.h5", "task2", "bert_seqcls/oracle.h5",
                 BertForSequenceClassification)
    write_eval(root)
    sizes = {e: sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(root, e)) for f in fs)
             for e in OWNED}
    print("make_random_bert: wrote " + ", ".join(f"{e}/ ({n} bytes)" for e, n in sizes.items()) + f" in {root}")


if __name__ == "__main__":
    main()
