#pragma once
// An in-memory CLIP vision tower under HuggingFace names whose values are a fixed function of (tensor name,
// expert, element), computed when read: the base for expert 0, base plus a small task vector for expert
// k >= 1. It stands in for checkpoints on disk, so a ViT-L-sized merge needs neither files nor downloads.
#include <string>
#include <vector>

#include "io/checkpoint.hpp"

namespace cm::bench {

struct VitShape {
  int layers = 24, hidden = 1024, mlp = 4096, heads = 16, patch = 14, image = 224;
};

class RandomCheckpoint : public Checkpoint {
 public:
  RandomCheckpoint(const VitShape& shape, int expert);
  const std::string& path() const override { return path_; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  const TensorInfo* find(const std::string& name) const override;
  std::vector<float> read(const std::string& name) const override;
  std::string file_of(const std::string&) const override { return path_; }
  std::vector<std::string> files() const override { return {}; }
  const std::string& config_json() const override { return config_; }

 private:
  int expert_;
  std::string path_, config_;
  std::vector<TensorInfo> tensors_;
};

// Uniform values in [-1, 1) from (seed, element), filled on every core.
void fill_uniform(std::vector<float>& v, uint64_t seed);

}  // namespace cm::bench
