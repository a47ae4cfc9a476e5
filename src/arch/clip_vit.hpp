#pragma once
// The clip_vit architecture: CLIP's vision tower under HuggingFace names (CLIPVisionModel,
// CLIPVisionModelWithProjection, CLIPModel's vision_model.*) or open_clip names (visual.*, fused in_proj).
#include <string>
#include <vector>

#include "arch/model_spec.hpp"
#include "io/checkpoint.hpp"

namespace cm {

enum class Activation { QuickGelu, Gelu };  // quick_gelu: x*sigmoid(1.702x); gelu: exact erf form

// Tensor names of one transformer block. With open_clip's fused attention, qkv_w/qkv_b are set and the
// separate q/k/v names are empty; with HF names it is the other way round.
struct ClipBlockNames {
  std::string ln1_w, ln1_b;
  std::string q_w, q_b, k_w, k_b, v_w, v_b;
  std::string qkv_w, qkv_b;
  std::string out_w, out_b;
  std::string ln2_w, ln2_b;
  std::string fc1_w, fc1_b, fc2_w, fc2_b;
};

struct ClipNames {
  std::string patch_w;     // conv [hidden, channels, patch, patch], no bias
  std::string class_emb;   // [hidden]
  std::string pos_emb;     // [tokens, hidden]
  std::string pre_ln_w, pre_ln_b;
  std::vector<ClipBlockNames> blocks;
  std::string post_ln_w, post_ln_b;
  std::string proj;        // "" when absent; HF: [proj_dim, hidden]; open_clip: [hidden, proj_dim]
  bool proj_transposed = false;  // true for open_clip's visual.proj (pooled @ proj)
};

struct ClipVisionConfig {
  int hidden = 0, layers = 0, heads = 0, intermediate = 0;
  int image_size = 0, patch_size = 0, channels = 3;
  int proj_dim = 0;        // 0 when the checkpoint has no projection
  float eps = 1e-5f;
  Activation act = Activation::QuickGelu;
  bool open_clip = false;
  ClipNames names;
  int tokens() const { return (image_size / patch_size) * (image_size / patch_size) + 1; }
};

// Feature site names (docs/DESIGN.md): "embed.pre_ln", "layers.{i}.ln1", "layers.{i}.attn_in",
// "layers.{i}.attn_out", "layers.{i}.ln2", "layers.{i}.mlp_in", "layers.{i}.mlp_act", "final.post_ln".
std::string clip_site(int layer, const char* which);

// Reads the vision config (config.json / open_clip_config.json, else shapes with documented defaults)
// and the tensor names of `base`. Throws cm::Error naming the checkpoint when it is not a CLIP vision tower.
ClipVisionConfig clip_vit_config(const Checkpoint& base);

// Roles, stages and sites of every vision-tower tensor of `base`.
ModelSpec clip_vit_model(const Checkpoint& base, const ClipVisionConfig& cfg);

}  // namespace cm
