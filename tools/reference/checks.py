"""Self-checks run by make_fixtures.py; each returns a summary line or raises AssertionError."""
import copy
import math
import os
import tempfile

import h5py
import numpy as np
import torch
from transformers import CLIPVisionModelWithProjection

import arch
import ckpt_io
import features as feat
import fixtures
import models


def rel_err(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))


def check_inputs(root):
    """Saved checkpoints load back (transformers and our reader agree, incl. shards and bf16 rounding)."""
    hf_names = None
    for sub in ("clip_hf/base", "clip_hf/expert1", "clip_hf/expert2", "clip_hf/expert3", "clip_hf/expert4",
                "clip_bf16/base", "clip_bf16/expert1", "clip_bf16/expert2", "clip_bf16/expert3"):
        ours, dtypes = ckpt_io.load_checkpoint(f"{root}/{sub}")
        model = CLIPVisionModelWithProjection.from_pretrained(f"{root}/{sub}")
        theirs = {k: v.to(torch.float32).numpy() for k, v in model.state_dict().items()
                  if v.dtype.is_floating_point}
        assert set(ours) == set(theirs), sub
        for k in ours:
            assert np.array_equal(ours[k], theirs[k]), (sub, k)
        want = "BF16" if sub.startswith("clip_bf16") else "F32"
        assert set(dtypes.values()) == {want}, (sub, set(dtypes.values()))
        hf_names = hf_names or {k: v.shape for k, v in ours.items()}
        if sub.startswith("clip_bf16"):
            f32, _ = ckpt_io.load_checkpoint(f"{root}/{sub.replace('clip_bf16', 'clip_hf')}")
            for k in ours:   # torch's bf16 cast == our round-to-nearest-even
                assert np.array_equal(ours[k], ckpt_io.bf16_bits_to_f32(ckpt_io.f32_to_bf16_bits(f32[k]))), k
    for k in range(1, 5):
        F, _ = ckpt_io.load_checkpoint(f"{root}/fisher/expert{k}.safetensors")
        assert {n: v.shape for n, v in F.items()} == hf_names
        assert all((v > 0).all() for v in F.values())
    with h5py.File(f"{root}/exemplars.h5", "r") as f:
        assert sorted(f) == ["task1", "task2", "task3", "task4"]
        for t in f:
            assert f[t]["pixel_values"].shape == (4, 3, 16, 16) and f[t]["pixel_values"].dtype == np.float32
    oc, _ = ckpt_io.load_checkpoint(f"{root}/clip_openclip/base.safetensors")
    assert all(arch.classify(n) is not None for n in oc)
    assert oc["visual.transformer.resblocks.0.attn.in_proj_weight"].shape == (96, 32)
    assert oc["visual.proj"].shape == (32, 16)
    assert oc["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape == (128, 32)
    check_llama_inputs(root)
    check_family_inputs(root)
    check_tokens(root)


def check_llama_inputs(root):
    """llama/: every directory (single file and sharded) loads through LlamaForCausalLM.from_pretrained to
    exactly the tensors we read, all F32; every tensor has a llama role (and no clip_vit one)."""
    from transformers import LlamaForCausalLM
    names = None
    for sub in ("llama/base", "llama/expert1", "llama/expert2", "llama/expert3"):
        ours, dtypes = ckpt_io.load_checkpoint(f"{root}/{sub}")
        model = LlamaForCausalLM.from_pretrained(f"{root}/{sub}")
        theirs = {k: v.to(torch.float32).numpy() for k, v in model.state_dict().items()
                  if v.dtype.is_floating_point}
        assert set(ours) == set(theirs), sub
        for k in ours:
            assert np.array_equal(ours[k], theirs[k]), (sub, k)
        assert set(dtypes.values()) == {"F32"}, (sub, set(dtypes.values()))
        shapes = {k: v.shape for k, v in ours.items()}
        assert names is None or shapes == names, sub
        names = shapes
        for k in ours:
            assert arch.classify(k, "llama") is not None and arch.classify(k, "clip_vit") is None, k
        c = model.config
        assert (c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads,
                c.num_key_value_heads, c.vocab_size, c.tie_word_embeddings) == (32, 48, 2, 4, 2, 64, False)
    assert names["model.layers.0.self_attn.k_proj.weight"] == (16, 32)       # 2 kv heads of 8
    assert names["lm_head.weight"] == (64, 32)
    assert os.path.exists(f"{root}/llama/expert3/model.safetensors.index.json")
    check_llama_roles()


def check_llama_roles():
    """The llama role table against the module structure of transformers' own models (independent of names):
    nn.Linear weights are linear (lm_head: other), their biases shift, RMSNorm weights norm_scale, embeddings
    other; linear maps fed by the same tensor share a feature site. Llama, Mistral and Qwen2 (q/k/v biases)."""
    from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config,
                              Qwen2ForCausalLM)
    small = dict(hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, vocab_size=32, tie_word_embeddings=False)
    for cls, cfg_cls in ((LlamaForCausalLM, LlamaConfig), (MistralForCausalLM, MistralConfig),
                         (Qwen2ForCausalLM, Qwen2Config)):
        with torch.device("meta"):
            model = cls(cfg_cls(**small))
        seen = set()
        for mname, mod in model.named_modules():
            for pname, _ in mod.named_parameters(recurse=False):
                full = f"{mname}.{pname}"
                role, site, parts = arch.classify(full, "llama")
                assert parts == 1
                if isinstance(mod, torch.nn.Embedding) or mname == "lm_head":
                    want = arch.OTHER
                elif isinstance(mod, torch.nn.Linear):
                    want = arch.LINEAR if pname == "weight" else arch.SHIFT
                else:
                    assert type(mod).__name__.endswith("RMSNorm") and pname == "weight", (full, type(mod))
                    want = arch.NORM
                assert role == want, (cls.__name__, full, role, want)
                assert (site != "") == (role in (arch.LINEAR, arch.NORM)), full
                seen.add(full)
        assert seen == {n for n, _ in model.named_parameters()}
        biases = sorted(n for n in seen if arch.classify(n)[0] == arch.SHIFT)
        if cls is Qwen2ForCausalLM:
            assert len(biases) == 6 and all("_proj.bias" in b for b in biases), biases
        else:
            assert not biases, biases
        for i in range(2):
            p = f"model.layers.{i}."
            sites = {q: arch.classify(p + q + ".weight")[1] for q in
                     ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                      "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm",
                      "post_attention_layernorm")}
            assert sites == {"self_attn.q_proj": p[6:] + "attn_in", "self_attn.k_proj": p[6:] + "attn_in",
                             "self_attn.v_proj": p[6:] + "attn_in", "self_attn.o_proj": p[6:] + "attn_out",
                             "mlp.gate_proj": p[6:] + "mlp_in", "mlp.up_proj": p[6:] + "mlp_in",
                             "mlp.down_proj": p[6:] + "mlp_act", "input_layernorm": p[6:] + "ln1",
                             "post_attention_layernorm": p[6:] + "ln2"}, sites


