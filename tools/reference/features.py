"""The feature oracle: forward passes with transformers and forward hooks at every feature site (DESIGN.md).

Linear sites record the linear layer's input rows; norm sites record xhat = (x - mean)/sqrt(var + eps) of the
LayerNorm input, computed in float64 from the hooked input (stored as float32 unless the forward itself runs
in float64). Rows are images x tokens, image-major, CLS first; final.post_ln has one row per image.
Also an independent open_clip-layout forward (fused in_proj, pooled @ proj) used to cross-check.
The llama family (Llama, Mistral, Qwen2; below): RMSNorm xhat at the norm sites, real tokens only, and an
independent forward written from the equations (llama_reference_sites).
"""
import numpy as np
import torch
import torch.nn.functional as F
from transformers import CLIPVisionModelWithProjection

LINEAR_SITES = ("attn_in", "attn_out", "mlp_in", "mlp_act")


def site_names(layers):
    names = ["embed.pre_ln"]
    for i in range(layers):
        names += [f"layers.{i}.{s}" for s in ("ln1", "attn_in", "attn_out", "ln2", "mlp_in", "mlp_act")]
    return names + ["final.post_ln"]


def site_kind(site):
    return "linear" if site.split(".")[-1] in LINEAR_SITES else "norm"


def build_hf_model(state, hf_config, double=False):
    torch.manual_seed(0)
    model = CLIPVisionModelWithProjection._from_config(hf_config, attn_implementation="eager")
    assert model.config._attn_implementation == "eager"
    sd = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    # A model without a projection (the zoo's) leaves it at its random init: no feature site reads it.
    assert not unexpected and all(m.endswith("position_ids") or m == "visual_projection.weight" for m in missing), \
        (missing, unexpected)
    model.eval()
    return model.double() if double else model.float()


def _xhat(x, eps):
    x = x.detach().to(torch.float64)
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


def hf_forward_sites(model, pixel_values):
    """Runs `pixel_values` [n, C, H, W] through an HF CLIPVisionModelWithProjection.

    Returns dict site -> rows [n_rows, dim] (float32, or float64 for a float64 model), plus 'pooled' and
    'image_embeds'.
    """
    double = next(model.parameters()).dtype == torch.float64
    out_dtype = np.float64 if double else np.float32
    eps = model.config.layer_norm_eps
    vm = model.vision_model
    records, extra = {}, {}
    modules = {"embed.pre_ln": vm.pre_layrnorm, "final.post_ln": vm.post_layernorm}
    for i, layer in enumerate(vm.encoder.layers):
        modules[f"layers.{i}.ln1"] = layer.layer_norm1
        modules[f"layers.{i}.attn_in"] = layer.self_attn.q_proj
        modules[f"layers.{i}.attn_out"] = layer.self_attn.out_proj
        modules[f"layers.{i}.ln2"] = layer.layer_norm2
        modules[f"layers.{i}.mlp_in"] = layer.mlp.fc1
        modules[f"layers.{i}.mlp_act"] = layer.mlp.fc2
        # k and v share q's input; recorded to check it.
        modules[f"check.{i}.k_in"] = layer.self_attn.k_proj
        modules[f"check.{i}.v_in"] = layer.self_attn.v_proj

    def make_hook(site):
        def hook(module, args):
            x = args[0]
            if site_kind(site) == "norm" and not site.startswith("check."):
                rows = _xhat(x, eps).numpy().astype(out_dtype)
            else:
                rows = x.detach().numpy().astype(out_dtype)
            target = extra if site.startswith("check.") else records
            assert site not in target, f"{site} recorded twice"
            target[site] = rows.reshape(-1, rows.shape[-1]).copy()
        return hook

    handles = [m.register_forward_pre_hook(make_hook(s)) for s, m in modules.items()]
    pooled = {}
    handles.append(vm.post_layernorm.register_forward_hook(
        lambda m, a, o: pooled.setdefault("out", o.detach().clone())))
    try:
        with torch.no_grad():
            px = torch.from_numpy(pixel_values).to(torch.float64 if double else torch.float32)
            out = model(pixel_values=px)
    finally:
        for h in handles:
            h.remove()
    for i in range(len(vm.encoder.layers)):
        for w in ("k_in", "v_in"):
            assert np.array_equal(extra[f"check.{i}.{w}"], records[f"layers.{i}.attn_in"])
    n = pixel_values.shape[0]
    assert records["final.post_ln"].shape[0] == n
    records["pooled"] = pooled["out"].numpy().astype(out_dtype)          # post_layernorm(CLS)
    records["image_embeds"] = out.image_embeds.detach().numpy().astype(out_dtype)
    return records


