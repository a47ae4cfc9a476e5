"""Random CLIP vision towers and tiny llama-family models with realistic structure: a base and experts = base +
task vector; token exemplars for the llama-family forward.

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


# The llama-family fixtures with a forward pass (cat / regmean cases). `family` is the HF model_type; every one
# is catmerge's `model.arch: llama`. dtype: what save_pretrained writes (the forward runs it upcast to float32).
FAMILY_FIXTURES = {
    "llama_gqa": dict(family="llama", dtype="float32", config=dict(
        hidden_size=64, num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2, intermediate_size=160,
        vocab_size=128, tie_word_embeddings=False, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    # llama3 rope at head_dim 16: with original_max_position_embeddings 64 the 8 frequencies (wavelengths
    # 2 pi 500000^(i/8) = 6.3, 32.4, 167, ...) are 1 unchanged (< 64/4), 1 smoothed, 6 divided by 8. (At 16,
    # as first asked, high_freq_wavelen = 4 < 2 pi and no frequency could stay unchanged.)
    "llama3_rope": dict(family="llama", dtype="float32", config=dict(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, head_dim=16,
        intermediate_size=128, vocab_size=128, tie_word_embeddings=True, rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 64})),
    "mistral": dict(family="mistral", dtype="bfloat16", config=dict(
        hidden_size=96, num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2, head_dim=16,
        intermediate_size=192, vocab_size=128, tie_word_embeddings=False, sliding_window=5, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0})),
    "qwen2": dict(family="qwen2", dtype="float32", config=dict(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
        vocab_size=128, tie_word_embeddings=True, use_sliding_window=False, rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})),
}


def family_classes(family):
    """(config class, *ForCausalLM class) of an HF model_type of the llama family."""
    from transformers import (LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config,
                              Qwen2ForCausalLM)
    return {"llama": (LlamaConfig, LlamaForCausalLM), "mistral": (MistralConfig, MistralForCausalLM),
            "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[family]


def llama_config():
    cfg = LlamaConfig(**LLAMA_CONFIG)
    cfg.architectures = ["LlamaForCausalLM"]
    return cfg


def family_config(fixture):
    spec = FAMILY_FIXTURES[fixture]
    config_cls, model_cls = family_classes(spec["family"])
    cfg = config_cls(**spec["config"])
    cfg.architectures = [model_cls.__name__]
    return cfg


def llama_shapes(cfg, model_class=None):
    """Names and shapes of the *ForCausalLM's parameters (module order), read from transformers itself; with
    tied embeddings lm_head.weight is the embedding and is not a tensor of its own (nor in the checkpoint)."""
    import torch
    if model_class is None:
        from transformers import LlamaForCausalLM as model_class
    with torch.device("meta"):
        model = model_class(cfg)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters(remove_duplicate=False)}
    if cfg.tie_word_embeddings:
        assert model.lm_head.weight is model.model.embed_tokens.weight
        del shapes["lm_head.weight"]
    return shapes


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


TOPIC_SIZE = 6         # tokens of a task's own topic (disjoint across tasks)
TOPIC_MASS = 0.85      # probability of drawing from the topic (Zipf-like within it), else uniform
ZIPF_EXPONENT = 1.1
BIGRAM_P = 0.3


def random_token_exemplars(num_tasks, per_task, length, vocab, rng):
    """Token sequences [per_task, length] int64 per task, a different distribution per task: with probability
    TOPIC_MASS a token of the task's own topic (TOPIC_SIZE ids, disjoint across tasks, Zipf-like frequencies
    p ~ 1/(rank+1)^ZIPF_EXPONENT), else any id uniformly; and a task-specific bigram habit (with probability
    BIGRAM_P a token is followed by its task successor)."""
    topics = rng.permutation(vocab)[:num_tasks * TOPIC_SIZE].reshape(num_tasks, TOPIC_SIZE)
    p = 1.0 / (np.arange(TOPIC_SIZE) + 1.0) ** ZIPF_EXPONENT
    p /= p.sum()
    out = []
    for t in range(num_tasks):
        successor = rng.permutation(vocab)
        seqs = np.empty((per_task, length), dtype=np.int64)
        for j in range(per_task):
            for i in range(length):
                if i > 0 and rng.random() < BIGRAM_P:
                    seqs[j, i] = successor[seqs[j, i - 1]]
                elif rng.random() < TOPIC_MASS:
                    seqs[j, i] = topics[t][rng.choice(TOPIC_SIZE, p=p)]
                else:
                    seqs[j, i] = rng.integers(vocab)
        out.append(seqs)
    return out


# (side, count) of padding per sequence of /padded1..3: right and left padding mixed, 2..6 pad tokens, one
# sequence of each group unpadded; the first two (the default features.exemplars) hold both sides.
PADDING = [[("right", 3), ("left", 5), (None, 0), ("right", 2)],
           [("left", 2), ("right", 6), ("left", 4), (None, 0)],
           [("right", 4), ("left", 3), (None, 0), ("left", 6)]]


def pad_exemplars(seqs, padding, pad_id=0):
    """(input_ids, attention_mask) int64: the sequence's real tokens keep their order, pad_id fills the pad
    positions (real tokens equal to pad_id are redrawn as pad_id + 1 so the ids alone also show the padding)."""
    ids = np.array(seqs, dtype=np.int64)
    ids[ids == pad_id] = pad_id + 1
    mask = np.ones_like(ids)
    L = ids.shape[1]
    for j, (side, count) in enumerate(padding):
        if side is None:
            continue
        real = ids[j, :L - count].copy()
        if side == "right":
            ids[j, L - count:] = pad_id
            mask[j, L - count:] = 0
        else:
            ids[j, :count] = pad_id
            ids[j, count:] = real
            mask[j, :count] = 0
    return ids, mask
