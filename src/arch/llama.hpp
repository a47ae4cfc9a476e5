#pragma once
// The llama architecture family: HF LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM (names under
// model.*), and their bare LlamaModel / MistralModel / Qwen2Model checkpoints (the same names without the
// prefix). Roles, stages and feature sites (docs/DESIGN.md), and what the decoder forward needs to know.
#include <cstdint>
#include <string>
#include <vector>

#include "arch/model_spec.hpp"
#include "io/checkpoint.hpp"

namespace cm {

enum class RopeType { Default, Linear, Llama3 };

// Rotary settings as transformers' rope_parameters (or the older rope_theta + rope_scaling) give them.
struct RopeConfig {
  double theta = 10000.0;
  RopeType type = RopeType::Default;
  double factor = 1.0;                  // linear, llama3
  double low_freq_factor = 1.0;         // llama3
  double high_freq_factor = 4.0;        // llama3
  double original_max_positions = 8192; // llama3: original_max_position_embeddings
};

// Tensor names of one decoder block; a bias name is "" where the checkpoint has none.
struct LlamaBlockNames {
  std::string ln1, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, ln2;
  std::string gate_w, gate_b, up_w, up_b, down_w, down_b;
};

struct LlamaConfig {
  std::string source;      // the checkpoint's path, for errors
  bool has_config = false; // whether the checkpoint came with a config.json (the forward needs one)
  std::string model_type;  // llama, mistral, qwen2 ("" without a config)
  int64_t hidden = 0, layers = 0, intermediate = 0, vocab = 0;
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  float eps = 1e-6f;       // rms_norm_eps
  RopeConfig rope;
  std::vector<int64_t> window;  // per layer: the sliding window (0: full causal attention)
  std::string embed, final_norm, lm_head;  // lm_head "" when tied to the embeddings
  std::vector<LlamaBlockNames> blocks;
};

// Reads the names from `base` and the settings from its config.json; shapes give the sizes, and the config
// must agree with them. Throws cm::Error naming the checkpoint when it is not a dense llama-family model
// (mixture-of-experts checkpoints are refused by name).
LlamaConfig llama_config(const Checkpoint& base);

// Why the decoder forward cannot run this model ("" when it can): no config, an activation, rope type or
// attention pattern it does not implement.
std::string llama_forward_unsupported(const LlamaConfig& c);

// Roles, stages and sites of every tensor of `base`.
ModelSpec llama_model(const Checkpoint& base, const LlamaConfig& c);

// inv_freq[i], i < head_dim / 2, of the rope settings, computed in double and rounded once to float32
// (transformers computes the same formulas in float32; the difference is an ulp of the angle).
std::vector<float> rope_inv_freq(const RopeConfig& rope, int64_t head_dim);

}  // namespace cm