def check_forward(rows, tensors, cfg, is_oc, pixels):
    """The forward oracle agrees with a float64 HF forward and with an independent open_clip-layout forward."""
    vision = fixtures.vision_only(tensors)
    hf_state = fixtures.as_hf(vision, cfg, is_oc)
    rows64 = feat.hf_forward_sites(feat.build_hf_model(hf_state, cfg, double=True), pixels)
    oc_state = vision if is_oc else arch.hf_to_open_clip(vision, cfg.num_hidden_layers)
    oc64 = feat.open_clip_forward_sites(oc_state, cfg.num_hidden_layers, cfg.num_attention_heads,
                                        cfg.layer_norm_eps, cfg.hidden_act, pixels, double=True)
    # transformers' eager attention takes its softmax in float32 even in a float64 model, hence 1e-6.
    worst32, worst64 = 0.0, 0.0
    for site in rows:
        assert rows[site].shape == rows64[site].shape == oc64[site].shape, site
        worst32 = max(worst32, rel_err(rows[site], oc64[site]))
        worst64 = max(worst64, rel_err(rows64[site], oc64[site]))
    assert worst32 < 1e-5, worst32
    assert worst64 < 1e-6, worst64
    kind = "open_clip" if is_oc else "hf"
    return (f"forward {kind}: {len(rows)} datasets; HF float32 oracle vs independent open_clip-layout "
            f"forward in float64 {worst32:.1e} (HF float64: {worst64:.1e})")


