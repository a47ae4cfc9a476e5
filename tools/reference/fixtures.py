"""What data/fixtures/ holds: the random models, exemplars, Fisher files, the forward oracle, and the merge
cases with their expected outputs. Cases are resolved from their configuration exactly as catmerge reads it
(paths relative to data/fixtures/), so a case's expected output depends only on its config and the files.
"""
import json
import os

import numpy as np
import torch
from transformers import CLIPVisionConfig, LlamaForCausalLM

import arch
import ckpt_io
import features as feat
import methods
import models

HF_SEED = 20240611
OPEN_CLIP_SEED = 77
EXEMPLAR_SEED = 5
FISHER_SEED = 11
HF_SCALES = [0.02, 0.035, 0.015, 0.045]    # relative task-vector magnitude per expert
OPEN_CLIP_SCALES = [0.03, 0.02, 0.04]
LLAMA_SEED = 4242
LLAMA_SCALES = [0.025, 0.04, 0.015]
EXEMPLARS_PER_TASK = 4
NUM_TASKS = 4
# llama family with a forward pass (models.FAMILY_FIXTURES): own random stream and task-vector scales each
FAMILY_SEEDS = {"llama_gqa": 9101, "llama3_rope": 9202, "mistral": 9303, "qwen2": 9404}
FAMILY_SCALES = {"llama_gqa": [0.03, 0.02, 0.04], "llama3_rope": [0.025, 0.04, 0.02],
                 "mistral": [0.03, 0.045, 0.02], "qwen2": [0.035, 0.02, 0.03]}
FAMILY_EXEMPLARS = {"llama_gqa": "task", "llama3_rope": "task", "mistral": "task", "qwen2": "padded"}
TOKEN_SEED = 32
TOKEN_TASKS, TOKENS_PER_TASK, TOKEN_LENGTH, TOKEN_VOCAB = 3, 4, 12, 128


# ------------------------------------------------------------------ models and inputs

