"""Tensor roles, feature sites and merge units (docs/DESIGN.md) of the architectures: clip_vit (HF and
open_clip names), llama (HF LlamaForCausalLM names, also Mistral / Qwen2) and bert (HF BertModel /
RobertaModel names, bare or under bert. / roberta. with classifier.* heads as *ForSequenceClassification
keeps them).

A merge unit is a whole tensor or, for open_clip's fused attn.in_proj_weight [3d, in] / in_proj_bias [3d],
one of its three row blocks. Every method works per unit.

The name spaces of the architectures are disjoint (vision_model. / visual_projection. / visual. versus
model. / lm_head. versus embeddings. / encoder.layer. / pooler. / classifier. / bert. / roberta.), so
classify(name) without an architecture is unambiguous; the fixtures first keep only
the tensors of the case's `model.arch` (classify(name, arch)) and the methods then classify by name.
"""
import re
from dataclasses import dataclass

LINEAR, NORM, SHIFT, OTHER = "linear", "norm_scale", "shift", "other"


@dataclass(frozen=True)
class Unit:
    name: str        # tensor name in the checkpoint
    part: int        # row block (0 for unfused tensors)
    parts: int       # number of row blocks of the tensor
    offset: int      # flat index of the unit's first element in the tensor
    shape: tuple     # the unit's own shape
    role: str
    site: str        # feature site ("" for shift / other)

    @property
    def numel(self):
        n = 1
        for s in self.shape:
            n *= s
        return n


_HF_BLOCK = re.compile(r"^vision_model\.encoder\.layers\.(\d+)\.(.+)$")
_OC_BLOCK = re.compile(r"^visual\.transformer\.resblocks\.(\d+)\.(.+)$")

_HF_IN_BLOCK = {
    "self_attn.q_proj.weight": (LINEAR, "attn_in"), "self_attn.k_proj.weight": (LINEAR, "attn_in"),
    "self_attn.v_proj.weight": (LINEAR, "attn_in"), "self_attn.out_proj.weight": (LINEAR, "attn_out"),
    "mlp.fc1.weight": (LINEAR, "mlp_in"), "mlp.fc2.weight": (LINEAR, "mlp_act"),
    "layer_norm1.weight": (NORM, "ln1"), "layer_norm2.weight": (NORM, "ln2"),
    "self_attn.q_proj.bias": (SHIFT, ""), "self_attn.k_proj.bias": (SHIFT, ""),
    "self_attn.v_proj.bias": (SHIFT, ""), "self_attn.out_proj.bias": (SHIFT, ""),
    "mlp.fc1.bias": (SHIFT, ""), "mlp.fc2.bias": (SHIFT, ""),
    "layer_norm1.bias": (SHIFT, ""), "layer_norm2.bias": (SHIFT, ""),
}
_OC_IN_BLOCK = {
    "attn.in_proj_weight": (LINEAR, "attn_in"), "attn.out_proj.weight": (LINEAR, "attn_out"),
    "mlp.c_fc.weight": (LINEAR, "mlp_in"), "mlp.c_proj.weight": (LINEAR, "mlp_act"),
    "ln_1.weight": (NORM, "ln1"), "ln_2.weight": (NORM, "ln2"),
    "attn.in_proj_bias": (SHIFT, ""), "attn.out_proj.bias": (SHIFT, ""),
    "mlp.c_fc.bias": (SHIFT, ""), "mlp.c_proj.bias": (SHIFT, ""),
    "ln_1.bias": (SHIFT, ""), "ln_2.bias": (SHIFT, ""),
}
_TOP = {
    # HF
    "vision_model.embeddings.class_embedding": (OTHER, ""),
    "vision_model.embeddings.patch_embedding.weight": (OTHER, ""),
    "vision_model.embeddings.position_embedding.weight": (OTHER, ""),
    "vision_model.pre_layrnorm.weight": (NORM, "embed.pre_ln"),
    "vision_model.pre_layrnorm.bias": (SHIFT, ""),
    "vision_model.post_layernorm.weight": (NORM, "final.post_ln"),
    "vision_model.post_layernorm.bias": (SHIFT, ""),
    "visual_projection.weight": (OTHER, ""),
    # open_clip
    "visual.conv1.weight": (OTHER, ""),
    "visual.class_embedding": (OTHER, ""),
    "visual.positional_embedding": (OTHER, ""),
    "visual.ln_pre.weight": (NORM, "embed.pre_ln"),
    "visual.ln_pre.bias": (SHIFT, ""),
    "visual.ln_post.weight": (NORM, "final.post_ln"),
    "visual.ln_post.bias": (SHIFT, ""),
    "visual.proj": (OTHER, ""),
}