def check_case(root, case, merged, diag):
    cfg = case["config"]
    m = cfg["method"]
    name = m["name"]
    notes = []
    if name == "ties":
        density = m.get("density", 0.2)
        kept, nonzero, sizes = np.array(diag["kept"]), np.array(diag["nonzero"]), np.array(diag["size"])
        want = np.array([math.floor(d * density) for d in sizes])      # exactly k per task and scope
        assert np.array_equal(kept, np.repeat(want[:, None], kept.shape[1], axis=1)), (kept, want)
        frac = nonzero.sum(0) / sizes.sum()
        notes.append(f"kept exactly floor(d*{density}) per task and scope ({len(sizes)} scopes), nonzero "
                     f"{np.round(frac, 4).tolist()}; {diag['split_ties']} trims split a tie, "
                     f"{diag['zero_sums']} sums of nonzero entries are 0")
        if cfg["experts"][0]["path"].startswith("clip_bf16"):   # the cases of the tie and zero-sum rules
            assert diag["split_ties"] > 0 and diag["zero_sums"] > 0, diag
    if name == "dare":
        p = m.get("p", 0.5)
        assert abs(diag["kept_fraction"] - (1 - p)) < 0.01, diag["kept_fraction"]
        notes.append(f"kept {diag['kept_fraction']:.4f} (1-p = {1 - p})")
        if "majority" in diag:
            notes.append(f"majority sign {diag['majority']:+d} where {diag['zero_sums']} sums of nonzero entries are 0")
    if name == "cat" and len(cfg["experts"]) > 1:
        c = m.get("c", 3)
        lin = diag["linear"]
        for d in lin:
            if d["released"]:   # c vectors whatever their sign: the top one clear of 0, the c-th of the next
                assert abs(d["top_rel"]) > 1e-6 and abs(d["ec_rel"]) > 1e-6, d
                assert d["top_rel"] < 0 or d["gap_any"] > 1e-3, d
                continue
            assert d["positive"] >= c, d
            assert d["ec_rel"] > 1e-6, d
            assert d["gap_rel"] > 1e-3, d
        norm_min = min(d["margin_rel"] for d in diag["norm"])
        shift_min = min((d["margin_rel"] for d in diag["shift"]), default=float("inf"))   # no shift: llama
        assert norm_min > 1e-4 and shift_min > 1e-5, (norm_min, shift_min)
        if m.get("variant") == "released":
            notes.append(f"released: {sum(d['positive'] < c for d in lin)} of {len(lin)} bases take eigenvalues <= 0, "
                         f"min gap (e_c-e_c+1)/max|e_c|,|e_c+1| {min(d['gap_any'] for d in lin):.1e}")
        notes.append(f"{len(lin)} G_k: min #pos eig {min(d['positive'] for d in lin)}, "
                     f"min e_c/e_max {min(d['ec_rel'] for d in lin):.1e}, "
                     f"min gap (e_c-e_c+1)/e_c {min(d['gap_rel'] for d in lin):.1e}; "
                     f"mask margins norm {norm_min:.1e} shift {shift_min:.1e}")
    if name in ("cat", "regmean"):
        # The expected output must not depend on the forward's float32 rounding: redo it with float64 features.
        merged64, _ = fixtures.merge_case(root, cfg, double_features=True)
        worst = max(rel_err(merged[n], merged64[n]) for n in merged)
        assert worst < 1e-6, worst
        notes.append(f"float64-feature rerun {worst:.1e}")
    return f"case {case['name']}: " + "; ".join(notes) if notes else f"case {case['name']}"


