"""Random CLIP vision towers and tiny llama models with realistic structure: a base and experts = base + task
vector.

Base: linear/conv weights ~ N(0, 1/fan_in), biases small, LayerNorm weights near 1, embeddings O(0.3).
Task vector of expert k per tensor: s_k * r * (dense noise + a rank-2 component + ~3% large spikes),
r = max(rms(base tensor), 0.05), s_k = the task's relative magnitude (1-5%). Spikes make trimming matter.
"""
import numpy as np
from transformers import CLIPVisionConfig, LlamaConfig

HF_CONFIG = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                 image_size=16, patch_size=8, num_channels=3, projection_dim=16, hidden_act="quick_gelu",
                 layer_norm_eps=1e-5)

OPEN_CLIP_CONFIG = {"model_cfg": {"embed_dim": 16, "quick_gelu": False,
                                  "vision_cfg": {"image_size": 16, "layers": 2, "width": 32, "patch_size": 8,
                                                 "head_width": 8}}}
OPEN_CLIP_MLP_RATIO = 4.0  # open_clip's default vision_cfg mlp_ratio (absent from the config above)


LLAMA_CONFIG = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, vocab_size=64, tie_word_embeddings=False)


def llama_config():
    cfg = LlamaConfig(**LLAMA_CONFIG)
    cfg.architectures = ["LlamaForCausalLM"]
    return cfg


def llama_shapes(cfg):
    """Names and shapes of LlamaForCausalLM's parameters (module order), read from transformers itself."""
    import torch
    from transformers import LlamaForCausalLM
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    return {n: tuple(p.shape) for n, p in model.named_parameters(remove_duplicate=False)}


def hf_config(**overrides):
    kw = dict(HF_CONFIG)
    kw.update(overrides)
    cfg = CLIPVisionConfig(**kw)
    cfg.architectures = ["CLIPVisionModelWithProjection"]
    return cfg


def open_clip_as_hf_config():
    """The HF config equivalent of OPEN_CLIP_CONFIG (exact GELU, heads = width / head_width)."""
    v = OPEN_CLIP_CONFIG["model_cfg"]["vision_cfg"]
    return hf_config(hidden_size=v["width"], num_hidden_layers=v["layers"],
                     num_attention_heads=v["width"] // v["head_width"],
                     intermediate_size=int(v["width"] * OPEN_CLIP_MLP_RATIO), image_size=v["image_size"],
                     patch_size=v["patch_size"], projection_dim=OPEN_CLIP_CONFIG["model_cfg"]["embed_dim"],
                     hidden_act="quick_gelu" if OPEN_CLIP_CONFIG["model_cfg"]["quick_gelu"] else "gelu")


def hf_shapes(cfg):
    w, m, p, c = cfg.hidden_size, cfg.intermediate_size, cfg.patch_size, cfg.num_channels
    tokens = (cfg.image_size // p) ** 2 + 1
    s = {
        "vision_model.embeddings.class_embedding": (w,),
        "vision_model.embeddings.patch_embedding.weight": (w, c, p, p),
        "vision_model.embeddings.position_embedding.weight": (tokens, w),
        "vision_model.pre_layrnorm.weight": (w,),
        "vision_model.pre_layrnorm.bias": (w,),
    }
    for i in range(cfg.num_hidden_layers):
        h = f"vision_model.encoder.layers.{i}."
        for q in ("k", "v", "q", "out"):
            s[h + f"self_attn.{q}_proj.weight"] = (w, w)
            s[h + f"self_attn.{q}_proj.bias"] = (w,)
        s[h + "layer_norm1.weight"] = (w,)
        s[h + "layer_norm1.bias"] = (w,)
        s[h + "mlp.fc1.weight"] = (m, w)
        s[h + "mlp.fc1.bias"] = (m,)
        s[h + "mlp.fc2.weight"] = (w, m)
        s[h + "mlp.fc2.bias"] = (w,)
        s[h + "layer_norm2.weight"] = (w,)
        s[h + "layer_norm2.bias"] = (w,)
    s["vision_model.post_layernorm.weight"] = (w,)
    s["vision_model.post_layernorm.bias"] = (w,)
    s["visual_projection.weight"] = (cfg.projection_dim, w)
    return s


def random_base(shapes, rng):
    base = {}
    for name, shape in shapes.items():
        if "norm" in name and name.endswith("weight"):          # LayerNorm / RMSNorm scale: near 1
            v = 1.0 + 0.1 * rng.standard_normal(shape)
        elif "norm" in name and name.endswith("bias"):          # LayerNorm shift
            v = 0.05 * rng.standard_normal(shape)
        elif name.endswith("bias"):                             # linear biases
            v = 0.05 * rng.standard_normal(shape)
        elif "class_embedding" in name or "position_embedding" in name:
            v = 0.3 * rng.standard_normal(shape)
        else:                                   # linear / conv / projection weights, token embeddings
            fan_in = int(np.prod(shape[1:]))
            v = rng.standard_normal(shape) / np.sqrt(fan_in)
        base[name] = v.astype(np.float32)
    return base


def random_task_vector(base_tensor, scale, rng):
    shape = base_tensor.shape
    r = max(float(np.sqrt(np.mean(base_tensor.astype(np.float64) ** 2))), 0.05)
    dense = 0.6 * rng.standard_normal(shape)
    rows = shape[0]
    cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    low = (rng.standard_normal((rows, 2)) @ rng.standard_normal((2, cols))).reshape(shape) * 0.5
    spikes = (rng.random(shape) < 0.03) * rng.choice([-1.0, 1.0], size=shape) * rng.uniform(3.0, 6.0, size=shape)
    return (scale * r * (dense + low + spikes)).astype(np.float32)


def make_experts(base, scales, rng):
    experts = []
    for s in scales:
        experts.append({n: (v + random_task_vector(v, s, rng)).astype(np.float32) for n, v in base.items()})
    return experts


def random_fisher(shapes, rng):
    """Positive diagonal Fisher values spread over four decades."""
    return {n: (10.0 ** rng.uniform(-3.0, 1.0, size=s)).astype(np.float32) for n, s in shapes.items()}


def random_exemplars(num_tasks, per_task, channels, size, rng):
    """Distinct image distributions per task: task-specific channel means, spatial frequency and noise."""
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    out = []
    for t in range(num_tasks):
        mean = rng.uniform(-1.0, 1.0, size=channels)
        freq = rng.uniform(0.05, 0.45, size=2)
        amp = rng.uniform(0.3, 1.5)
        noise = rng.uniform(0.1, 0.8)
        imgs = np.empty((per_task, channels, size, size))
        for j in range(per_task):
            phase = rng.uniform(0, 2 * np.pi, size=channels)
            for c in range(channels):
                wave = np.sin(2 * np.pi * (freq[0] * xx + freq[1] * yy) + phase[c])
                imgs[j, c] = mean[c] + amp * wave + noise * rng.standard_normal((size, size))
        out.append(imgs.astype(np.float32))
    return out