# ---- llama (transcribed from the HF LlamaForCausalLM module structure; src/arch/llama.cpp) ----
# Stage 0: embed_tokens; stage i+1: layer i; stage L+1: model.norm and lm_head. Every tensor name below
# is merged and written; anything else in a llama checkpoint (e.g. o_proj / mlp biases) is not.
_LLAMA_BLOCK = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
_LLAMA_IN_BLOCK = {
    "input_layernorm.weight": (NORM, "ln1"),
    "self_attn.q_proj.weight": (LINEAR, "attn_in"), "self_attn.k_proj.weight": (LINEAR, "attn_in"),
    "self_attn.v_proj.weight": (LINEAR, "attn_in"), "self_attn.o_proj.weight": (LINEAR, "attn_out"),
    "self_attn.q_proj.bias": (SHIFT, ""), "self_attn.k_proj.bias": (SHIFT, ""),   # Qwen2
    "self_attn.v_proj.bias": (SHIFT, ""),
    "post_attention_layernorm.weight": (NORM, "ln2"),
    "mlp.gate_proj.weight": (LINEAR, "mlp_in"), "mlp.up_proj.weight": (LINEAR, "mlp_in"),
    "mlp.down_proj.weight": (LINEAR, "mlp_act"),
}
_LLAMA_TOP = {
    "model.embed_tokens.weight": (OTHER, ""),
    "model.norm.weight": (NORM, "final.norm"),
    "lm_head.weight": (OTHER, ""),          # absent when tied to the embeddings
}


# ---- bert (transcribed from the HF BertModel / RobertaModel module structure, written independently of
# src/arch/bert.cpp) ----
# Stage 0: the embeddings and their LayerNorm; stage i+1: encoder layer i; stage L+1: the pooler and the heads.
# Post-LN layers: attn_in is the layer's input (query, key and value share it), ln1 the xhat of
# attention.output.LayerNorm's input, mlp_in its output (intermediate.dense's input), mlp_act the GELU output
# (output.dense's input), ln2 the xhat of output.LayerNorm's input. The pooler, the classifier heads and the
# embeddings are 'other'. embeddings.position_ids / token_type_ids are integer buffers: 'other' by name, but
# ckpt_io.load_checkpoint never reads them (non-float), so they are never merged: a safetensors output copies
# them as stored.
_BERT_PREFIX = re.compile(r"^(?:bert\.|roberta\.)?(.+)$")
_BERT_BLOCK = re.compile(r"^encoder\.layer\.(\d+)\.(.+)$")
_BERT_IN_BLOCK = {
    "attention.self.query.weight": (LINEAR, "attn_in"), "attention.self.key.weight": (LINEAR, "attn_in"),
    "attention.self.value.weight": (LINEAR, "attn_in"), "attention.output.dense.weight": (LINEAR, "attn_out"),
    "attention.output.LayerNorm.weight": (NORM, "ln1"),
    "intermediate.dense.weight": (LINEAR, "mlp_in"), "output.dense.weight": (LINEAR, "mlp_act"),
    "output.LayerNorm.weight": (NORM, "ln2"),
    "attention.self.query.bias": (SHIFT, ""), "attention.self.key.bias": (SHIFT, ""),
    "attention.self.value.bias": (SHIFT, ""), "attention.output.dense.bias": (SHIFT, ""),
    "attention.output.LayerNorm.bias": (SHIFT, ""), "intermediate.dense.bias": (SHIFT, ""),
    "output.dense.bias": (SHIFT, ""), "output.LayerNorm.bias": (SHIFT, ""),
}
_BERT_TOP = {
    "embeddings.word_embeddings.weight": (OTHER, ""),
    "embeddings.position_embeddings.weight": (OTHER, ""),
    "embeddings.token_type_embeddings.weight": (OTHER, ""),
    "embeddings.LayerNorm.weight": (NORM, "embed.ln"),
    "embeddings.LayerNorm.bias": (SHIFT, ""),
    "embeddings.position_ids": (OTHER, ""),        # int64 buffers (never read as float)
    "embeddings.token_type_ids": (OTHER, ""),
    "pooler.dense.weight": (OTHER, ""),
    "pooler.dense.bias": (OTHER, ""),
}
ARCHS = ("clip_vit", "llama", "bert")