def check_layout_equivalence(root, cases):
    """open_clip cases merged from the same weights under HF names (q/k/v separate) give the same result."""
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(os.path.abspath(f"{root}/exemplars.h5"), f"{tmp}/exemplars.h5")
        paths = {"clip_openclip/base.safetensors": "hfconv/base"}
        for k in (1, 2, 3):
            paths[f"clip_openclip/expert{k}.safetensors"] = f"hfconv/expert{k}"
        for src, dst in paths.items():
            t, _, cfg, is_oc = fixtures.read_model(root, src)
            ckpt_io.save_hf_model(f"{tmp}/{dst}", fixtures.as_hf(t, cfg, is_oc), cfg)
        for case in cases:
            cfg = case["config"]
            if not cfg["model"]["base"].startswith("clip_openclip") or cfg["method"]["name"] == "dare":
                continue   # DARE keys its masks by tensor name, so the layouts differ by design
            conv = copy.deepcopy(cfg)
            conv["model"]["base"] = paths[conv["model"]["base"]]
            for e in conv["experts"]:
                e["path"] = paths[e["path"]]
            got, _ = fixtures.merge_case(tmp, conv)
            got = arch.hf_to_open_clip(got, 2)
            with h5py.File(f"{root}/{case['expected']}", "r") as f:
                worst = max(rel_err(got[n], f[n][()]) for n in f)
                assert set(f) == set(got)
            assert worst < 1e-6, (case["name"], worst)
            lines.append(f"layout check {case['name']}: HF-named merge vs open_clip merge {worst:.1e}")
    return lines


# ------------------------------------------------------------------ llama family with a forward pass

def check_family_inputs(root):
    """llama_gqa/ llama3_rope/ mistral/ qwen2/: every directory loads through its *ForCausalLM.from_pretrained
    to exactly the tensors we read (tied: the checkpoint has no lm_head.weight, transformers' lm_head is the
    embedding); the stored dtype and the config are the ones asked for; every tensor has a llama role; every
    task vector (Qwen2's q/k/v biases included) is nonzero."""
    for fixture, spec in models.FAMILY_FIXTURES.items():
        _, model_cls = models.family_classes(spec["family"])
        base = None
        for sub in ["base"] + [f"expert{k}" for k in (1, 2, 3)]:
            d = f"{root}/{fixture}/{sub}"
            ours, dtypes = ckpt_io.load_checkpoint(d)
            model = model_cls.from_pretrained(d, dtype=torch.float32)
            theirs = {k: v.numpy() for k, v in model.state_dict().items() if v.dtype.is_floating_point}
            c = model.config
            if c.tie_word_embeddings:
                assert "lm_head.weight" not in ours, (d, "tied checkpoint holds lm_head.weight")
                assert model.lm_head.weight is model.model.embed_tokens.weight
                theirs.pop("lm_head.weight")
            else:
                assert "lm_head.weight" in ours
            assert set(ours) == set(theirs), (d, set(ours) ^ set(theirs))
            for k in ours:
                assert np.array_equal(ours[k], theirs[k]), (d, k)
                assert arch.classify(k, "llama") is not None and arch.classify(k, "clip_vit") is None, k
            want = {"float32": "F32", "bfloat16": "BF16"}[spec["dtype"]]
            assert set(dtypes.values()) == {want}, (d, set(dtypes.values()))
            assert type(model).__name__ == model_cls.__name__ and c.model_type == spec["family"]
            for key, value in spec["config"].items():
                assert getattr(c, key) == value, (d, key, getattr(c, key), value)
            biases = [k for k in ours if k.endswith("_proj.bias")]
            assert len(biases) == (6 if spec["family"] == "qwen2" else 0), (d, biases)
            if base is None:
                base = ours
            else:
                assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in base.items()}
                for k in ours:
                    assert np.any(ours[k] != base[k]), (d, k, "zero task vector")


