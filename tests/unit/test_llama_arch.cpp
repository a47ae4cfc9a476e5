// The llama-family description (arch/llama.cpp) from shape files: names with and without the model.
// prefix, sizes from shapes and config, the refusals (mixture-of-experts, unknown rope types, heads that do
// not fit the shapes), sliding windows per layer, and rope_inv_freq against transformers' formulas written
// out here in double.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "arch/llama.hpp"
#include "arch/registry.hpp"
#include "backend/backend.hpp"
#include "features/forward.hpp"
#include "io/checkpoint.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

// A two-block model with hidden 16, 4 heads of 4 (2 key/value heads), MLP 24, vocab 10.
json tiny_tensors(const std::string& prefix, bool lm_head) {
  json t = json::array();
  const auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    t.push_back({{"name", name}, {"dtype", "BF16"}, {"shape", shape}});
  };
  add(prefix + "embed_tokens.weight", {10, 16});
  for (int i = 0; i < 2; ++i) {
    const std::string b = prefix + "layers." + std::to_string(i) + ".";
    add(b + "input_layernorm.weight", {16});
    add(b + "self_attn.q_proj.weight", {16, 16});
    add(b + "self_attn.k_proj.weight", {8, 16});
    add(b + "self_attn.v_proj.weight", {8, 16});
    add(b + "self_attn.o_proj.weight", {16, 16});
    add(b + "post_attention_layernorm.weight", {16});
    add(b + "mlp.gate_proj.weight", {24, 16});
    add(b + "mlp.up_proj.weight", {24, 16});
    add(b + "mlp.down_proj.weight", {16, 24});
  }
  add(prefix + "norm.weight", {16});
  if (lm_head) add("lm_head.weight", {10, 16});
  return t;
}

json tiny_config() {
  return {{"model_type", "llama"}, {"hidden_size", 16},        {"num_hidden_layers", 2},
          {"intermediate_size", 24}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
          {"vocab_size", 10},        {"rms_norm_eps", 1e-5}};
}

class LlamaArch : public ::testing::Test {
 protected:
  std::unique_ptr<Checkpoint> shapes(const json& config, const json& tensors) {
    const std::string path = (dir_ / ("m" + std::to_string(files_++) + ".json")).string();
    std::ofstream(path) << json{{"catmerge_shapes", 1}, {"config", config}, {"tensors", tensors}}.dump();
    return open_checkpoint(path);
  }
  std::string error_for(const json& config, const json& tensors) {
    const auto ck = shapes(config, tensors);
    return test::error_of([&] { llama_config(*ck); });
  }
  test::ScratchDir dir_;
  int files_ = 0;
};

TEST_F(LlamaArch, ReadsSizesNamesAndRolesWithOrWithoutThePrefix) {
  for (const std::string prefix : {"model.", ""}) {
    const auto ck = shapes(tiny_config(), tiny_tensors(prefix, prefix == "model."));
    const LlamaConfig c = llama_config(*ck);
    EXPECT_EQ(c.hidden, 16);
    EXPECT_EQ(c.layers, 2);
    EXPECT_EQ(c.heads, 4);
    EXPECT_EQ(c.kv_heads, 2);
    EXPECT_EQ(c.head_dim, 4);
    EXPECT_EQ(c.intermediate, 24);
    EXPECT_EQ(c.vocab, 10);
    EXPECT_FLOAT_EQ(c.eps, 1e-5f);
    EXPECT_EQ(c.embed, prefix + "embed_tokens.weight");
    EXPECT_EQ(c.lm_head, prefix == "model." ? "lm_head.weight" : "");
    EXPECT_EQ(c.blocks[1].q_b, "");
    EXPECT_EQ(c.window, (std::vector<int64_t>{0, 0}));
    const ModelSpec m = llama_model(*ck, c);
    EXPECT_EQ(m.tensors.size(), prefix == "model." ? 21u : 20u);
    EXPECT_EQ(m.find(prefix + "layers.1.self_attn.k_proj.weight")->site, "layers.1.attn_in");
    EXPECT_EQ(m.find(prefix + "layers.1.mlp.down_proj.weight")->site, "layers.1.mlp_act");
    EXPECT_EQ(m.find(prefix + "norm.weight")->role, Role::NormScale);
    EXPECT_EQ(m.find(prefix + "embed_tokens.weight")->role, Role::Other);
    EXPECT_EQ(m.site("layers.0.mlp_act")->dim, 24);
  }
}

TEST_F(LlamaArch, QkvBiasesAreShifts) {
  json t = tiny_tensors("model.", false);
  for (const char* p : {"q", "k", "v"})
    t.push_back({{"name", std::string("model.layers.0.self_attn.") + p + "_proj.bias"},
                 {"dtype", "BF16"},
                 {"shape", {std::string(p) == "q" ? 16 : 8}}});
  json cfg = tiny_config();
  cfg["model_type"] = "qwen2";
  const auto ck = shapes(cfg, t);
  const LlamaConfig c = llama_config(*ck);
  EXPECT_EQ(c.blocks[0].k_b, "model.layers.0.self_attn.k_proj.bias");
  EXPECT_EQ(c.blocks[1].k_b, "");
  EXPECT_EQ(llama_model(*ck, c).find("model.layers.0.self_attn.v_proj.bias")->role, Role::Shift);
}