def _classify_clip(name):
    if name in _TOP:
        role, site = _TOP[name]
        return role, site, 1
    for pattern, table in ((_HF_BLOCK, _HF_IN_BLOCK), (_OC_BLOCK, _OC_IN_BLOCK)):
        m = pattern.match(name)
        if m and m.group(2) in table:
            role, which = table[m.group(2)]
            site = f"layers.{m.group(1)}.{which}" if which else ""
            parts = 3 if m.group(2).startswith("attn.in_proj_") else 1
            return role, site, parts
    return None


def _classify_llama(name):
    if name in _LLAMA_TOP:
        role, site = _LLAMA_TOP[name]
        return role, site, 1
    m = _LLAMA_BLOCK.match(name)
    if m and m.group(2) in _LLAMA_IN_BLOCK:
        role, which = _LLAMA_IN_BLOCK[m.group(2)]
        return role, (f"layers.{m.group(1)}.{which}" if which else ""), 1
    return None


def _classify_bert(name):
    if name.startswith("classifier."):             # BertForSequenceClassification: weight, bias; RoBERTa's:
        return OTHER, "", 1                        # dense.* and out_proj.* (the heads are never features)
    inner = _BERT_PREFIX.match(name).group(1)
    if inner in _BERT_TOP:
        role, site = _BERT_TOP[inner]
        return role, site, 1
    m = _BERT_BLOCK.match(inner)
    if m and m.group(2) in _BERT_IN_BLOCK:
        role, which = _BERT_IN_BLOCK[m.group(2)]
        return role, (f"layers.{m.group(1)}.{which}" if which else ""), 1
    return None


_CLASSIFIERS = {"clip_vit": _classify_clip, "llama": _classify_llama, "bert": _classify_bert}


def classify(name, arch=None):
    """(role, site, parts) of a tensor the architecture merges; None for anything else (for clip_vit:
    everything outside the vision tower). arch None: whichever architecture knows the name."""
    if arch is not None:
        return _CLASSIFIERS[arch](name)
    found = [r for r in (c(name) for c in _CLASSIFIERS.values()) if r is not None]
    assert len(found) <= 1, name
    return found[0] if found else None