def check_tokens(root):
    """tokens.h5: /task1..3 input_ids int64 [4, 12] in [0, 128), no mask, distributions that differ;
    /padded1..3 input_ids + attention_mask: right and left padding, 2..6 pad tokens, one sequence unpadded,
    pad id 0 exactly where the mask is 0, the first two sequences of each group padded on both sides."""
    with h5py.File(f"{root}/tokens.h5", "r") as f:
        assert sorted(f) == ["padded1", "padded2", "padded3", "task1", "task2", "task3"], sorted(f)
        hist = []
        for t in (1, 2, 3):
            g = f[f"task{t}"]
            assert sorted(g) == ["input_ids"] and g["input_ids"].dtype == np.int64
            ids = g["input_ids"][()]
            assert ids.shape == (4, 12) and ids.min() >= 0 and ids.max() < 128
            hist.append(np.bincount(ids.reshape(-1), minlength=128) / ids.size)
        for a in range(3):
            for b in range(a):
                assert 0.5 * np.abs(hist[a] - hist[b]).sum() > 0.5, (a, b)   # total variation distance
        for t in (1, 2, 3):
            g = f[f"padded{t}"]
            assert sorted(g) == ["attention_mask", "input_ids"]
            ids, mask = g["input_ids"][()], g["attention_mask"][()]
            assert ids.dtype == mask.dtype == np.int64 and ids.shape == mask.shape == (4, 12)
            assert ids.min() >= 0 and ids.max() < 128 and set(np.unique(mask)) == {0, 1}
            assert np.array_equal(ids == 0, mask == 0)
            sides = []
            for m in mask:
                pads = int((m == 0).sum())
                assert pads == 0 or 2 <= pads <= 6, m
                real = np.flatnonzero(m)
                assert real[-1] - real[0] + 1 == len(real), m       # one contiguous run of real tokens
                sides.append(None if pads == 0 else ("right" if m[0] == 1 else "left"))
            assert None in sides and "left" in sides and "right" in sides, sides
            assert {sides[0], sides[1]} == {"left", "right"}, sides


def _family_model(root, fixture, sub="expert1"):
    tensors, _, cfg, _ = fixtures.read_model(root, f"{fixture}/{sub}", "llama")
    return fixtures.vision_only(tensors, "llama"), cfg


