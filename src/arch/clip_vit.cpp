#include "arch/clip_vit.hpp"

#include <algorithm>
#include <cmath>
#include <utility>
#include <nlohmann/json.hpp>

#include "arch/hf_config.hpp"
#include "common/error.hpp"

namespace cm {

std::string clip_site(int layer, const char* which) {
  const std::string w = which;
  if (w == "pre_ln") return "embed.pre_ln";
  if (w == "post_ln") return "final.post_ln";
  return "layers." + std::to_string(layer) + "." + w;
}

namespace {

using json = nlohmann::json;

ClipNames hf_names(const std::string& p, int layers, bool has_proj) {
  ClipNames n;
  n.patch_w = p + "embeddings.patch_embedding.weight";
  n.class_emb = p + "embeddings.class_embedding";
  n.pos_emb = p + "embeddings.position_embedding.weight";
  n.pre_ln_w = p + "pre_layrnorm.weight";
  n.pre_ln_b = p + "pre_layrnorm.bias";
  for (int i = 0; i < layers; ++i) {
    const std::string b = p + "encoder.layers." + std::to_string(i) + ".";
    ClipBlockNames k;
    k.ln1_w = b + "layer_norm1.weight", k.ln1_b = b + "layer_norm1.bias";
    k.q_w = b + "self_attn.q_proj.weight", k.q_b = b + "self_attn.q_proj.bias";
    k.k_w = b + "self_attn.k_proj.weight", k.k_b = b + "self_attn.k_proj.bias";
    k.v_w = b + "self_attn.v_proj.weight", k.v_b = b + "self_attn.v_proj.bias";
    k.out_w = b + "self_attn.out_proj.weight", k.out_b = b + "self_attn.out_proj.bias";
    k.ln2_w = b + "layer_norm2.weight", k.ln2_b = b + "layer_norm2.bias";
    k.fc1_w = b + "mlp.fc1.weight", k.fc1_b = b + "mlp.fc1.bias";
    k.fc2_w = b + "mlp.fc2.weight", k.fc2_b = b + "mlp.fc2.bias";
    n.blocks.push_back(k);
  }
  n.post_ln_w = p + "post_layernorm.weight";
  n.post_ln_b = p + "post_layernorm.bias";
  if (has_proj) n.proj = "visual_projection.weight";
  return n;
}

ClipNames open_clip_names(int layers, bool has_proj) {
  ClipNames n;
  n.patch_w = "visual.conv1.weight";
  n.class_emb = "visual.class_embedding";
  n.pos_emb = "visual.positional_embedding";
  n.pre_ln_w = "visual.ln_pre.weight";
  n.pre_ln_b = "visual.ln_pre.bias";
  for (int i = 0; i < layers; ++i) {
    const std::string b = "visual.transformer.resblocks." + std::to_string(i) + ".";
    ClipBlockNames k;
    k.ln1_w = b + "ln_1.weight", k.ln1_b = b + "ln_1.bias";
    k.qkv_w = b + "attn.in_proj_weight", k.qkv_b = b + "attn.in_proj_bias";
    k.out_w = b + "attn.out_proj.weight", k.out_b = b + "attn.out_proj.bias";
    k.ln2_w = b + "ln_2.weight", k.ln2_b = b + "ln_2.bias";
    k.fc1_w = b + "mlp.c_fc.weight", k.fc1_b = b + "mlp.c_fc.bias";
    k.fc2_w = b + "mlp.c_proj.weight", k.fc2_b = b + "mlp.c_proj.bias";
    n.blocks.push_back(k);
  }
  n.post_ln_w = "visual.ln_post.weight";
  n.post_ln_b = "visual.ln_post.bias";
  if (has_proj) n.proj = "visual.proj";
  n.proj_transposed = true;
  return n;
}

// Number of blocks: the first i for which `name_of(i)` is absent.
template <class F>
int count_layers(const Checkpoint& ck, F name_of) {
  int n = 0;
  while (ck.find(name_of(n))) ++n;
  return n;
}

const std::vector<int64_t>& shape_of(const Checkpoint& ck, const std::string& name) {
  const TensorInfo* t = ck.find(name);
  if (!t) fail(ck.path(), "CLIP vision tensor '" + name + "' is missing");
  return t->shape;
}

Activation parse_act(const std::string& act, const std::string& where) {
  if (act == "quick_gelu") return Activation::QuickGelu;
  if (act == "gelu") return Activation::Gelu;
  fail(where, "unsupported hidden_act '" + act + "' (expected quick_gelu or gelu)");
}

// Dimensions come from the tensor shapes; the config supplies what shapes cannot tell (heads,
// activation, eps) and must agree with the shapes where both say something.
void shapes_to_config(const Checkpoint& ck, ClipVisionConfig& c) {
  const auto& patch = shape_of(ck, c.names.patch_w);
  if (patch.size() != 4 || patch[2] != patch[3])
    fail(ck.path(), c.names.patch_w + " has shape " + shape_string(patch) + ", expected [hidden, channels, p, p]");
  c.hidden = static_cast<int>(patch[0]);
  c.channels = static_cast<int>(patch[1]);
  c.patch_size = static_cast<int>(patch[2]);
  const auto& pos = shape_of(ck, c.names.pos_emb);
  const int side = static_cast<int>(std::lround(std::sqrt(static_cast<double>(pos.empty() ? 0 : pos[0] - 1))));
  if (pos.size() != 2 || pos[1] != c.hidden || static_cast<int64_t>(side) * side + 1 != pos[0])
    fail(ck.path(), c.names.pos_emb + " has shape " + shape_string(pos) + ", expected [side^2 + 1, hidden]");
  c.image_size = side * c.patch_size;
  c.intermediate = static_cast<int>(shape_of(ck, c.names.blocks.at(0).fc1_w).at(0));
  if (!c.names.proj.empty()) {
    const auto& proj = shape_of(ck, c.names.proj);
    c.proj_dim = static_cast<int>(c.names.proj_transposed ? proj.at(1) : proj.at(0));
  }
}

void check_agrees(const Checkpoint& ck, const char* key, int from_config, int from_shapes) {
  if (from_config != 0 && from_config != from_shapes)
    fail(ck.path(), std::string("config ") + key + " = " + std::to_string(from_config) +
                        " disagrees with the tensor shapes (" + std::to_string(from_shapes) + ")");
}

}  // namespace

ClipVisionConfig clip_vit_config(const Checkpoint& base) {
  ClipVisionConfig c;
  const json cfg = parse_config(base);
  const std::string& where = base.path();
  if (base.find("vision_model.embeddings.patch_embedding.weight")) {
    const std::string p = "vision_model.";
    c.layers = count_layers(base, [&](int i) {
      return p + "encoder.layers." + std::to_string(i) + ".self_attn.q_proj.weight";
    });
    c.names = hf_names(p, c.layers, base.find("visual_projection.weight") != nullptr);
    shapes_to_config(base, c);
    // CLIPConfig nests the vision tower's keys; CLIPVisionConfig has them at the top.
    const json& v = cfg.contains("vision_config") ? cfg["vision_config"] : cfg;
    check_agrees(base, "hidden_size", get_or(v, "hidden_size", 0, where), c.hidden);
    check_agrees(base, "num_hidden_layers", get_or(v, "num_hidden_layers", 0, where), c.layers);
    check_agrees(base, "intermediate_size", get_or(v, "intermediate_size", 0, where), c.intermediate);
    check_agrees(base, "patch_size", get_or(v, "patch_size", 0, where), c.patch_size);
    check_agrees(base, "image_size", get_or(v, "image_size", 0, where), c.image_size);
    c.heads = get_or(v, "num_attention_heads", std::max(1, c.hidden / 64), where);
    c.eps = get_or(v, "layer_norm_eps", 1e-5f, where);
    c.act = parse_act(string_or(v, "hidden_act", "quick_gelu", where), where);
  } else if (base.find("visual.conv1.weight")) {
    c.open_clip = true;
    c.layers = count_layers(base, [](int i) {
      return "visual.transformer.resblocks." + std::to_string(i) + ".attn.in_proj_weight";
    });
    c.names = open_clip_names(c.layers, base.find("visual.proj") != nullptr);
    shapes_to_config(base, c);
    const json& m = cfg.contains("model_cfg") ? cfg["model_cfg"] : cfg;
    const json v = m.contains("vision_cfg") ? m["vision_cfg"] : json::object();
    check_agrees(base, "vision_cfg.width", get_or(v, "width", 0, where), c.hidden);
    check_agrees(base, "vision_cfg.layers", get_or(v, "layers", 0, where), c.layers);
    const int head_width = get_or(v, "head_width", 64, where);
    c.heads = std::max(1, c.hidden / head_width);
    c.act = m.value("quick_gelu", false) ? Activation::QuickGelu : Activation::Gelu;
  } else {
    fail(where, "not a CLIP vision tower: neither vision_model.embeddings.patch_embedding.weight "
                "(HuggingFace) nor visual.conv1.weight (open_clip) is present");
  }
  if (c.layers == 0) fail(where, "CLIP vision tower has no transformer blocks");
  if (c.heads <= 0 || c.hidden % c.heads != 0)
    fail(where, "hidden size " + std::to_string(c.hidden) + " is not divisible by " + std::to_string(c.heads) +
                    " attention heads");
  return c;
}

ModelSpec clip_vit_model(const Checkpoint& base, const ClipVisionConfig& c) {
  ModelSpec m;
  m.arch = "clip_vit";
  m.num_stages = c.layers + 2;
  const int64_t d = c.hidden;
  auto add = [&](const std::string& name, Role role, int stage, const std::string& site, int parts = 1) {
    const TensorInfo* t = base.find(name);
    if (!t) fail(base.path(), "CLIP vision tensor '" + name + "' is missing");
    if (t->shape.empty() || t->shape[0] % parts != 0)
      fail(base.path(), name + " has shape " + shape_string(t->shape) + ", not " + std::to_string(parts) +
                            " equal row blocks");
    m.tensors.push_back(TensorSpec{name, role, t->dtype, t->shape, stage, site, parts});
  };
  // Every site records one row per token, but the post-LayerNorm: one per image (the class token).
  auto add_site = [&](const std::string& name, SiteKind kind, int64_t dim, int stage) {
    m.sites.push_back(Site{name, kind, dim, stage, stage == c.layers + 1 ? 1 : c.tokens()});
  };
  const ClipNames& n = c.names;

  add(n.class_emb, Role::Other, 0, "");
  add(n.patch_w, Role::Other, 0, "");
  add(n.pos_emb, Role::Other, 0, "");
  add(n.pre_ln_w, Role::NormScale, 0, clip_site(0, "pre_ln"));
  add(n.pre_ln_b, Role::Shift, 0, "");
  add_site(clip_site(0, "pre_ln"), SiteKind::NormInput, d, 0);

  for (int i = 0; i < c.layers; ++i) {
    const ClipBlockNames& b = n.blocks[i];
    const int s = i + 1;
    const std::string ln1 = clip_site(i, "ln1"), attn_in = clip_site(i, "attn_in"),
                      attn_out = clip_site(i, "attn_out"), ln2 = clip_site(i, "ln2"),
                      mlp_in = clip_site(i, "mlp_in"), mlp_act = clip_site(i, "mlp_act");
    add(b.ln1_w, Role::NormScale, s, ln1);
    add(b.ln1_b, Role::Shift, s, "");
    if (b.qkv_w.empty()) {
      for (const auto& [w, bias] : {std::pair{b.q_w, b.q_b}, {b.k_w, b.k_b}, {b.v_w, b.v_b}}) {
        add(w, Role::Linear, s, attn_in);
        add(bias, Role::Shift, s, "");
      }
    } else {
      add(b.qkv_w, Role::Linear, s, attn_in, 3);
      add(b.qkv_b, Role::Shift, s, "", 3);
    }
    add(b.out_w, Role::Linear, s, attn_out);
    add(b.out_b, Role::Shift, s, "");
    add(b.ln2_w, Role::NormScale, s, ln2);
    add(b.ln2_b, Role::Shift, s, "");
    add(b.fc1_w, Role::Linear, s, mlp_in);
    add(b.fc1_b, Role::Shift, s, "");
    add(b.fc2_w, Role::Linear, s, mlp_act);
    add(b.fc2_b, Role::Shift, s, "");
    add_site(ln1, SiteKind::NormInput, d, s);
    add_site(attn_in, SiteKind::LinearInput, d, s);
    add_site(attn_out, SiteKind::LinearInput, d, s);
    add_site(ln2, SiteKind::NormInput, d, s);
    add_site(mlp_in, SiteKind::LinearInput, d, s);
    add_site(mlp_act, SiteKind::LinearInput, c.intermediate, s);
  }

  const int last = c.layers + 1;
  add(n.post_ln_w, Role::NormScale, last, clip_site(0, "post_ln"));
  add(n.post_ln_b, Role::Shift, last, "");
  add_site(clip_site(0, "post_ln"), SiteKind::NormInput, d, last);
  if (!n.proj.empty()) add(n.proj, Role::Other, last, "");

  // Every other float tensor of the vision tower is merged as 'other' in the final stage, so nothing the
  // user gave is silently dropped; tensors of other towers (text_model.*) are not part of this model.
  const std::string prefix = c.open_clip ? "visual." : "vision_model.";
  for (const TensorInfo& t : base.tensors())
    if (t.name.rfind(prefix, 0) == 0 && !m.find(t.name))
      m.tensors.push_back(TensorSpec{t.name, Role::Other, t.dtype, t.shape, last, "", 1});
  return m;
}

}  // namespace cm
