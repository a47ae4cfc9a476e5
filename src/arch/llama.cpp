#include "arch/llama.hpp"

#include "common/error.hpp"

namespace cm {

namespace {

std::string site(int layer, const char* which) { return "layers." + std::to_string(layer) + "." + which; }

}  // namespace

ModelSpec llama_model(const Checkpoint& base) {
  ModelSpec m;
  m.arch = "llama";
  int layers = 0;
  while (base.find("model.layers." + std::to_string(layers) + ".self_attn.q_proj.weight")) ++layers;
  if (!base.find("model.embed_tokens.weight") || layers == 0)
    fail(base.path(), "not a llama-family model: model.embed_tokens.weight or model.layers.0.* is missing");
  m.num_stages = layers + 2;
  auto add = [&](const std::string& name, Role role, int stage, const std::string& s, bool required = true) {
    const TensorInfo* t = base.find(name);
    if (!t) {
      if (required) fail(base.path(), "llama tensor '" + name + "' is missing");
      return;
    }
    m.tensors.push_back(TensorSpec{name, role, t->dtype, t->shape, stage, s, 1});
  };
  // Every other float tensor under `prefix` joins `stage`, so nothing the user gave is silently dropped:
  // a bias is a shift, anything else 'other'.
  auto add_rest = [&](const std::string& prefix, int stage) {
    for (const TensorInfo& t : base.tensors()) {
      if (t.name.rfind(prefix, 0) != 0 || m.find(t.name)) continue;
      const bool bias = t.name.size() > 5 && t.name.compare(t.name.size() - 5, 5, ".bias") == 0;
      m.tensors.push_back(TensorSpec{t.name, bias ? Role::Shift : Role::Other, t.dtype, t.shape, stage, "", 1});
    }
  };
  const TensorInfo* embed = base.find("model.embed_tokens.weight");
  const int64_t d = embed->shape.size() == 2 ? embed->shape[1] : 0;
  add("model.embed_tokens.weight", Role::Other, 0, "");
  for (int i = 0; i < layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    const int s = i + 1;
    add(p + "input_layernorm.weight", Role::NormScale, s, site(i, "ln1"));
    for (const char* proj : {"q_proj", "k_proj", "v_proj"}) {
      add(p + "self_attn." + proj + ".weight", Role::Linear, s, site(i, "attn_in"));
      add(p + "self_attn." + proj + ".bias", Role::Shift, s, "", false);  // Qwen2 has q/k/v biases
    }
    add(p + "self_attn.o_proj.weight", Role::Linear, s, site(i, "attn_out"));
    add(p + "post_attention_layernorm.weight", Role::NormScale, s, site(i, "ln2"));
    add(p + "mlp.gate_proj.weight", Role::Linear, s, site(i, "mlp_in"));
    add(p + "mlp.up_proj.weight", Role::Linear, s, site(i, "mlp_in"));
    add(p + "mlp.down_proj.weight", Role::Linear, s, site(i, "mlp_act"));
    add_rest(p, s);  // o_proj / MLP biases (attention_bias, mlp_bias) and anything newer
    const TensorInfo* down = base.find(p + "mlp.down_proj.weight");
    const int64_t inter = down->shape.size() == 2 ? down->shape[1] : 0;
    for (const char* which : {"ln1", "ln2"}) m.sites.push_back(Site{site(i, which), SiteKind::NormInput, d, s});
    for (const char* which : {"attn_in", "attn_out", "mlp_in"})
      m.sites.push_back(Site{site(i, which), SiteKind::LinearInput, d, s});
    m.sites.push_back(Site{site(i, "mlp_act"), SiteKind::LinearInput, inter, s});
  }
  const int last = layers + 1;
  add("model.norm.weight", Role::NormScale, last, "final.norm");
  m.sites.push_back(Site{"final.norm", SiteKind::NormInput, d, last});
  add("lm_head.weight", Role::Other, last, "", false);  // absent when tied to the embeddings
  add_rest("model.", last);
  return m;
}

}  // namespace cm
