#include "arch/llama.hpp"

#include <cmath>
#include <utility>
#include <nlohmann/json.hpp>

#include "arch/hf_config.hpp"
#include "common/error.hpp"

namespace cm {

namespace {

using json = nlohmann::json;

std::string site(int64_t layer, const char* which) { return "layers." + std::to_string(layer) + "." + which; }

// Mixture-of-experts models route tokens through one of several MLPs; their experts are not llama MLPs, and
// merging them as such would be wrong, so they are refused by what gives them away.
void refuse_moe(const Checkpoint& base, const json& cfg) {
  for (const char* key : {"num_local_experts", "num_experts", "n_routed_experts"})
    if (get_or(cfg, key, 0, base.path()) > 0)
      fail(base.path(), std::string("mixture-of-experts models are not supported (config ") + key +
                            " > 0); catmerge merges dense llama-family models");
  for (const TensorInfo& t : base.tensors())
    if (t.name.find(".block_sparse_moe.") != std::string::npos || t.name.find(".mlp.experts.") != std::string::npos)
      fail(base.path(), "mixture-of-experts models are not supported (tensor '" + t.name +
                            "'); catmerge merges dense llama-family models");
}

const std::vector<int64_t>& shape_of(const Checkpoint& ck, const std::string& name) {
  const TensorInfo* t = ck.find(name);
  if (!t) fail(ck.path(), "llama tensor '" + name + "' is missing");
  return t->shape;
}

int64_t rows_of(const Checkpoint& ck, const std::string& name, size_t rank) {
  const std::vector<int64_t>& s = shape_of(ck, name);
  if (s.size() != rank) fail(ck.path(), name + " has shape " + shape_string(s) + ", expected " + std::to_string(rank) + "-D");
  return s[0];
}

RopeConfig parse_rope(const json& cfg, const std::string& where) {
  RopeConfig r;
  // transformers 5 writes rope_parameters {rope_type, rope_theta, ...}; earlier versions rope_theta at the top
  // and rope_scaling {rope_type or type, factor, ...} (null without scaling).
  json p = cfg.contains("rope_parameters") && cfg["rope_parameters"].is_object() ? cfg["rope_parameters"] : json::object();
  if (p.empty() && cfg.contains("rope_scaling") && cfg["rope_scaling"].is_object()) p = cfg["rope_scaling"];
  r.theta = get_or(p, "rope_theta", get_or(cfg, "rope_theta", 10000.0, where), where);
  const std::string type = string_or(p, "rope_type", string_or(p, "type", "default", where), where);
  if (type == "default") {
    r.type = RopeType::Default;
  } else if (type == "linear") {
    r.type = RopeType::Linear;
  } else if (type == "llama3") {
    r.type = RopeType::Llama3;
  } else {
    fail(where, "rope type '" + type + "' is not supported (default, linear, llama3)");
  }
  r.factor = get_or(p, "factor", 1.0, where);
  r.low_freq_factor = get_or(p, "low_freq_factor", 1.0, where);
  r.high_freq_factor = get_or(p, "high_freq_factor", 4.0, where);
  r.original_max_positions = get_or(p, "original_max_position_embeddings", 8192.0, where);
  if (!(r.theta > 0.0) || !(r.factor > 0.0)) fail(where, "rope_theta and the rope factor must be positive");
  if (r.type == RopeType::Llama3 && !(r.high_freq_factor > r.low_freq_factor && r.low_freq_factor > 0.0))
    fail(where, "llama3 rope needs high_freq_factor > low_freq_factor > 0");
  return r;
}

// Per layer: the sliding window of its attention, 0 for full causal attention. transformers 5 lists
// layer_types where they differ; Mistral applies sliding_window to every layer, Qwen2 only with
// use_sliding_window (and then from max_window_layers on).
std::vector<int64_t> parse_windows(const json& cfg, const std::string& model_type, int64_t layers,
                                   const std::string& where) {
  const int64_t w = get_or(cfg, "sliding_window", int64_t{0}, where);
  std::vector<int64_t> windows(static_cast<size_t>(layers), 0);
  if (cfg.contains("layer_types") && cfg["layer_types"].is_array()) {
    const json& types = cfg["layer_types"];
    if (static_cast<int64_t>(types.size()) != layers)
      fail(where, "config layer_types has " + std::to_string(types.size()) + " entries for " + std::to_string(layers) +
                      " layers");
    for (int64_t i = 0; i < layers; ++i) {
      const std::string t = types[static_cast<size_t>(i)].is_string() ? types[static_cast<size_t>(i)].get<std::string>() : "";
      if (t == "sliding_attention")
        windows[static_cast<size_t>(i)] = w;
      else if (t != "full_attention")
        fail(where, "config layer_types[" + std::to_string(i) + "] is '" + t + "' (full_attention or sliding_attention)");
    }
    return windows;
  }
  bool sliding = model_type == "mistral";
  if (model_type == "qwen2") sliding = cfg.value("use_sliding_window", false);
  const int64_t from = model_type == "qwen2" ? get_or(cfg, "max_window_layers", layers, where) : 0;
  if (sliding && w > 0)
    for (int64_t i = from; i < layers; ++i) windows[static_cast<size_t>(i)] = w;
  return windows;
}

}  // namespace

LlamaConfig llama_config(const Checkpoint& base) {
  const std::string& where = base.path();
  const json cfg = parse_config(base);
  refuse_moe(base, cfg);
  LlamaConfig c;
  c.source = where;
  c.has_config = !base.config_json().empty();
  c.model_type = string_or(cfg, "model_type", "", where);
  // LlamaForCausalLM keeps the decoder under model.*; a bare LlamaModel has the same names without it.
  const std::string p = base.find("model.embed_tokens.weight") ? "model." : "";
  c.embed = p + "embed_tokens.weight";
  while (base.find(p + "layers." + std::to_string(c.layers) + ".self_attn.q_proj.weight")) ++c.layers;
  if (!base.find(c.embed) || c.layers == 0)
    fail(where, "not a llama-family model: model.embed_tokens.weight (or embed_tokens.weight) or layers.0.self_attn.* "
                "is missing");
  const std::vector<int64_t>& emb = shape_of(base, c.embed);
  if (emb.size() != 2) fail(where, c.embed + " has shape " + shape_string(emb) + ", expected [vocab, hidden]");
  c.vocab = emb[0], c.hidden = emb[1];
  const auto has = [&](const std::string& name) { return base.find(name) ? name : std::string(); };
  for (int64_t i = 0; i < c.layers; ++i) {
    const std::string b = p + "layers." + std::to_string(i) + ".";
    LlamaBlockNames n;
    n.ln1 = b + "input_layernorm.weight", n.ln2 = b + "post_attention_layernorm.weight";
    n.q_w = b + "self_attn.q_proj.weight", n.q_b = has(b + "self_attn.q_proj.bias");
    n.k_w = b + "self_attn.k_proj.weight", n.k_b = has(b + "self_attn.k_proj.bias");
    n.v_w = b + "self_attn.v_proj.weight", n.v_b = has(b + "self_attn.v_proj.bias");
    n.o_w = b + "self_attn.o_proj.weight", n.o_b = has(b + "self_attn.o_proj.bias");
    n.gate_w = b + "mlp.gate_proj.weight", n.gate_b = has(b + "mlp.gate_proj.bias");
    n.up_w = b + "mlp.up_proj.weight", n.up_b = has(b + "mlp.up_proj.bias");
    n.down_w = b + "mlp.down_proj.weight", n.down_b = has(b + "mlp.down_proj.bias");
    c.blocks.push_back(n);
  }
  c.final_norm = p + "norm.weight";
  c.lm_head = has("lm_head.weight");

  const LlamaBlockNames& b0 = c.blocks[0];
  const int64_t q_rows = rows_of(base, b0.q_w, 2), kv_rows = rows_of(base, b0.k_w, 2);
  c.intermediate = rows_of(base, b0.gate_w, 2);
  c.heads = get_or(cfg, "num_attention_heads", int64_t{0}, where);
  c.kv_heads = get_or(cfg, "num_key_value_heads", c.heads, where);
  c.head_dim = get_or(cfg, "head_dim", c.heads > 0 ? c.hidden / c.heads : int64_t{0}, where);
  c.eps = get_or(cfg, "rms_norm_eps", 1e-6f, where);
  c.rope = parse_rope(cfg, where);
  c.window = parse_windows(cfg, c.model_type, c.layers, where);
  const auto agrees = [&](const char* key, int64_t from_config, int64_t from_shapes) {
    if (cfg.contains(key) && from_config != from_shapes)
      fail(where, std::string("config ") + key + " = " + std::to_string(from_config) + " disagrees with the tensor shapes (" +
                      std::to_string(from_shapes) + ")");
  };
  agrees("hidden_size", get_or(cfg, "hidden_size", int64_t{0}, where), c.hidden);
  agrees("num_hidden_layers", get_or(cfg, "num_hidden_layers", int64_t{0}, where), c.layers);
  agrees("intermediate_size", get_or(cfg, "intermediate_size", int64_t{0}, where), c.intermediate);
  agrees("vocab_size", get_or(cfg, "vocab_size", int64_t{0}, where), c.vocab);
  if (c.heads > 0) {
    if (c.kv_heads <= 0 || c.heads % c.kv_heads != 0)
      fail(where, "num_attention_heads " + std::to_string(c.heads) + " is not a multiple of num_key_value_heads " +
                      std::to_string(c.kv_heads));
    if (c.head_dim <= 0 || c.head_dim % 2 != 0 || q_rows != c.heads * c.head_dim || kv_rows != c.kv_heads * c.head_dim)
      fail(where, "q_proj has " + std::to_string(q_rows) + " rows and k_proj " + std::to_string(kv_rows) + ", but the config says " +
                      std::to_string(c.heads) + " heads and " + std::to_string(c.kv_heads) + " key/value heads of " +
                      std::to_string(c.head_dim) + " (an even head_dim)");
  }
  if (!(c.eps > 0.0f)) fail(where, "config rms_norm_eps must be positive");
  return c;
}

std::string llama_forward_unsupported(const LlamaConfig& c) {
  if (!c.has_config || c.heads <= 0)
    return "the forward pass needs the model's config.json with num_attention_heads";
  if (c.model_type != "llama" && c.model_type != "mistral" && c.model_type != "qwen2")
    return "model_type '" + c.model_type + "' has no decoder forward in catmerge (it runs llama, mistral and qwen2)";
  return "";
}

ModelSpec llama_model(const Checkpoint& base, const LlamaConfig& c) {
  ModelSpec m;
  m.arch = "llama";
  m.num_stages = static_cast<int>(c.layers) + 2;
  auto add = [&](const std::string& name, Role role, int stage, const std::string& s) {
    if (!name.empty()) m.add(base, name, role, stage, s);  // "": a bias the checkpoint does not have
  };
  const int64_t d = c.hidden;
  add(c.embed, Role::Other, 0, "");
  for (int64_t i = 0; i < c.layers; ++i) {
    const LlamaBlockNames& n = c.blocks[static_cast<size_t>(i)];
    const int s = static_cast<int>(i) + 1;
    add(n.ln1, Role::NormScale, s, site(i, "ln1"));
    for (const auto& [w, b] : {std::pair{n.q_w, n.q_b}, {n.k_w, n.k_b}, {n.v_w, n.v_b}}) {
      add(w, Role::Linear, s, site(i, "attn_in"));
      add(b, Role::Shift, s, "");  // Qwen2 has q/k/v biases
    }
    add(n.o_w, Role::Linear, s, site(i, "attn_out"));
    add(n.o_b, Role::Shift, s, "");
    add(n.ln2, Role::NormScale, s, site(i, "ln2"));
    add(n.gate_w, Role::Linear, s, site(i, "mlp_in"));
    add(n.gate_b, Role::Shift, s, "");
    add(n.up_w, Role::Linear, s, site(i, "mlp_in"));
    add(n.up_b, Role::Shift, s, "");
    add(n.down_w, Role::Linear, s, site(i, "mlp_act"));
    add(n.down_b, Role::Shift, s, "");
    const std::string prefix = n.ln1.substr(0, n.ln1.size() - std::string("input_layernorm.weight").size());
    m.add_undescribed(base, prefix, s, true);  // anything newer in the block
    for (const char* which : {"ln1", "ln2"}) m.sites.push_back(Site{site(i, which), SiteKind::NormInput, d, s});
    m.sites.push_back(Site{site(i, "attn_in"), SiteKind::LinearInput, d, s});
    m.sites.push_back(Site{site(i, "attn_out"), SiteKind::LinearInput, c.heads > 0 ? c.heads * c.head_dim : d, s});
    m.sites.push_back(Site{site(i, "mlp_in"), SiteKind::LinearInput, d, s});
    m.sites.push_back(Site{site(i, "mlp_act"), SiteKind::LinearInput, c.intermediate, s});
  }
  const int last = static_cast<int>(c.layers) + 1;
  add(c.final_norm, Role::NormScale, last, "final.norm");
  m.sites.push_back(Site{"final.norm", SiteKind::NormInput, d, last});
  add(c.lm_head, Role::Other, last, "");  // absent when tied to the embeddings
  m.add_undescribed(base, c.embed.substr(0, c.embed.size() - std::string("embed_tokens.weight").size()), last, true);
  return m;
}

std::vector<float> rope_inv_freq(const RopeConfig& rope, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  std::vector<float> out(static_cast<size_t>(half));
  const double pi = 3.14159265358979323846;
  for (int64_t i = 0; i < half; ++i) {
    double f = 1.0 / std::pow(rope.theta, static_cast<double>(2 * i) / static_cast<double>(head_dim));
    if (rope.type == RopeType::Linear) f /= rope.factor;
    if (rope.type == RopeType::Llama3) {
      // Llama 3.1: long wavelengths slowed by `factor`, short ones kept, the band between blended.
      const double old = rope.original_max_positions, wavelen = 2.0 * pi / f;
      const double low_wavelen = old / rope.low_freq_factor, high_wavelen = old / rope.high_freq_factor;
      if (wavelen > low_wavelen) {
        f /= rope.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (old / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
        f = (1.0 - smooth) * f / rope.factor + smooth * f;
      }
    }
    out[static_cast<size_t>(i)] = static_cast<float>(f);
  }
  return out;
}

}  // namespace cm