def units_of(name, shape, arch=None):
    role, site, parts = classify(name, arch)
    shape = tuple(shape)
    assert shape[0] % parts == 0
    ushape = (shape[0] // parts,) + shape[1:]
    size = 1
    for s in ushape:
        size *= s
    return [Unit(name, p, parts, p * size, ushape, role, site) for p in range(parts)]


def model_units(tensors, arch=None):
    """Every merge unit of the merged tensors of `tensors` (dict name -> array), in dict order."""
    units = []
    for name, arr in tensors.items():
        if classify(name, arch) is not None:
            units.extend(units_of(name, arr.shape, arch))
    return units


def unit_values(arr, unit):
    """The unit's float32 values as a flat vector (a view of the tensor's flat storage)."""
    flat = arr.reshape(-1)
    return flat[unit.offset:unit.offset + unit.numel]


# ---- open_clip <-> HF names (for the forward oracle of open_clip checkpoints) ----

def open_clip_to_hf(oc, layers):
    """Converts an open_clip visual state dict (numpy float32) to CLIPVisionModelWithProjection names."""
    hf = {
        "vision_model.embeddings.class_embedding": oc["visual.class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": oc["visual.conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": oc["visual.positional_embedding"],
        "vision_model.pre_layrnorm.weight": oc["visual.ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": oc["visual.ln_pre.bias"],
    }
    for i in range(layers):
        o, h = f"visual.transformer.resblocks.{i}.", f"vision_model.encoder.layers.{i}."
        w, b = oc[o + "attn.in_proj_weight"], oc[o + "attn.in_proj_bias"]
        d = w.shape[0] // 3
        for j, q in enumerate("qkv"):
            hf[h + f"self_attn.{q}_proj.weight"] = w[j * d:(j + 1) * d].copy()
            hf[h + f"self_attn.{q}_proj.bias"] = b[j * d:(j + 1) * d].copy()
        hf[h + "self_attn.out_proj.weight"] = oc[o + "attn.out_proj.weight"]
        hf[h + "self_attn.out_proj.bias"] = oc[o + "attn.out_proj.bias"]
        hf[h + "layer_norm1.weight"] = oc[o + "ln_1.weight"]
        hf[h + "layer_norm1.bias"] = oc[o + "ln_1.bias"]
        hf[h + "layer_norm2.weight"] = oc[o + "ln_2.weight"]
        hf[h + "layer_norm2.bias"] = oc[o + "ln_2.bias"]
        hf[h + "mlp.fc1.weight"] = oc[o + "mlp.c_fc.weight"]
        hf[h + "mlp.fc1.bias"] = oc[o + "mlp.c_fc.bias"]
        hf[h + "mlp.fc2.weight"] = oc[o + "mlp.c_proj.weight"]
        hf[h + "mlp.fc2.bias"] = oc[o + "mlp.c_proj.bias"]
    hf["vision_model.post_layernorm.weight"] = oc["visual.ln_post.weight"]
    hf["vision_model.post_layernorm.bias"] = oc["visual.ln_post.bias"]
    hf["visual_projection.weight"] = oc["visual.proj"].T.copy()
    return hf


def hf_to_open_clip(hf, layers):
    """Inverse of open_clip_to_hf."""
    import numpy as np
    oc = {
        "visual.conv1.weight": hf["vision_model.embeddings.patch_embedding.weight"],
        "visual.class_embedding": hf["vision_model.embeddings.class_embedding"],
        "visual.positional_embedding": hf["vision_model.embeddings.position_embedding.weight"],
        "visual.ln_pre.weight": hf["vision_model.pre_layrnorm.weight"],
        "visual.ln_pre.bias": hf["vision_model.pre_layrnorm.bias"],
    }
    for i in range(layers):
        o, h = f"visual.transformer.resblocks.{i}.", f"vision_model.encoder.layers.{i}."
        oc[o + "ln_1.weight"] = hf[h + "layer_norm1.weight"]
        oc[o + "ln_1.bias"] = hf[h + "layer_norm1.bias"]
        oc[o + "attn.in_proj_weight"] = np.concatenate([hf[h + f"self_attn.{q}_proj.weight"] for q in "qkv"], 0)
        oc[o + "attn.in_proj_bias"] = np.concatenate([hf[h + f"self_attn.{q}_proj.bias"] for q in "qkv"], 0)
        oc[o + "attn.out_proj.weight"] = hf[h + "self_attn.out_proj.weight"]
        oc[o + "attn.out_proj.bias"] = hf[h + "self_attn.out_proj.bias"]
        oc[o + "ln_2.weight"] = hf[h + "layer_norm2.weight"]
        oc[o + "ln_2.bias"] = hf[h + "layer_norm2.bias"]
        oc[o + "mlp.c_fc.weight"] = hf[h + "mlp.fc1.weight"]
        oc[o + "mlp.c_fc.bias"] = hf[h + "mlp.fc1.bias"]
        oc[o + "mlp.c_proj.weight"] = hf[h + "mlp.fc2.weight"]
        oc[o + "mlp.c_proj.bias"] = hf[h + "mlp.fc2.bias"]
    oc["visual.ln_post.weight"] = hf["vision_model.post_layernorm.weight"]
    oc["visual.ln_post.bias"] = hf["vision_model.post_layernorm.bias"]
    oc["visual.proj"] = hf["visual_projection.weight"].T.copy()
    return oc
