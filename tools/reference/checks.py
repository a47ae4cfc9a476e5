"""Self-checks run by make_fixtures.py; each returns a summary line or raises AssertionError."""
import copy
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
        kept = np.array(diag["kept"])        # [scopes, K]
        sizes = None
        if m.get("scope", "model") == "tensor":
            a = cfg["model"]["arch"]
            units = arch.model_units(fixtures.vision_only(fixtures.read_model(root, cfg["model"]["base"], a)[0], a), a)
            sizes = np.array([u.numel for u in units], dtype=float)
            frac = (kept * sizes[:, None]).sum(0) / sizes.sum()
            assert np.all(np.abs(frac - density) < 0.02), frac
        else:
            frac = kept[0]
            assert np.all(np.abs(frac - density) < 1e-3), frac
        notes.append(f"kept {np.round(frac, 4).tolist()} (density {density})")
    if name == "dare":
        p = m.get("p", 0.5)
        assert abs(diag["kept_fraction"] - (1 - p)) < 0.01, diag["kept_fraction"]
        notes.append(f"kept {diag['kept_fraction']:.4f} (1-p = {1 - p})")
    if name == "cat" and len(cfg["experts"]) > 1:
        c = m.get("c", 3)
        lin = diag["linear"]
        for d in lin:
            assert d["positive"] >= c, d
            assert d["ec_rel"] > 1e-6, d
            assert d["gap_rel"] > 1e-3, d
        norm_min = min(d["margin_rel"] for d in diag["norm"])
        shift_min = min(d["margin_rel"] for d in diag["shift"])
        assert norm_min > 1e-4 and shift_min > 1e-5, (norm_min, shift_min)
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