def check_family_rules(root):
    """What transformers does, checked where the C++ side must match it:
    - llama3 rope (llama3_rope/): transformers' inv_freq equals our float64 formula (features.rope_inv_freq)
      to float32 rounding; at head_dim 16 its frequencies are unchanged, smoothed AND scaled (each kind
      present); and the rope type matters (the default-rope forward differs).
    - sliding window (mistral/): the eager attention weights are exactly 0 unless j <= i, i - j < 5 and key j
      is a real token, and > 0 where allowed; on the unpadded and the padded exemplars; and the window matters.
    - Qwen2 (qwen2/): no sliding window, q/k/v biases used (zeroing them changes the forward)."""
    lines = []
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    # llama3 rope
    weights, cfg = _family_model(root, "llama3_rope")
    hd = cfg.head_dim
    rot = LlamaRotaryEmbedding(cfg)
    theirs = rot.inv_freq.numpy().astype(np.float64)
    ours, kinds = feat.rope_inv_freq(cfg.rope_parameters, hd)
    default, _ = feat.rope_inv_freq({"rope_type": "default", "rope_theta": cfg.rope_parameters["rope_theta"]}, hd)
    assert rel_err(theirs, ours) < 1e-6 and np.all(np.abs(theirs / ours - 1) < 1e-6), (theirs, ours)
    counts = {k: kinds.count(k) for k in ("unchanged", "smoothed", "scaled")}
    assert all(v > 0 for v in counts.values()), counts
    factor = cfg.rope_parameters["factor"]
    for z, k in enumerate(kinds):
        if k == "unchanged":
            assert ours[z] == default[z]
        elif k == "scaled":
            assert abs(ours[z] / (default[z] / factor) - 1) < 1e-15
        else:
            assert default[z] / factor < ours[z] < default[z], z
    ids, mask = ckpt_io.read_token_exemplars(f"{root}/tokens.h5", "/task1", 4)
    rows = feat.llama_forward_sites(feat.build_llama_model(weights, cfg), ids, mask)
    cfg_default = copy.deepcopy(cfg)
    cfg_default.rope_parameters = {"rope_type": "default", "rope_theta": cfg.rope_parameters["rope_theta"]}
    rows_default = feat.llama_forward_sites(feat.build_llama_model(weights, cfg_default), ids, mask)
    rope_effect = rel_err(rows_default["final.norm"], rows["final.norm"])
    assert rope_effect > 1e-3, rope_effect
    lines.append(f"rope llama3 (head_dim {hd}, theta {cfg.rope_parameters['rope_theta']:g}, original "
                 f"{cfg.rope_parameters['original_max_position_embeddings']}): {counts}; transformers' inv_freq vs "
                 f"float64 formula {rel_err(theirs, ours):.1e}; default rope instead moves final.norm by "
                 f"{rope_effect:.1e}")
    # sliding window
    weights, cfg = _family_model(root, "mistral")
    w = cfg.sliding_window
    model = feat.build_llama_model(weights, cfg)
    checked = 0
    for group in ("/task1", "/padded1"):
        ids, mask = ckpt_io.read_token_exemplars(f"{root}/tokens.h5", group, 4)
        assert ids.shape[1] > w
        att = feat.llama_forward_sites(model, ids, mask, output_attentions=True)["_attentions"]
        L = ids.shape[1]
        for layer in att:
            for b in range(ids.shape[0]):
                for i in range(L):
                    if not mask[b, i]:
                        continue          # padding queries: in no site, and no real token reads them
                    allowed = np.array([j <= i and i - j < w and mask[b, j] == 1 for j in range(L)])
                    a = layer[b, :, i, :]
                    assert np.all(a[:, ~allowed] == 0), (group, b, i)
                    assert np.all(a[:, allowed] > 0), (group, b, i)
                    assert np.allclose(a.sum(-1), 1, atol=1e-6)
                    checked += 1
    ids, mask = ckpt_io.read_token_exemplars(f"{root}/tokens.h5", "/task1", 4)
    cfg_full = copy.deepcopy(cfg)
    cfg_full.sliding_window = None
    window_effect = rel_err(feat.llama_forward_sites(feat.build_llama_model(weights, cfg_full), ids, mask)["final.norm"],
                            feat.llama_forward_sites(model, ids, mask)["final.norm"])
    assert window_effect > 1e-3, window_effect
    lines.append(f"sliding window {w} (mistral, eager): attention zero exactly outside j <= i, i - j < {w}, key "
                 f"real, on {checked} query rows (unpadded and padded); no window instead moves final.norm by "
                 f"{window_effect:.1e}")
    # Qwen2
    weights, cfg = _family_model(root, "qwen2")
    assert cfg.sliding_window is None and set(cfg.layer_types) == {"full_attention"}
    assert feat.layer_windows(cfg) == [None] * cfg.num_hidden_layers
    ids, mask = ckpt_io.read_token_exemplars(f"{root}/tokens.h5", "/padded1", 4)
    nobias = {k: (np.zeros_like(v) if k.endswith("_proj.bias") else v) for k, v in weights.items()}
    bias_effect = rel_err(feat.llama_forward_sites(feat.build_llama_model(nobias, cfg), ids, mask)["final.norm"],
                          feat.llama_forward_sites(feat.build_llama_model(weights, cfg), ids, mask)["final.norm"])
    assert bias_effect > 1e-3, bias_effect
    lines.append(f"qwen2: full attention in every layer; zero q/k/v biases instead move final.norm by "
                 f"{bias_effect:.1e}")
    return lines