def site_stats(rows):
    """Sufficient statistics a merge keeps: linear: S = X^T X (float64) and n; norm: sum_rows xhat^2, n."""
    stats = {}
    for site, x in rows.items():
        if site in ("pooled", "image_embeds") or site.startswith("_"):
            continue
        x64 = np.asarray(x).astype(np.float64)
        if site_kind(site) == "linear":
            stats[site] = {"kind": "linear", "n": x64.shape[0], "gram": x64.T @ x64}
        else:
            stats[site] = {"kind": "norm", "n": x64.shape[0], "sqsum": (x64 * x64).sum(axis=0)}
    return stats


# ---- independent open_clip-layout forward (cross-check of the converted HF model) ----

def open_clip_forward_sites(oc, layers, heads, eps, act, pixel_values, double=True):
    """open_clip's VisionTransformer computed directly from visual.* tensors (fused in_proj, pooled @ proj).

    act: 'gelu' (exact erf) or 'quick_gelu'. Returns the same dict as hf_forward_sites.
    """
    dt = torch.float64 if double else torch.float32
    T = {k: torch.from_numpy(np.ascontiguousarray(v)).to(dt) for k, v in oc.items()}
    x = torch.from_numpy(pixel_values).to(dt)
    rec = {}

    def xhat(v):
        return _xhat(v, eps).reshape(-1, v.shape[-1]).numpy()

    def ln(v, p):
        return F.layer_norm(v, (v.shape[-1],), T[p + ".weight"], T[p + ".bias"], eps)

    w = T["visual.conv1.weight"]
    patch = w.shape[-1]
    x = F.conv2d(x, w, stride=patch)                            # [B, width, g, g]
    B, width = x.shape[0], x.shape[1]
    x = x.reshape(B, width, -1).permute(0, 2, 1)                # [B, grid*grid, width]
    cls = T["visual.class_embedding"].reshape(1, 1, -1).expand(B, 1, width)
    x = torch.cat([cls, x], dim=1) + T["visual.positional_embedding"]
    rec["embed.pre_ln"] = xhat(x)
    x = ln(x, "visual.ln_pre")
    hd = width // heads
    for i in range(layers):
        p = f"visual.transformer.resblocks.{i}."
        rec[f"layers.{i}.ln1"] = xhat(x)
        h = ln(x, p + "ln_1")
        rec[f"layers.{i}.attn_in"] = h.reshape(-1, width).numpy()
        qkv = h @ T[p + "attn.in_proj_weight"].T + T[p + "attn.in_proj_bias"]
        q, k, v = qkv.split(width, dim=-1)
        q, k, v = (t.reshape(B, -1, heads, hd).transpose(1, 2) for t in (q, k, v))
        att = torch.softmax((q * hd ** -0.5) @ k.transpose(-1, -2), dim=-1)
        merged = (att @ v).transpose(1, 2).reshape(B, -1, width)
        rec[f"layers.{i}.attn_out"] = merged.reshape(-1, width).numpy()
        attn_out = merged @ T[p + "attn.out_proj.weight"].T + T[p + "attn.out_proj.bias"]
        # open_clip runs torch.nn.MultiheadAttention; check the hand-written attention against it.
        mha = torch.nn.MultiheadAttention(width, heads, batch_first=True).to(dt).eval()
        with torch.no_grad():
            mha.in_proj_weight.copy_(T[p + "attn.in_proj_weight"])
            mha.in_proj_bias.copy_(T[p + "attn.in_proj_bias"])
            mha.out_proj.weight.copy_(T[p + "attn.out_proj.weight"])
            mha.out_proj.bias.copy_(T[p + "attn.out_proj.bias"])
            ref = mha(h, h, h, need_weights=False)[0]
        assert torch.allclose(ref, attn_out, rtol=1e-5, atol=1e-5 if not double else 1e-10)
        x = x + attn_out
        rec[f"layers.{i}.ln2"] = xhat(x)
        h = ln(x, p + "ln_2")
        rec[f"layers.{i}.mlp_in"] = h.reshape(-1, width).numpy()
        a = h @ T[p + "mlp.c_fc.weight"].T + T[p + "mlp.c_fc.bias"]
        a = F.gelu(a) if act == "gelu" else a * torch.sigmoid(1.702 * a)
        rec[f"layers.{i}.mlp_act"] = a.reshape(-1, a.shape[-1]).numpy()
        x = x + a @ T[p + "mlp.c_proj.weight"].T + T[p + "mlp.c_proj.bias"]
    pooled_in = x[:, 0]
    rec["final.post_ln"] = xhat(pooled_in)
    pooled = ln(pooled_in, "visual.ln_post")
    rec["pooled"] = pooled.numpy()
    rec["image_embeds"] = (pooled @ T["visual.proj"]).numpy()
    return rec