def write_inputs(root):
    cfg = models.hf_config()
    shapes = models.hf_shapes(cfg)

    rng = np.random.default_rng(HF_SEED)
    base = models.random_base(shapes, rng)
    experts = models.make_experts(base, HF_SCALES, rng)
    ckpt_io.save_hf_model(f"{root}/clip_hf/base", base, cfg)
    for k, e in enumerate(experts, 1):
        shard = "60KB" if k == 2 else None     # expert2: two shards + model.safetensors.index.json
        ckpt_io.save_hf_model(f"{root}/clip_hf/expert{k}", e, cfg, max_shard_size=shard)
    assert sorted(os.listdir(f"{root}/clip_hf/expert2")) == [
        "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "model.safetensors.index.json"], os.listdir(f"{root}/clip_hf/expert2")

    # bf16 copies of base and expert1..3
    ckpt_io.save_hf_model(f"{root}/clip_bf16/base", base, cfg, dtype=torch.bfloat16)
    for k in (1, 2, 3):
        ckpt_io.save_hf_model(f"{root}/clip_bf16/expert{k}", experts[k - 1], cfg, dtype=torch.bfloat16)

    frng = np.random.default_rng(FISHER_SEED)
    for k in range(1, 5):
        ckpt_io.save_safetensors(f"{root}/fisher/expert{k}.safetensors", models.random_fisher(shapes, frng))

    erng = np.random.default_rng(EXEMPLAR_SEED)
    images = models.random_exemplars(NUM_TASKS, EXEMPLARS_PER_TASK, cfg.num_channels, cfg.image_size, erng)
    import h5py
    with h5py.File(f"{root}/exemplars.h5", "w") as f:
        for t, imgs in enumerate(images, 1):
            f.create_group(f"task{t}").create_dataset("pixel_values", data=imgs, track_times=False)

    # open_clip: a different random model, generated under HF names then renamed (fused in_proj, proj^T)
    ocfg = models.open_clip_as_hf_config()
    orng = np.random.default_rng(OPEN_CLIP_SEED)
    obase = models.random_base(models.hf_shapes(ocfg), orng)
    oexperts = models.make_experts(obase, OPEN_CLIP_SCALES, orng)
    layers = ocfg.num_hidden_layers
    os.makedirs(f"{root}/clip_openclip", exist_ok=True)
    ckpt_io.save_safetensors(f"{root}/clip_openclip/base.safetensors", arch.hf_to_open_clip(obase, layers))
    for k, e in enumerate(oexperts, 1):
        ckpt_io.save_safetensors(f"{root}/clip_openclip/expert{k}.safetensors", arch.hf_to_open_clip(e, layers))
    with open(f"{root}/clip_openclip/open_clip_config.json", "w") as f:
        json.dump(models.OPEN_CLIP_CONFIG, f, indent=2)
        f.write("\n")

    write_llama(root)
    for fixture in models.FAMILY_FIXTURES:
        write_family(root, fixture)
    write_tokens(root)


def write_family(root, fixture):
    """<fixture>/base, expert1..3 (models.FAMILY_FIXTURES): random base, experts = base + task vectors
    (float32), saved by the family's *ForCausalLM.save_pretrained in the fixture's dtype."""
    spec = models.FAMILY_FIXTURES[fixture]
    cfg = models.family_config(fixture)
    _, model_cls = models.family_classes(spec["family"])
    rng = np.random.default_rng(FAMILY_SEEDS[fixture])
    base = models.random_base(models.llama_shapes(cfg, model_cls), rng)
    experts = models.make_experts(base, FAMILY_SCALES[fixture], rng)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[spec["dtype"]]
    ckpt_io.save_hf_model(f"{root}/{fixture}/base", base, cfg, dtype=dtype, model_class=model_cls)
    for k, e in enumerate(experts, 1):
        ckpt_io.save_hf_model(f"{root}/{fixture}/expert{k}", e, cfg, dtype=dtype, model_class=model_cls)


def write_tokens(root):
    """tokens.h5: /task1..3/input_ids [4, 12] int64 (no mask) and /padded1..3/input_ids + attention_mask."""
    import h5py
    rng = np.random.default_rng(TOKEN_SEED)
    seqs = models.random_token_exemplars(TOKEN_TASKS, TOKENS_PER_TASK, TOKEN_LENGTH, TOKEN_VOCAB, rng)
    padded = models.random_token_exemplars(TOKEN_TASKS, TOKENS_PER_TASK, TOKEN_LENGTH, TOKEN_VOCAB, rng)
    with h5py.File(f"{root}/tokens.h5", "w") as f:
        for t, ids in enumerate(seqs, 1):
            f.create_group(f"task{t}").create_dataset("input_ids", data=ids, track_times=False)
        for t, ids in enumerate(padded, 1):
            ids, mask = models.pad_exemplars(ids, models.PADDING[t - 1])
            g = f.create_group(f"padded{t}")
            g.create_dataset("input_ids", data=ids, track_times=False)
            g.create_dataset("attention_mask", data=mask, track_times=False)


def write_llama(root):
    """llama/base, expert1..3: a tiny random LlamaForCausalLM (float32, own RNG stream); expert3 sharded."""
    cfg = models.llama_config()
    lrng = np.random.default_rng(LLAMA_SEED)
    base = models.random_base(models.llama_shapes(cfg), lrng)
    experts = models.make_experts(base, LLAMA_SCALES, lrng)
    ckpt_io.save_hf_model(f"{root}/llama/base", base, cfg, model_class=LlamaForCausalLM)
    for k, e in enumerate(experts, 1):
        shard = "50KB" if k == 3 else None     # expert3: two shards + model.safetensors.index.json
        ckpt_io.save_hf_model(f"{root}/llama/expert{k}", e, cfg, max_shard_size=shard,
                              model_class=LlamaForCausalLM)
    files = sorted(n for n in os.listdir(f"{root}/llama/expert3") if n.endswith((".safetensors", ".json")))
    assert [n for n in files if "safetensors" in n] == [
        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "model.safetensors.index.json"], files


# ------------------------------------------------------------------ reading a model as catmerge does

def read_model(root, path, arch_name="clip_vit"):
    """(tensors, dtypes, hf_config, is_open_clip) of a checkpoint path relative to root."""
    full = os.path.join(root, path)
    tensors, dtypes = ckpt_io.load_checkpoint(full)
    if arch_name == "llama":
        assert os.path.isdir(full), full
        return tensors, dtypes, family_config_of(full), False
    assert arch_name == "clip_vit", arch_name
    if os.path.isdir(full):
        return tensors, dtypes, CLIPVisionConfig.from_json_file(os.path.join(full, "config.json")), False
    with open(os.path.join(os.path.dirname(full), "open_clip_config.json")) as f:
        mc = json.load(f)["model_cfg"]
    v = mc["vision_cfg"]
    width = v["width"]
    cfg = models.hf_config(hidden_size=width, num_hidden_layers=v["layers"],
                           num_attention_heads=width // v.get("head_width", 64),
                           intermediate_size=int(width * v.get("mlp_ratio", 4.0)), image_size=v["image_size"],
                           patch_size=v["patch_size"], projection_dim=mc["embed_dim"],
                           hidden_act="quick_gelu" if mc.get("quick_gelu", False) else "gelu",
                           layer_norm_eps=1e-5)
    return tensors, dtypes, cfg, True


def family_config_of(directory):
    """The HF config of a llama-family directory, by its config.json model_type (llama, mistral, qwen2)."""
    with open(os.path.join(directory, "config.json")) as f:
        model_type = json.load(f)["model_type"]
    config_cls, _ = models.family_classes(model_type)
    return config_cls.from_pretrained(directory)


def vision_only(tensors, arch_name="clip_vit"):
    """The tensors the architecture merges and writes (clip_vit: the vision tower)."""
    return {n: v for n, v in tensors.items() if arch.classify(n, arch_name) is not None}


def as_hf(tensors, cfg, is_open_clip):
    return arch.open_clip_to_hf(tensors, cfg.num_hidden_layers) if is_open_clip else tensors


def task_features(root, case_cfg, base, experts, cfg, is_open_clip, double=False, force_expert=False):
    """Per-task site statistics: task k's first E exemplars through task k's feature model.

    double: instead of the transformers float32 oracle, the independent forward (open_clip layout for
    clip_vit, features.llama_reference_sites for llama) entirely in float64."""
    llama = case_cfg["model"]["arch"] == "llama"
    fcfg = case_cfg.get("features", {})
    count = int(fcfg.get("exemplars", 2))
    model_kind = "expert" if force_expert else fcfg.get("model", default_feature_model(case_cfg["method"]))
    K = len(experts)
    alphas = methods._alphas(case_cfg["method"], K, 0.3)
    stats = []
    for k, (spec, theta) in enumerate(zip(case_cfg["experts"], experts)):
        if model_kind == "expert":
            weights = theta
        else:
            assert model_kind == "scaled"
            weights = {n: (base[n] + np.float32(alphas[k]) * (theta[n] - base[n]).astype(np.float32)
                           ).astype(np.float32) for n in base}
        file, group = spec["exemplars"].split(":")
        if llama:
            ids, mask = ckpt_io.read_token_exemplars(os.path.join(root, file), group, count)
            if not double:
                rows = feat.llama_forward_sites(feat.build_llama_model(weights, cfg), ids, mask)
            else:
                rows = feat.llama_reference_sites(weights, cfg, ids, mask, double=True)
            stats.append(feat.site_stats(rows))
            continue
        pixels = ckpt_io.read_exemplars(os.path.join(root, file), group, count)
        if not double:   # the oracle: transformers, float32
            model = feat.build_hf_model(as_hf(weights, cfg, is_open_clip), cfg)
            rows = feat.hf_forward_sites(model, pixels)
        else:            # sensitivity probe: the independent open_clip-layout forward entirely in float64
            oc = weights if is_open_clip else arch.hf_to_open_clip(weights, cfg.num_hidden_layers)
            rows = feat.open_clip_forward_sites(oc, cfg.num_hidden_layers, cfg.num_attention_heads,
                                                cfg.layer_norm_eps, cfg.hidden_act, pixels, double=True)
        stats.append(feat.site_stats(rows))
    return stats


def default_feature_model(method):
    """features.model when the configuration does not give it: `scaled` for CAT's released variant (METHODS.md
    "CAT as released"), else `expert`."""
    if method["name"] == "cat" and method.get("variant", "paper") == "released":
        return "scaled"
    return "expert"


def merge_case(root, case_cfg, double_features=False, diag=None):
    """The reference merge of one configuration. Returns (merged float32 tensors, output dtypes)."""
    arch_name = case_cfg["model"]["arch"]
    base_all, base_dtypes, cfg, is_oc = read_model(root, case_cfg["model"]["base"], arch_name)
    base = vision_only(base_all, arch_name)
    experts = [vision_only(read_model(root, e["path"], arch_name)[0], arch_name) for e in case_cfg["experts"]]
    for e in experts:
        assert set(e) == set(base)
    params = {k: v for k, v in case_cfg["method"].items() if k != "name"}
    name = case_cfg["method"]["name"]
    if name == "weight_average":
        merged = methods.weight_average(base, experts, params)
    elif name == "task_arithmetic":
        merged = methods.task_arithmetic(base, experts, params)
    elif name == "ties":
        merged = methods.ties(base, experts, params, stats=diag)
    elif name == "dare":
        merged = methods.dare(base, experts, params, stats=diag)
    elif name == "pcb":
        merged = methods.pcb(base, experts, params)
    elif name == "fisher":
        fishers = [ckpt_io.load_checkpoint(os.path.join(root, e["fisher"]))[0] for e in case_cfg["experts"]]
        merged = methods.fisher(base, experts, params, fishers)
    elif name == "regmean":
        fs = task_features(root, case_cfg, base, experts, cfg, is_oc, double_features, force_expert=True)
        merged = methods.regmean(base, experts, params, fs)
    elif name == "cat":
        fs = task_features(root, case_cfg, base, experts, cfg, is_oc, double_features)
        merged = methods.cat(base, experts, params, fs, diag=diag)
    else:
        raise ValueError(name)
    assert set(merged) == set(base)
    out_dtype = case_cfg.get("output", {}).get("dtype", "base")
    dtypes = {n: (base_dtypes[n] if out_dtype == "base" else out_dtype.upper()) for n in merged}
    return merged, dtypes


# ------------------------------------------------------------------ the cases

ARCH_OF = {"clip_hf": "clip_vit", "clip_bf16": "clip_vit", "clip_openclip": "clip_vit", "llama": "llama"}
ARCH_OF.update({fixture: "llama" for fixture in models.FAMILY_FIXTURES})


def _exemplar_group(model, k):
    if model in FAMILY_EXEMPLARS:
        return f"tokens.h5:/{FAMILY_EXEMPLARS[model]}{k}"
    return f"exemplars.h5:/task{k}"


def _experts(model, count, exemplars=False, fisher=False):
    out = []
    for k in range(1, count + 1):
        path = f"clip_openclip/expert{k}.safetensors" if model == "clip_openclip" else f"{model}/expert{k}"
        e = {"name": f"task{k}", "path": path}
        if exemplars:
            e["exemplars"] = _exemplar_group(model, k)
        if fisher:
            e["fisher"] = f"fisher/expert{k}.safetensors"
        out.append(e)
    return out


def _case(name, model, count, method, features=None, dtype="base"):
    needs = method["name"] in ("cat", "regmean")
    base = "clip_openclip/base.safetensors" if model == "clip_openclip" else f"{model}/base"
    cfg = {"model": {"arch": ARCH_OF[model], "base": base},
           "experts": _experts(model, count, exemplars=needs, fisher=method["name"] == "fisher"),
           "method": method}
    if features is not None:
        cfg["features"] = features
    cfg["output"] = {"path": f"out/{name}.h5", "dtype": dtype}
    cfg["runtime"] = {"backend": "cpu", "threads": 1}
    return {"name": name, "config": cfg, "expected": f"expected/{name}.h5"}


def cases():
    hf = "clip_hf"
    return [
        # every method with its defaults, 4 experts
        _case("hf_weight_average", hf, 4, {"name": "weight_average"}),
        _case("hf_task_arithmetic", hf, 4, {"name": "task_arithmetic"}),
        _case("hf_ties", hf, 4, {"name": "ties"}),
        _case("hf_dare", hf, 4, {"name": "dare"}),
        _case("hf_pcb", hf, 4, {"name": "pcb"}),
        _case("hf_regmean", hf, 4, {"name": "regmean"}),
        _case("hf_fisher", hf, 4, {"name": "fisher"}),
        _case("hf_cat", hf, 4, {"name": "cat"}),
        # hyperparameters
        _case("hf_task_arithmetic_alphas", hf, 4, {"name": "task_arithmetic", "alphas": [0.2, 0.5, 0.1, 0.4]}),
        _case("hf_ties_tensor", hf, 4, {"name": "ties", "scope": "tensor", "density": 0.5, "alpha": 0.7}),
        _case("hf_dare_ties", hf, 4, {"name": "dare", "combine": "ties", "p": 0.3, "seed": 7, "alpha": 0.5}),
        _case("hf_pcb_tensor", hf, 4, {"name": "pcb", "scope": "tensor", "ratio": 0.2, "alpha": 0.8}),
        _case("hf_regmean_r08_e3", hf, 4, {"name": "regmean", "reduction": 0.8}, features={"exemplars": 3}),
        _case("hf_cat_scaled", hf, 4, {"name": "cat", "alpha": 0.5, "c": 2, "lambda": 2.0, "c_norm": 2,
                                       "lambda_norm": 1.0, "c_shift": 4},
              features={"exemplars": 3, "model": "scaled"}),
        _case("hf_cat_alphas_scaled", hf, 4, {"name": "cat", "alphas": [0.3, 0.2, 0.4, 0.25]},
              features={"exemplars": 2, "model": "scaled"}),
        _case("hf_cat_single", hf, 1, {"name": "cat"}),
        # output dtypes
        _case("hf_cat_f16", hf, 4, {"name": "cat"}, dtype="f16"),
        _case("bf16_task_arithmetic", "clip_bf16", 3, {"name": "task_arithmetic"}),
        # open_clip layout (fused in_proj = 3 units)
        _case("openclip_cat", "clip_openclip", 3, {"name": "cat"}),
        _case("openclip_ties_tensor", "clip_openclip", 3, {"name": "ties", "scope": "tensor"}),
        _case("openclip_dare", "clip_openclip", 3, {"name": "dare"}),
        _case("openclip_regmean", "clip_openclip", 3, {"name": "regmean"}),
        # llama (HF LlamaForCausalLM names; no forward pass yet, so no cat / regmean); expert3 is sharded
        _case("llama_task_arithmetic", "llama", 3, {"name": "task_arithmetic", "alpha": 0.4}),
        _case("llama_ties", "llama", 3, {"name": "ties"}),
        _case("llama_ties_tensor", "llama", 3, {"name": "ties", "scope": "tensor", "density": 0.3}),
        _case("llama_dare", "llama", 3, {"name": "dare", "p": 0.4, "seed": 3}),
        _case("llama_pcb", "llama", 3, {"name": "pcb"}),
        _case("llama_weight_average", "llama", 3, {"name": "weight_average"}),
    ] + family_cases() + [
        # METHODS.md's new TIES and CAT rules. bf16 task vectors have few distinct magnitudes: the exact-k trim
        # splits ties at the threshold (across units with scope model) and many sums of nonzero entries are 0
        # (the majority sign); float32 output, so that an entry kept or not shows beyond the tolerance.
        _case("hf_ties_sum", hf, 4, {"name": "ties", "disjoint": "sum"}),
        _case("bf16_ties", "clip_bf16", 3, {"name": "ties"}, dtype="f32"),
        _case("bf16_ties_tensor", "clip_bf16", 3, {"name": "ties", "scope": "tensor", "density": 0.3}, dtype="f32"),
        _case("bf16_dare_ties_sum", "clip_bf16", 3, {"name": "dare", "combine": "ties", "p": 0.3, "seed": 5,
                                                     "disjoint": "sum"}, dtype="f32"),
        # CAT as released (features.model left out: scaled). CLIP with c 5, lambda 10 and 4 exemplars: a third of
        # the bases take eigenvalues <= 0; the llama_gqa fixture with the defaults.
        _case("hf_cat_released", hf, 4, {"name": "cat", "variant": "released", "c": 5, "lambda": 10.0},
              features={"exemplars": 4}),
        _case("llama_gqa_cat_released", "llama_gqa", 3, {"name": "cat", "variant": "released"}),
    ]


# cat_scaled hyperparameters per llama-family fixture (alpha 0.5 and explicit c / lambda / c_norm /
# lambda_norm / c_shift)
FAMILY_CAT_SCALED = {
    "llama_gqa": {"name": "cat", "alpha": 0.5, "c": 2, "lambda": 3.0, "c_norm": 4, "lambda_norm": 2.0,
                  "c_shift": 2},
    "llama3_rope": {"name": "cat", "alpha": 0.5, "c": 4, "lambda": 2.0, "c_norm": 2, "lambda_norm": 3.0,
                    "c_shift": 2},
    "mistral": {"name": "cat", "alpha": 0.5, "c": 2, "lambda": 4.0, "c_norm": 3, "lambda_norm": 1.0,
                "c_shift": 2},
    "qwen2": {"name": "cat", "alpha": 0.5, "c": 2, "lambda": 2.0, "c_norm": 2, "lambda_norm": 2.0, "c_shift": 4},
}


def family_cases():
    """The llama-family forward cases: per fixture cat (defaults), cat_scaled, regmean (defaults)."""
    out = []
    for fixture in models.FAMILY_FIXTURES:
        out += [_case(f"{fixture}_cat", fixture, 3, {"name": "cat"}),
                _case(f"{fixture}_cat_scaled", fixture, 3, FAMILY_CAT_SCALED[fixture], features={"model": "scaled"}),
                _case(f"{fixture}_regmean", fixture, 3, {"name": "regmean"})]
    return out


# ------------------------------------------------------------------ the forward oracle

def write_family_forward_oracle(root, fixture):
    """forward/<fixture>_expert1.h5: the first 2 sequences of the fixture's first exemplar group through
    expert1 (transformers float32): one dataset per site, 'pooled', and the input_ids / attention_mask used."""
    path = f"{fixture}/expert1"
    tensors, _, cfg, _ = read_model(root, path, "llama")
    group = _exemplar_group(fixture, 1)
    file, name = group.split(":")
    ids, mask = ckpt_io.read_token_exemplars(os.path.join(root, file), name, 2)
    weights = vision_only(tensors, "llama")
    rows = feat.llama_forward_sites(feat.build_llama_model(weights, cfg), ids, mask)
    sites = feat.llama_site_names(cfg.num_hidden_layers)
    assert set(rows) == set(sites) | {"pooled"}
    datasets = {s: rows[s] for s in sites + ["pooled"]}
    datasets["input_ids"], datasets["attention_mask"] = ids, mask
    ckpt_io.write_h5_datasets(f"{root}/forward/{fixture}_expert1.h5", datasets,
                              attrs={"model": path, "exemplars": group, "sequences": 2})
    return rows, weights, cfg, ids, mask


EVAL_SEED = 31


def write_family_eval(root):
    """eval/qwen2_eval.h5 + eval/qwen2_heads.safetensors: `catmerge eval` on a token model. Task 'padded', split
    'test': the 4 padded sequences of tokens.h5:/padded1; a random 3-class head on the pooled output (the final
    norm of each sequence's last real token, from transformers) through qwen2/expert1. The labels are the head's
    own predictions, but sequence 1's is moved to another class, so 3 of 4 are correct (attribute 'correct')."""
    tensors, _, cfg, _ = read_model(root, "qwen2/expert1", "llama")
    ids, mask = ckpt_io.read_token_exemplars(os.path.join(root, "tokens.h5"), "padded1", 4)
    pooled = feat.llama_forward_sites(feat.build_llama_model(vision_only(tensors, "llama"), cfg), ids, mask)["pooled"]
    rng = np.random.default_rng(EVAL_SEED)
    weight = rng.normal(0.0, 1.0, (3, cfg.hidden_size)).astype(np.float32)
    bias = rng.normal(0.0, 0.1, 3).astype(np.float32)
    logits = pooled.astype(np.float64) @ weight.T.astype(np.float64) + bias
    top = np.sort(logits, axis=1)
    assert np.all(top[:, -1] - top[:, -2] > 1e-3 * np.abs(top[:, -1])), "a prediction too close to call"
    labels = logits.argmax(axis=1).astype(np.int64)
    labels[1] = (labels[1] + 1) % 3
    ckpt_io.write_h5_datasets(f"{root}/eval/qwen2_eval.h5",
                              {"padded/test/input_ids": ids, "padded/test/attention_mask": mask,
                               "padded/test/labels": labels},
                              attrs={"model": "qwen2/expert1", "correct": 3, "sequences": 4})
    ckpt_io.save_safetensors(f"{root}/eval/qwen2_heads.safetensors", {"padded.weight": weight, "padded.bias": bias})


def write_forward_oracle(root, which):
    if which == "clip_hf":
        path = "clip_hf/expert1"
    else:
        path = "clip_openclip/expert1.safetensors"
    tensors, _, cfg, is_oc = read_model(root, path)
    pixels = ckpt_io.read_exemplars(f"{root}/exemplars.h5", "/task1", 2)
    rows = feat.hf_forward_sites(feat.build_hf_model(as_hf(vision_only(tensors), cfg, is_oc), cfg), pixels)
    expected_sites = feat.site_names(cfg.num_hidden_layers)
    assert set(rows) == set(expected_sites) | {"pooled", "image_embeds"}
    datasets = {s: rows[s] for s in expected_sites + ["pooled", "image_embeds"]}
    ckpt_io.write_h5_datasets(f"{root}/forward/{which}_expert1.h5", datasets,
                              attrs={"model": path, "exemplars": "exemplars.h5:/task1", "images": 2})
    return rows, tensors, cfg, is_oc, pixels
