"""The model order: catmerge's order of a model's tensors (its architecture description, src/arch: the
embeddings, then each block's tensors, then the final stage), which METHODS.md makes the scope order of TIES'
trim with `scope: model` (ties in |T_k| go to the lower flat index: tensors in this order, then row-major).
METHODS.md says "the model's order, as `catmerge inspect` lists them", but `catmerge inspect` prints a
checkpoint's own order (its data layout: sorted by name in the fixtures); the model's order is the one that does
not depend on how a checkpoint is written or sharded, and the one catmerge trims in. Transcribed for the
fixtures' architectures (clip_vit under HF and open_clip names, the llama family).
"""
import re


def _places(*names):
    """name -> its place in the listing."""
    return {name: i for i, name in enumerate(names)}


# clip_vit: stage 0, each block, the final stage; HF names and open_clip names (each listing holds both).
_CLIP_FIRST = {**_places("vision_model.embeddings.class_embedding", "vision_model.embeddings.patch_embedding.weight",
                         "vision_model.embeddings.position_embedding.weight", "vision_model.pre_layrnorm.weight",
                         "vision_model.pre_layrnorm.bias"),
               **_places("visual.class_embedding", "visual.conv1.weight", "visual.positional_embedding",
                         "visual.ln_pre.weight", "visual.ln_pre.bias")}
_CLIP_BLOCK = {**_places("layer_norm1.weight", "layer_norm1.bias", "self_attn.q_proj.weight", "self_attn.q_proj.bias",
                         "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight",
                         "self_attn.v_proj.bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
                         "layer_norm2.weight", "layer_norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
                         "mlp.fc2.bias"),
               **_places("ln_1.weight", "ln_1.bias", "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
                         "attn.out_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                         "mlp.c_proj.weight", "mlp.c_proj.bias")}
_CLIP_LAST = {**_places("vision_model.post_layernorm.weight", "vision_model.post_layernorm.bias",
                        "visual_projection.weight"),
              **_places("visual.ln_post.weight", "visual.ln_post.bias", "visual.proj")}
_CLIP_BLOCK_NAME = re.compile(r"^(?:vision_model\.encoder\.layers|visual\.transformer\.resblocks)\.(\d+)\.(.+)$")

# llama family: embed_tokens, each decoder layer, the final norm and lm_head.
_LLAMA_FIRST = _places("model.embed_tokens.weight")
_LLAMA_BLOCK = _places("input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.q_proj.bias",
                       "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight",
                       "self_attn.v_proj.bias", "self_attn.o_proj.weight", "self_attn.o_proj.bias",
                       "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.gate_proj.bias",
                       "mlp.up_proj.weight", "mlp.up_proj.bias", "mlp.down_proj.weight", "mlp.down_proj.bias")
_LLAMA_LAST = _places("model.norm.weight", "lm_head.weight")
_LLAMA_BLOCK_NAME = re.compile(r"^model\.layers\.(\d+)\.(.+)$")

_LATE = 1 << 30  # a stage after every block


def _key(name):
    """(stage, place in the stage) of a tensor the fixtures' architectures list."""
    for first, block, last, pattern in ((_CLIP_FIRST, _CLIP_BLOCK, _CLIP_LAST, _CLIP_BLOCK_NAME),
                                        (_LLAMA_FIRST, _LLAMA_BLOCK, _LLAMA_LAST, _LLAMA_BLOCK_NAME)):
        if name in first:
            return (0, first[name])
        if name in last:
            return (_LATE, last[name])
        m = pattern.match(name)
        if m and m.group(2) in block:
            return (1 + int(m.group(1)), block[m.group(2)])
    raise KeyError(f"{name}: not in the model order of the fixtures' architectures")


def in_model_order(units):
    """The merge units (arch.Unit) of one model sorted into the model order; a fused tensor's row blocks
    in row order."""
    return sorted(units, key=lambda u: (_key(u.name), u.part))