# ---- llama family (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) ----
#
# Rows of every site: the real tokens (attention_mask 1) of each sequence, sequence-major, in token order;
# padding tokens are in no site. Norm sites hold the RMSNorm xhat = x / sqrt(mean(x^2) + eps) of the norm's
# input (float64 from the hooked float32 input, stored float32); final.norm has one row per real token too.

def llama_site_names(layers):
    names = []
    for i in range(layers):
        names += [f"layers.{i}.{s}" for s in ("ln1", "attn_in", "attn_out", "ln2", "mlp_in", "mlp_act")]
    return names + ["final.norm"]


def build_llama_model(state, hf_config, double=False):
    """The config's *ForCausalLM (eager attention, eval) holding `state` (float32 values; tied lm_head is the
    embedding)."""
    import models
    _, model_cls = models.family_classes(hf_config.model_type)
    torch.manual_seed(0)
    model = model_cls._from_config(hf_config, attn_implementation="eager", dtype=torch.float32)
    assert model.config._attn_implementation == "eager"
    sd = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    tied = {"lm_head.weight"} if hf_config.tie_word_embeddings else set()
    assert not unexpected and set(missing) == tied, (missing, unexpected)
    if tied:
        assert model.lm_head.weight is model.model.embed_tokens.weight
    model.eval()
    return model.double() if double else model.float()


def _rms_xhat(x, eps):
    x = x.detach().to(torch.float64)
    return x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps)


def last_real_index(mask):
    """Per sequence the largest j with mask 1."""
    L = mask.shape[1]
    return np.array([L - 1 - int(np.argmax(m[::-1] == 1)) for m in mask], dtype=np.int64)