TEST_F(LlamaArch, RefusesMixtureOfExpertsAndMismatches) {
  json moe = tiny_config();
  moe["num_local_experts"] = 8;
  EXPECT_THAT(error_for(moe, tiny_tensors("model.", true)), HasSubstr("mixture-of-experts models are not supported"));
  json t = tiny_tensors("model.", true);
  t.push_back({{"name", "model.layers.0.mlp.experts.0.up_proj.weight"}, {"dtype", "BF16"}, {"shape", {24, 16}}});
  EXPECT_THAT(error_for(tiny_config(), t), HasSubstr("tensor 'model.layers.0.mlp.experts.0.up_proj.weight'"));

  json heads = tiny_config();
  heads["num_attention_heads"] = 8;
  EXPECT_THAT(error_for(heads, tiny_tensors("model.", true)), HasSubstr("q_proj has 16 rows and k_proj 8"));
  json kv = tiny_config();
  kv["num_key_value_heads"] = 3;
  EXPECT_THAT(error_for(kv, tiny_tensors("model.", true)), HasSubstr("not a multiple of num_key_value_heads 3"));
  json hidden = tiny_config();
  hidden["hidden_size"] = 32;
  EXPECT_THAT(error_for(hidden, tiny_tensors("model.", true)), HasSubstr("config hidden_size = 32 disagrees"));
  json rope = tiny_config();
  rope["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", 10000.0}};
  EXPECT_THAT(error_for(rope, tiny_tensors("model.", true)), HasSubstr("rope type 'yarn' is not supported"));
}

TEST_F(LlamaArch, TheForwardNeedsAConfigAndAKnownModelType) {
  const auto bare = shapes(json::object(), tiny_tensors("model.", true));
  const ArchModel a = describe_model("llama", *bare);  // roles and plans need no config
  auto backend = make_backend("cpu", 1, "test");
  EXPECT_THAT(test::error_of([&] { make_forward(a, *backend); }), HasSubstr("needs the model's config.json"));
  json gemma = tiny_config();
  gemma["model_type"] = "gemma";
  const auto g = shapes(gemma, tiny_tensors("model.", true));
  EXPECT_THAT(test::error_of([&] { make_forward(describe_model("llama", *g), *backend); }),
              HasSubstr("model_type 'gemma' has no decoder forward"));
}

TEST_F(LlamaArch, SlidingWindowsPerLayer) {
  json mistral = tiny_config();
  mistral["model_type"] = "mistral";
  mistral["sliding_window"] = 5;
  EXPECT_EQ(llama_config(*shapes(mistral, tiny_tensors("model.", true))).window, (std::vector<int64_t>{5, 5}));
  json qwen = tiny_config();
  qwen["model_type"] = "qwen2";
  qwen["sliding_window"] = 5;
  EXPECT_EQ(llama_config(*shapes(qwen, tiny_tensors("model.", true))).window, (std::vector<int64_t>{0, 0}));
  qwen["use_sliding_window"] = true;
  qwen["max_window_layers"] = 1;
  EXPECT_EQ(llama_config(*shapes(qwen, tiny_tensors("model.", true))).window, (std::vector<int64_t>{0, 5}));
  json types = mistral;
  types["layer_types"] = {"full_attention", "sliding_attention"};
  EXPECT_EQ(llama_config(*shapes(types, tiny_tensors("model.", true))).window, (std::vector<int64_t>{0, 5}));
}

// transformers' _compute_default_rope_parameters, _compute_linear_scaling_rope_parameters and
// _compute_llama3_parameters, in double.
std::vector<double> hf_inv_freq(const RopeConfig& r, int64_t dim) {
  std::vector<double> f;
  for (int64_t i = 0; i < dim; i += 2) f.push_back(1.0 / std::pow(r.theta, static_cast<double>(i) / dim));
  if (r.type == RopeType::Linear)
    for (double& v : f) v /= r.factor;
  if (r.type == RopeType::Llama3) {
    const double low_wavelen = r.original_max_positions / r.low_freq_factor;
    const double high_wavelen = r.original_max_positions / r.high_freq_factor;
    for (double& v : f) {
      const double wavelen = 2 * M_PI / v;
      const double scaled = wavelen > low_wavelen ? v / r.factor : v;
      const double smooth = (r.original_max_positions / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
      const double smoothed = (1 - smooth) * scaled / r.factor + smooth * scaled;
      const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
      v = medium ? smoothed : scaled;
    }
  }
  return f;
}

TEST_F(LlamaArch, RopeInverseFrequenciesFollowTransformers) {
  RopeConfig llama3;
  llama3.theta = 500000.0, llama3.type = RopeType::Llama3, llama3.factor = 8.0;
  llama3.low_freq_factor = 1.0, llama3.high_freq_factor = 4.0, llama3.original_max_positions = 8192;
  RopeConfig linear;
  linear.type = RopeType::Linear, linear.factor = 4.0;
  for (const RopeConfig& r : {RopeConfig{}, linear, llama3}) {
    const std::vector<float> got = rope_inv_freq(r, 128);
    const std::vector<double> want = hf_inv_freq(r, 128);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], static_cast<float>(want[i])) << i;
  }
  // The parser reads transformers 5's rope_parameters and the older rope_theta + rope_scaling alike.
  json old = tiny_config();
  old["rope_theta"] = 500000.0;
  old["rope_scaling"] = {{"type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 8192}};
  json now = tiny_config();
  now["rope_parameters"] = old["rope_scaling"];
  now["rope_parameters"]["rope_theta"] = 500000.0;
  for (const json& cfg : {old, now}) {
    const RopeConfig r = llama_config(*shapes(cfg, tiny_tensors("model.", true))).rope;
    EXPECT_EQ(rope_inv_freq(r, 128), rope_inv_freq(llama3, 128));
  }
}

}  // namespace
}  // namespace cm