def check_family_forward(root, fixture, rows, weights, cfg, ids, mask):
    """The transformers float32 oracle (the forward file's rows) against the independent float64 forward
    (features.llama_reference_sites): < 1e-5 relative per site; transformers run in float64 against it too;
    and the same on all 4 sequences of an unpadded and a padded exemplar group (padding, left and right).
    transformers in float64 is compared on unpadded sequences only: with left padding its eager mask (float64
    finfo.min, softmax taken in float32 -> -inf) turns the all-masked padding queries into NaN, which then
    reach every row of the sequence through 0 * NaN (the float32 model stays finite)."""
    sites = feat.llama_site_names(cfg.num_hidden_layers) + ["pooled"]
    ref = feat.llama_reference_sites(weights, cfg, ids, mask, double=True)
    n_real = int(np.asarray(mask).sum())
    worst32 = 0.0
    for s in sites:
        want_rows = ids.shape[0] if s == "pooled" else n_real
        assert rows[s].shape == ref[s].shape and rows[s].shape[0] == want_rows, s
        assert rows[s].dtype == np.float32
        worst32 = max(worst32, rel_err(rows[s], ref[s]))
    assert worst32 < 1e-5, worst32
    ui, um = ckpt_io.read_token_exemplars(f"{root}/tokens.h5", "/task1", 4)
    hf64 = feat.llama_forward_sites(feat.build_llama_model(weights, cfg, double=True), ui, um)
    ref_u = feat.llama_reference_sites(weights, cfg, ui, um, double=True)
    worst64 = max(rel_err(hf64[s], ref_u[s]) for s in sites)
    assert worst64 < 5e-6, worst64   # transformers keeps rope angles and softmax in float32 in a float64 model
    with h5py.File(f"{root}/forward/{fixture}_expert1.h5", "r") as f:
        assert set(f) == set(sites) | {"input_ids", "attention_mask"}
        for s in sites:
            assert np.array_equal(f[s][()], rows[s])
    model = feat.build_llama_model(weights, cfg)
    worst_all = 0.0
    for group in ("/task1", "/padded1"):
        gi, gm = ckpt_io.read_token_exemplars(f"{root}/tokens.h5", group, 4)
        a = feat.llama_forward_sites(model, gi, gm)
        b = feat.llama_reference_sites(weights, cfg, gi, gm, double=True)
        for s in sites:
            assert a[s].shape == b[s].shape, (group, s)
            worst_all = max(worst_all, rel_err(a[s], b[s]))
    assert worst_all < 1e-5, worst_all
    # Padding is invisible: each padded sequence's rows equal those of its real tokens run alone (no padding,
    # positions 0..n-1; rope sees only position differences, so left padding's shift of n_pad changes nothing).
    gi, gm = ckpt_io.read_token_exemplars(f"{root}/tokens.h5", "/padded1", 4)
    batch = feat.llama_forward_sites(model, gi, gm)
    start, worst_pad = 0, 0.0
    for b in range(gi.shape[0]):
        real = gi[b][gm[b] == 1][None]
        alone = feat.llama_forward_sites(model, real, np.ones_like(real))
        n = real.shape[1]
        for s in sites:
            got = batch[s][b:b + 1] if s == "pooled" else batch[s][start:start + n]
            worst_pad = max(worst_pad, rel_err(got, alone[s]))
        start += n
    assert start == int(gm.sum()) and worst_pad < 1e-5, worst_pad
    return [f"forward {fixture}: {len(sites)} datasets ({n_real} real tokens of 2 sequences); transformers float32 "
            f"oracle vs independent float64 forward {worst32:.1e} (transformers in float64 on /task1: {worst64:.1e}); "
            f"4 sequences of /task1 and /padded1: {worst_all:.1e}; padded sequences vs their real tokens alone "
            f"{worst_pad:.1e}"]