def llama_forward_sites(model, input_ids, attention_mask, output_attentions=False):
    """Runs the token exemplars through an HF llama-family *ForCausalLM as model(input_ids=...,
    attention_mask=...) (no position_ids: transformers takes arange(L) for every sequence).

    Returns dict site -> rows [real tokens, dim] (float32, or float64 for a float64 model) and 'pooled' [N,
    hidden]: last_hidden_state (model.norm's output) at each sequence's last real token. With
    output_attentions also '_attentions': the eager attention weights per layer [N, heads, L, L]."""
    double = next(model.parameters()).dtype == torch.float64
    out_dtype = np.float64 if double else np.float32
    eps = model.config.rms_norm_eps
    keep = np.asarray(attention_mask).astype(bool)
    lm = model.model
    modules = {"final.norm": lm.norm}
    for i, layer in enumerate(lm.layers):
        modules[f"layers.{i}.ln1"] = layer.input_layernorm
        modules[f"layers.{i}.attn_in"] = layer.self_attn.q_proj
        modules[f"layers.{i}.attn_out"] = layer.self_attn.o_proj
        modules[f"layers.{i}.ln2"] = layer.post_attention_layernorm
        modules[f"layers.{i}.mlp_in"] = layer.mlp.gate_proj
        modules[f"layers.{i}.mlp_act"] = layer.mlp.down_proj
        # k, v share q's input and up_proj gate_proj's: recorded to check it.
        modules[f"check.{i}.k_in"] = layer.self_attn.k_proj
        modules[f"check.{i}.v_in"] = layer.self_attn.v_proj
        modules[f"check.{i}.up_in"] = layer.mlp.up_proj
    records, extra = {}, {}

    def make_hook(site):
        def hook(module, args):
            x = args[0]
            assert x.dim() == 3 and x.shape[:2] == keep.shape, (site, x.shape)
            if site_kind(site) == "norm" and not site.startswith("check."):
                full = _rms_xhat(x, eps).numpy().astype(out_dtype)
            else:
                full = x.detach().numpy().astype(out_dtype)
            target = extra if site.startswith("check.") else records
            assert site not in target, f"{site} recorded twice"
            target[site] = full[keep].copy()          # sequence-major, token order, real tokens only
        return hook

    handles = [m.register_forward_pre_hook(make_hook(s)) for s, m in modules.items()]
    try:
        with torch.no_grad():
            out = model.model(input_ids=torch.from_numpy(np.asarray(input_ids, dtype=np.int64)),
                              attention_mask=torch.from_numpy(np.asarray(attention_mask, dtype=np.int64)),
                              use_cache=False, output_attentions=output_attentions)
    finally:
        for h in handles:
            h.remove()
    for i in range(len(lm.layers)):
        for w, site in (("k_in", "attn_in"), ("v_in", "attn_in"), ("up_in", "mlp_in")):
            assert np.array_equal(extra[f"check.{i}.{w}"], records[f"layers.{i}.{site}"])
    last = last_real_index(attention_mask)
    hidden = out.last_hidden_state.detach().numpy()
    records["pooled"] = hidden[np.arange(len(last)), last].astype(out_dtype)
    if output_attentions:
        records["_attentions"] = [a.detach().numpy() for a in out.attentions]
    return records


def rope_inv_freq(rope, head_dim, double=True):
    """Inverse frequencies theta^(-2i/d), i < d/2, of rope_parameters `rope` (types default and llama3), in
    float64 from the formulas (llama3: Meta's apply_scaling: wavelengths above original/low_freq_factor are
    divided by `factor`, those below original/high_freq_factor kept, the band between interpolated with
    s = (original / wavelength - low) / (high - low), f = (1 - s) f / factor + s f).
    Also returns the class of each frequency ('unchanged', 'smoothed', 'scaled')."""
    base = float(rope["rope_theta"])
    i = np.arange(0, head_dim, 2, dtype=np.float64)
    inv = 1.0 / base ** (i / head_dim)
    kinds = ["unchanged"] * len(inv)
    kind = rope.get("rope_type", "default")
    if kind == "llama3":
        factor, low, high = float(rope["factor"]), float(rope["low_freq_factor"]), float(rope["high_freq_factor"])
        old = float(rope["original_max_position_embeddings"])
        out = inv.copy()
        for z, f in enumerate(inv):
            wavelen = 2 * np.pi / f
            if wavelen < old / high:
                continue
            if wavelen > old / low:
                out[z], kinds[z] = f / factor, "scaled"
            else:
                s = (old / wavelen - low) / (high - low)
                out[z], kinds[z] = (1 - s) * f / factor + s * f, "smoothed"
        inv = out
    else:
        assert kind == "default", kind
    return inv, kinds


def layer_windows(hf_config):
    """Per layer the sliding window w (query i sees key j iff j <= i and i - j < w) or None."""
    c = hf_config
    if c.model_type == "mistral":
        return [c.sliding_window] * c.num_hidden_layers
    if c.model_type == "qwen2":
        return [c.sliding_window if t == "sliding_attention" else None for t in c.layer_types]
    return [None] * c.num_hidden_layers


