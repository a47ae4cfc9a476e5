"""The feature oracle: forward passes with transformers and forward hooks at every feature site (DESIGN.md).

Linear sites record the linear layer's input rows; norm sites record xhat = (x - mean)/sqrt(var + eps) of the
LayerNorm input, computed in float64 from the hooked input (stored as float32 unless the forward itself runs
in float64). Rows are images x tokens, image-major, CLS first; final.post_ln has one row per image.
Also an independent open_clip-layout forward (fused in_proj, pooled @ proj) used to cross-check.
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
        if site in ("pooled", "image_embeds"):
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
