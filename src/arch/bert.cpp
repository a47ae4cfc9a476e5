#include "arch/bert.hpp"

#include <utility>
#include <nlohmann/json.hpp>

#include "arch/hf_config.hpp"
#include "common/error.hpp"

namespace cm {

namespace {

using json = nlohmann::json;

std::string site(int64_t layer, const char* which) { return "layers." + std::to_string(layer) + "." + which; }

// The shape of a tensor the description needs, `rank`-D.
const std::vector<int64_t>& bert_shape(const Checkpoint& ck, const std::string& name, size_t rank) {
  const TensorInfo* t = ck.find(name);
  if (!t) fail(ck.path(), "bert tensor '" + name + "' is missing");
  if (t->shape.size() != rank)
    fail(ck.path(), name + " has shape " + shape_string(t->shape) + ", expected " + std::to_string(rank) + "-D");
  return t->shape;
}

BertBlockNames block_names(const std::string& b) {
  BertBlockNames n;
  n.q_w = b + "attention.self.query.weight", n.q_b = b + "attention.self.query.bias";
  n.k_w = b + "attention.self.key.weight", n.k_b = b + "attention.self.key.bias";
  n.v_w = b + "attention.self.value.weight", n.v_b = b + "attention.self.value.bias";
  n.attn_out_w = b + "attention.output.dense.weight", n.attn_out_b = b + "attention.output.dense.bias";
  n.ln1_w = b + "attention.output.LayerNorm.weight", n.ln1_b = b + "attention.output.LayerNorm.bias";
  n.inter_w = b + "intermediate.dense.weight", n.inter_b = b + "intermediate.dense.bias";
  n.out_w = b + "output.dense.weight", n.out_b = b + "output.dense.bias";
  n.ln2_w = b + "output.LayerNorm.weight", n.ln2_b = b + "output.LayerNorm.bias";
  return n;
}

std::string block_prefix(const std::string& p, int64_t i) { return p + "encoder.layer." + std::to_string(i) + "."; }

}  // namespace

BertConfig bert_config(const Checkpoint& base) {
  const std::string& where = base.path();
  const json cfg = parse_config(base);
  BertConfig c;
  c.source = where;
  c.has_config = !base.config_json().empty();
  c.model_type = string_or(cfg, "model_type", "", where);
  c.hidden_act = string_or(cfg, "hidden_act", "gelu", where);
  c.position_embedding_type = string_or(cfg, "position_embedding_type", "absolute", where);
  c.is_decoder = cfg.is_object() && cfg.value("is_decoder", false);
  // A bare BertModel / RobertaModel has its names at the top; *ForSequenceClassification keeps them under
  // bert. or roberta., beside its classifier.
  std::string p;
  for (const char* prefix : {"", "bert.", "roberta."})
    if (base.find(std::string(prefix) + "embeddings.word_embeddings.weight")) p = prefix;
  c.prefix = p;
  c.word_emb = p + "embeddings.word_embeddings.weight";
  while (base.find(block_prefix(p, c.layers) + "attention.self.query.weight")) ++c.layers;
  if (!base.find(c.word_emb) || c.layers == 0)
    fail(where, "not a bert model: embeddings.word_embeddings.weight (or under bert. / roberta.) or "
                "encoder.layer.0.attention.self.* is missing");
  c.pos_emb = p + "embeddings.position_embeddings.weight";
  c.type_emb = p + "embeddings.token_type_embeddings.weight";
  c.emb_ln_w = p + "embeddings.LayerNorm.weight";
  c.emb_ln_b = p + "embeddings.LayerNorm.bias";
  for (int64_t i = 0; i < c.layers; ++i) c.blocks.push_back(block_names(block_prefix(p, i)));

  const std::vector<int64_t>& words = bert_shape(base, c.word_emb, 2);
  c.vocab = words[0], c.hidden = words[1];
  c.max_positions = bert_shape(base, c.pos_emb, 2)[0];
  c.type_vocab = bert_shape(base, c.type_emb, 2)[0];
  c.intermediate = bert_shape(base, c.blocks[0].inter_w, 2)[0];
  if (c.type_vocab < 1) fail(where, c.type_emb + " has no rows (token type 0 is added to every token)");
  c.heads = get_or(cfg, "num_attention_heads", int64_t{0}, where);
  c.head_dim = c.heads > 0 ? c.hidden / c.heads : 0;
  c.pad_token_id = get_or(cfg, "pad_token_id", int64_t{0}, where);
  c.eps = get_or(cfg, "layer_norm_eps", 1e-12f, where);
  c.positions = c.model_type == "roberta" ? BertPositions::PaddingOffset : BertPositions::Absolute;
  const auto agrees = [&](const char* key, int64_t from_shapes) {
    const int64_t from_config = get_or(cfg, key, from_shapes, where);
    if (from_config != from_shapes)
      fail(where, std::string("config ") + key + " = " + std::to_string(from_config) + " disagrees with the tensor shapes (" +
                      std::to_string(from_shapes) + ")");
  };
  agrees("hidden_size", c.hidden);
  agrees("num_hidden_layers", c.layers);
  agrees("intermediate_size", c.intermediate);
  agrees("vocab_size", c.vocab);
  agrees("max_position_embeddings", c.max_positions);
  agrees("type_vocab_size", c.type_vocab);
  if (c.heads > 0 && c.hidden % c.heads != 0)
    fail(where, "hidden_size " + std::to_string(c.hidden) + " is not a multiple of num_attention_heads " +
                    std::to_string(c.heads));
  if (c.positions == BertPositions::PaddingOffset && (c.pad_token_id < 0 || c.pad_token_id + 1 >= c.max_positions))
    fail(where, "pad_token_id " + std::to_string(c.pad_token_id) + " leaves no RoBERTa position below " +
                    "max_position_embeddings " + std::to_string(c.max_positions));
  if (!(c.eps > 0.0f)) fail(where, "config layer_norm_eps must be positive");
  return c;
}

std::string bert_forward_unsupported(const BertConfig& c) {
  if (!c.has_config || c.heads <= 0)
    return "the forward pass needs the model's config.json with num_attention_heads";
  if (c.model_type != "bert" && c.model_type != "roberta")
    return "model_type '" + c.model_type + "' has no encoder forward in catmerge (it runs bert and roberta)";
  if (c.hidden_act != "gelu")
    return "hidden_act '" + c.hidden_act + "' is not supported: the bert forward runs gelu (the exact erf form)";
  if (c.position_embedding_type != "absolute")
    return "position_embedding_type '" + c.position_embedding_type + "' is not supported (absolute)";
  if (c.is_decoder) return "is_decoder models (causal attention) are not supported: the bert forward is bidirectional";
  return "";
}

ModelSpec bert_model(const Checkpoint& base, const BertConfig& c) {
  ModelSpec m;
  m.arch = "bert";
  m.num_stages = static_cast<int>(c.layers) + 2;
  const int64_t d = c.hidden;
  m.add(base, c.word_emb, Role::Other, 0, "");
  m.add(base, c.pos_emb, Role::Other, 0, "");
  m.add(base, c.type_emb, Role::Other, 0, "");
  m.add(base, c.emb_ln_w, Role::NormScale, 0, "embed.ln");
  m.add(base, c.emb_ln_b, Role::Shift, 0, "");
  m.sites.push_back(Site{"embed.ln", SiteKind::NormInput, d, 0});
  for (int64_t i = 0; i < c.layers; ++i) {
    const BertBlockNames& n = c.blocks[static_cast<size_t>(i)];
    const int s = static_cast<int>(i) + 1;
    for (const auto& [w, b] : {std::pair{n.q_w, n.q_b}, {n.k_w, n.k_b}, {n.v_w, n.v_b}}) {
      m.add(base, w, Role::Linear, s, site(i, "attn_in"));
      m.add(base, b, Role::Shift, s, "");
    }
    m.add(base, n.attn_out_w, Role::Linear, s, site(i, "attn_out"));
    m.add(base, n.attn_out_b, Role::Shift, s, "");
    m.add(base, n.ln1_w, Role::NormScale, s, site(i, "ln1"));
    m.add(base, n.ln1_b, Role::Shift, s, "");
    m.add(base, n.inter_w, Role::Linear, s, site(i, "mlp_in"));
    m.add(base, n.inter_b, Role::Shift, s, "");
    m.add(base, n.out_w, Role::Linear, s, site(i, "mlp_act"));
    m.add(base, n.out_b, Role::Shift, s, "");
    m.add(base, n.ln2_w, Role::NormScale, s, site(i, "ln2"));
    m.add(base, n.ln2_b, Role::Shift, s, "");
    m.add_undescribed(base, block_prefix(c.prefix, i), s, true);  // anything newer in the layer
    m.sites.push_back(Site{site(i, "attn_in"), SiteKind::LinearInput, d, s});
    m.sites.push_back(Site{site(i, "attn_out"), SiteKind::LinearInput, d, s});
    m.sites.push_back(Site{site(i, "ln1"), SiteKind::NormInput, d, s});
    m.sites.push_back(Site{site(i, "mlp_in"), SiteKind::LinearInput, d, s});
    m.sites.push_back(Site{site(i, "mlp_act"), SiteKind::LinearInput, c.intermediate, s});
    m.sites.push_back(Site{site(i, "ln2"), SiteKind::NormInput, d, s});
  }
  // Every other float tensor (the pooler, classifier heads) joins the final stage as 'other' (biases too:
  // METHODS.md's heads); the forward reads none of them.
  m.add_undescribed(base, "", static_cast<int>(c.layers) + 1, false);
  return m;
}

}  // namespace cm