def llama_reference_sites(state, hf_config, input_ids, attention_mask, double=True):
    """An independent llama-family forward written from the equations (not transformers' modules): RMSNorm,
    q/k/v (+ Qwen2 biases), rotate-half rope at positions arange(L) with rope_inv_freq, grouped-query attention
    (query head h reads kv head h // (heads / kv_heads)), causal mask with the layer's sliding window and the
    padding mask on the keys, softmax(q k^T / sqrt(head_dim)), o_proj, residual, SiLU(gate) * up, down_proj,
    final RMSNorm. Returns the same dict as llama_forward_sites."""
    c = hf_config
    dt = torch.float64 if double else torch.float32
    T = {k: torch.from_numpy(np.ascontiguousarray(v)).to(dt) for k, v in state.items()}
    ids = torch.from_numpy(np.asarray(input_ids, dtype=np.int64))
    mask = np.asarray(attention_mask).astype(bool)
    keep = mask
    N, L = ids.shape
    H, KV = c.num_attention_heads, c.num_key_value_heads
    hd = getattr(c, "head_dim", None) or c.hidden_size // H
    eps = c.rms_norm_eps
    rec = {}

    def rows(v):
        return v.numpy()[keep].copy()

    def rms(v, w):
        return _rms_xhat(v, eps).to(dt) * w

    def lin(v, name):
        y = v @ T[name + ".weight"].T
        return y + T[name + ".bias"] if name + ".bias" in T else y

    inv, _ = rope_inv_freq(c.rope_parameters, hd)
    ang = torch.from_numpy(np.arange(L, dtype=np.float64)[:, None] * inv[None, :])       # [L, hd/2]
    cos = torch.cat([torch.cos(ang), torch.cos(ang)], -1).to(dt)
    sin = torch.cat([torch.sin(ang), torch.sin(ang)], -1).to(dt)

    def rope(v):                                                   # v [N, heads, L, hd]
        half = hd // 2
        rot = torch.cat([-v[..., half:], v[..., :half]], -1)
        return v * cos + rot * sin

    qi = torch.arange(L)[:, None]
    kj = torch.arange(L)[None, :]
    pad = torch.from_numpy(mask)[:, None, None, :]                 # keys
    x = T["model.embed_tokens.weight"][ids]
    for i, window in enumerate(layer_windows(c)):
        p = f"model.layers.{i}."
        rec[f"layers.{i}.ln1"] = rows(_rms_xhat(x, eps))
        h = rms(x, T[p + "input_layernorm.weight"])
        rec[f"layers.{i}.attn_in"] = rows(h)
        q = lin(h, p + "self_attn.q_proj").reshape(N, L, H, hd).transpose(1, 2)
        k = lin(h, p + "self_attn.k_proj").reshape(N, L, KV, hd).transpose(1, 2)
        v = lin(h, p + "self_attn.v_proj").reshape(N, L, KV, hd).transpose(1, 2)
        q, k = rope(q), rope(k)
        group = torch.arange(H) // (H // KV)
        k, v = k[:, group], v[:, group]
        allowed = kj <= qi
        if window is not None:
            allowed = allowed & (qi - kj < window)
        allowed = allowed[None, None] & pad                        # [N, 1, L, L]
        scores = (q @ k.transpose(-1, -2)) * hd ** -0.5
        scores = scores.masked_fill(~allowed, float("-inf"))
        any_key = allowed.any(-1, keepdim=True)                    # padding queries may see no key at all
        att = torch.softmax(torch.where(any_key, scores, torch.zeros_like(scores)), -1)
        att = torch.where(allowed, att, torch.zeros_like(att))
        merged = (att @ v).transpose(1, 2).reshape(N, L, H * hd)
        rec[f"layers.{i}.attn_out"] = rows(merged)
        x = x + lin(merged, p + "self_attn.o_proj")
        rec[f"layers.{i}.ln2"] = rows(_rms_xhat(x, eps))
        h = rms(x, T[p + "post_attention_layernorm.weight"])
        rec[f"layers.{i}.mlp_in"] = rows(h)
        g = lin(h, p + "mlp.gate_proj")
        a = g * torch.sigmoid(g) * lin(h, p + "mlp.up_proj")
        rec[f"layers.{i}.mlp_act"] = rows(a)
        x = x + lin(a, p + "mlp.down_proj")
    rec["final.norm"] = rows(_rms_xhat(x, eps))
    out = rms(x, T["model.norm.weight"]).numpy()
    last = last_real_index(mask.astype(np.int64))
    rec["pooled"] = out[np.arange(N), last].copy()
    return rec
