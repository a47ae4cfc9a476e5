#pragma once
// The CLIP vision forward pass (transformers' CLIPVisionModel with eager attention; open_clip's
// VisionTransformer computes the same), one pipeline stage per call so a distributed run can hand the
// hidden states from rank to rank: stage 0 = embed, 1..L = block(0..L-1), L+1 = final.
// Each stage fetches only its own tensors and drops them when it returns, so at most one block's weights
// are held at a time. Feature sites (docs/DESIGN.md) are recorded as they are passed.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "arch/clip_vit.hpp"
#include "backend/backend.hpp"
#include "features/feature_store.hpp"

namespace cm {

// A checkpoint tensor by name as float32 row-major (the expert as stored, or the scaled feature model).
using WeightSource = std::function<std::vector<float>(const std::string& tensor_name)>;

class ClipForward {
 public:
  ClipForward(const ClipVisionConfig& cfg, Backend& backend);

  // Stage 0. pixels: [n_images, channels, image_size, image_size]. Returns the hidden states
  // [n_images * tokens, hidden] (image-major, CLS token first) after the pre-LayerNorm.
  std::vector<float> embed(const WeightSource& w, const float* pixels, int64_t n_images, FeatureSink* sink) const;

  // Stage i + 1: transformer block i (0-based), in place on hidden.
  void block(int i, const WeightSource& w, std::vector<float>& hidden, int64_t n_images, FeatureSink* sink) const;

  struct Pooled {
    std::vector<float> pooled;  // [n_images, hidden]: post-LayerNorm of each image's CLS token
    std::vector<float> embeds;  // [n_images, proj_dim]; empty when the checkpoint has no projection
  };
  // Stage L + 1.
  Pooled final(const WeightSource& w, const std::vector<float>& hidden, int64_t n_images, FeatureSink* sink) const;

  // Every stage in order.
  Pooled run(const WeightSource& w, const float* pixels, int64_t n_images, FeatureSink* sink) const;

 private:
  void norm(const WeightSource& w, const std::string& g, const std::string& b, const std::string& site,
            const float* x, float* y, int64_t rows, FeatureSink* sink) const;
  void dense(const WeightSource& w, const std::string& wname, const std::string& bname, const float* x, float* y,
             int64_t rows, int64_t out, int64_t in) const;

  ClipVisionConfig cfg_;
  Backend& be_;
};

}  // namespace cm
