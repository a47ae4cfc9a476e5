"""The bert feature oracle: transformers' BertModel / RobertaModel (or the encoder of a
*ForSequenceClassification) run with eager attention, float32, eval, with forward pre-hooks at every
feature site (docs/DESIGN.md), and the pooled output the text zoo trains its heads on.

Rows of every site: the real tokens (attention_mask 1) of each sequence, sequence-major, in token order;
padding tokens are in no site. Sites: `embed.ln` (norm: LayerNorm xhat = (x - mean)/sqrt(var + eps) of
embeddings.LayerNorm's input, eps = config layer_norm_eps, float64 from the hooked float32 input, stored
float32), per layer i `layers.{i}.attn_in` (input of query/key/value = the layer's input),
`layers.{i}.attn_out` (input of attention.output.dense: the heads merged head-major), `layers.{i}.ln1` (xhat of
attention.output.LayerNorm's input = dense output + residual), `layers.{i}.mlp_in` (input of
intermediate.dense = LayerNorm-1 output), `layers.{i}.mlp_act` (input of output.dense = gelu output),
`layers.{i}.ln2` (xhat of output.LayerNorm's input). 'pooled' [N, hidden]: sentence-transformers' mean
pooling, sum(last_hidden_state * mask) / max(sum(mask), 1e-9) in float32 (no normalisation).
The forward is `encoder(input_ids=..., attention_mask=...)` with no position_ids and no token_type_ids, so
BERT numbers the tokens 0..L-1 and RoBERTa from pad_token_id + 1 over the ids that are not pad_token_id.
"""
import numpy as np
import torch

from features import _xhat

BLOCK_SITES = ("attn_in", "attn_out", "ln1", "mlp_in", "mlp_act", "ln2")


def bert_site_names(layers):
    return ["embed.ln"] + [f"layers.{i}.{s}" for i in range(layers) for s in BLOCK_SITES]


def encoder_of(model):
    """The BertModel / RobertaModel inside `model` (itself, or a *ForSequenceClassification's .bert/.roberta)."""
    return model.base_model


def bert_forward_sites(model, input_ids, attention_mask):
    """dict site -> rows [real tokens, dim] float32, and 'pooled' [N, hidden], of the token exemplars through
    `model` (eval, float32, eager attention)."""
    encoder = encoder_of(model)
    assert encoder.config._attn_implementation == "eager"
    eps = encoder.config.layer_norm_eps
    keep = np.asarray(attention_mask).astype(bool)
    modules = {"embed.ln": encoder.embeddings.LayerNorm}
    for i, layer in enumerate(encoder.encoder.layer):
        modules[f"layers.{i}.attn_in"] = layer.attention.self.query
        modules[f"layers.{i}.attn_out"] = layer.attention.output.dense
        modules[f"layers.{i}.ln1"] = layer.attention.output.LayerNorm
        modules[f"layers.{i}.mlp_in"] = layer.intermediate.dense
        modules[f"layers.{i}.mlp_act"] = layer.output.dense
        modules[f"layers.{i}.ln2"] = layer.output.LayerNorm
        # key and value share query's input: recorded to check it.
        modules[f"check.{i}.k_in"] = layer.attention.self.key
        modules[f"check.{i}.v_in"] = layer.attention.self.value
    records, extra = {}, {}

    def make_hook(site):
        def hook(module, args):
            x = args[0]
            assert x.dim() == 3 and x.shape[:2] == keep.shape, (site, x.shape)
            is_norm = site == "embed.ln" or site.endswith((".ln1", ".ln2"))
            full = (_xhat(x, eps) if is_norm else x.detach()).numpy().astype(np.float32)
            target = extra if site.startswith("check.") else records
            assert site not in target, f"{site} recorded twice"
            target[site] = full[keep].copy()          # sequence-major, token order, real tokens only
        return hook

    handles = [m.register_forward_pre_hook(make_hook(s)) for s, m in modules.items()]
    mask = torch.from_numpy(np.asarray(attention_mask, dtype=np.int64))
    try:
        with torch.no_grad():
            out = encoder(input_ids=torch.from_numpy(np.asarray(input_ids, dtype=np.int64)), attention_mask=mask)
    finally:
        for h in handles:
            h.remove()
    for i in range(len(encoder.encoder.layer)):
        for w in ("k_in", "v_in"):
            assert np.array_equal(extra[f"check.{i}.{w}"], records[f"layers.{i}.attn_in"])
    with torch.no_grad():
        hidden = out.last_hidden_state
        m = mask.unsqueeze(-1).expand(hidden.size()).to(hidden.dtype)
        pooled = torch.sum(hidden * m, 1) / torch.clamp(m.sum(1), min=1e-9)
    records["pooled"] = pooled.numpy().astype(np.float32)
    return records
