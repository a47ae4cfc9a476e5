#include "random_checkpoint.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/error.hpp"
#include "common/hash.hpp"

namespace cm::bench {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The scale of a tensor's base values: unit-variance activations through linear maps (sqrt(3 / fan_in)),
// LayerNorm weights near 1, small biases and embeddings.
struct Scale {
  float offset, spread;
};

Scale scale_of(const TensorInfo& t) {
  const std::string& n = t.name;
  const bool bias = n.size() > 5 && n.compare(n.size() - 5, 5, ".bias") == 0;
  if (n.find("norm") != std::string::npos || n.find("layrnorm") != std::string::npos)
    return bias ? Scale{0.0f, 0.02f} : Scale{1.0f, 0.1f};
  if (bias || t.shape.size() == 1 || n.find("position") != std::string::npos) return {0.0f, 0.02f};
  int64_t fan_in = 1;
  for (size_t i = 1; i < t.shape.size(); ++i) fan_in *= t.shape[i];
  return {0.0f, static_cast<float>(std::sqrt(3.0 / static_cast<double>(fan_in)))};
}

}  // namespace

void fill_uniform(std::vector<float>& v, uint64_t seed) {
  const size_t threads = std::max(1u, std::thread::hardware_concurrency());
  const size_t chunk = (v.size() + threads - 1) / threads;
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const size_t end = std::min(v.size(), (t + 1) * chunk);
      for (size_t i = t * chunk; i < end; ++i)
        v[i] =
            static_cast<float>(static_cast<int64_t>(splitmix64(seed ^ (i * 0x9e3779b97f4a7c15ull)) >> 40) - (1 << 23)) *
            0x1p-23f;
    });
  }
  for (auto& th : pool) th.join();
}

RandomCheckpoint::RandomCheckpoint(const VitShape& s, int expert)
    : expert_(expert), path_("random-vit-expert" + std::to_string(expert)) {
  const int64_t d = s.hidden, f = s.mlp, side = s.image / s.patch;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    tensors_.push_back(TensorInfo{name, DType::F32, std::move(shape)});
  };
  const std::string p = "vision_model.";
  add(p + "embeddings.class_embedding", {d});
  add(p + "embeddings.patch_embedding.weight", {d, 3, s.patch, s.patch});
  add(p + "embeddings.position_embedding.weight", {side * side + 1, d});
  add(p + "pre_layrnorm.weight", {d});
  add(p + "pre_layrnorm.bias", {d});
  for (int i = 0; i < s.layers; ++i) {
    const std::string b = p + "encoder.layers." + std::to_string(i) + ".";
    add(b + "layer_norm1.weight", {d});
    add(b + "layer_norm1.bias", {d});
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      add(b + "self_attn." + proj + ".weight", {d, d});
      add(b + "self_attn." + proj + ".bias", {d});
    }
    add(b + "layer_norm2.weight", {d});
    add(b + "layer_norm2.bias", {d});
    add(b + "mlp.fc1.weight", {f, d});
    add(b + "mlp.fc1.bias", {f});
    add(b + "mlp.fc2.weight", {d, f});
    add(b + "mlp.fc2.bias", {d});
  }
  add(p + "post_layernorm.weight", {d});
  add(p + "post_layernorm.bias", {d});
  config_ =
      nlohmann::json{{"hidden_size", s.hidden},        {"num_hidden_layers", s.layers}, {"intermediate_size", s.mlp},
                     {"num_attention_heads", s.heads}, {"patch_size", s.patch},         {"image_size", s.image},
                     {"hidden_act", "quick_gelu"},     {"layer_norm_eps", 1e-5}}
          .dump();
}

const TensorInfo* RandomCheckpoint::find(const std::string& name) const {
  for (const TensorInfo& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

// theta_k = offset + spread * (u_base + 1e-2 * u_k): fine-tuned experts lie close to the base.
std::vector<float> RandomCheckpoint::read(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) fail(path_, "no tensor '" + name + "'");
  const Scale sc = scale_of(*t);
  const uint64_t h = fnv1a64(name);
  std::vector<float> v(static_cast<size_t>(t->numel()));
  fill_uniform(v, h);
  if (expert_ > 0) {
    std::vector<float> delta(v.size());
    fill_uniform(delta, splitmix64(h + static_cast<uint64_t>(expert_)));
    for (size_t i = 0; i < v.size(); ++i) v[i] += 1e-2f * delta[i];
  }
  for (float& x : v) x = sc.offset + sc.spread * x;
  return v;
}

}  // namespace cm::bench
