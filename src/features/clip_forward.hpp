#pragma once
// The CLIP vision forward pass (transformers' CLIPVisionModel with eager attention; open_clip's
// VisionTransformer computes the same) behind the Forward interface: stage 0 = embed, 1..L = block(0..L-1),
// L+1 = final, whose pooled output is the post-LayerNorm of each image's CLS token. The hidden state is
// [n_images * tokens, hidden] (image-major, CLS token first).
#include <cstdint>
#include <string>
#include <vector>

#include "arch/clip_vit.hpp"
#include "backend/backend.hpp"
#include "features/feature_store.hpp"
#include "features/forward.hpp"

namespace cm {

class ClipForward : public Forward {
 public:
  ClipForward(const ClipVisionConfig& cfg, Backend& backend);

  InputKind input() const override { return InputKind::Images; }
  void check_input(const Exemplars& x, const std::string& where) const override;
  int num_stages() const override { return cfg_.layers + 2; }
  int64_t hidden_elements(int stage, const Exemplars& x) const override;
  int64_t rows_per_exemplar(const Site& site, const Exemplars& x) const override;
  int64_t pooled_dim() const override { return cfg_.hidden; }
  double matmul_flops(const Exemplars& x) const override;
  void stage(int s, const WeightSource& w, const Exemplars& x, std::vector<float>& hidden,
             FeatureSink* sink) const override;

  // Stage 0. pixels: [n_images, channels, image_size, image_size]. Returns the hidden states
  // [n_images * tokens, hidden] (image-major, CLS token first) after the pre-LayerNorm.
  std::vector<float> embed(const WeightSource& w, const float* pixels, int64_t n_images, FeatureSink* sink) const;

  // Stage i + 1: transformer block i (0-based), in place on hidden.
  void block(int i, const WeightSource& w, std::vector<float>& hidden, int64_t n_images, FeatureSink* sink) const;

  struct Pooled {
    std::vector<float> pooled;  // [n_images, hidden]: post-LayerNorm of each image's CLS token
    std::vector<float> embeds;  // [n_images, proj_dim]; empty when the checkpoint has no projection
  };
  // Stage L + 1's pooled output, and the projection of it when the checkpoint has one.
  Pooled final(const WeightSource& w, const std::vector<float>& hidden, int64_t n_images, FeatureSink* sink) const;

 private:
  // The pooled output alone: what stage L + 1 leaves (nothing downstream of a stage reads the projection).
  std::vector<float> pool(const WeightSource& w, const std::vector<float>& hidden, int64_t n_images,
                          FeatureSink* sink) const;
  void norm(const WeightSource& w, const std::string& g, const std::string& b, const std::string& site,
            const float* x, float* y, int64_t rows, FeatureSink* sink) const;

  ClipVisionConfig cfg_;
  Backend& be_;
};

}  // namespace cm
