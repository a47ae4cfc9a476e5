// Every architecture's forward, through the Forward interface, against the transformers oracle
// (tools/reference/make_fixtures.py): every feature site and the pooled output of the first two exemplars
// through expert 1. CLIP: the same expert under HF names (separate q/k/v) and open_clip names (fused
// in_proj, transposed proj), plus the image embeddings. llama family: LLaMA with grouped-query attention,
// LLaMA 3 rope scaling with tied embeddings, Mistral's sliding window on bf16 weights, Qwen2's q/k/v biases
// on padded exemplars.
#include <gtest/gtest.h>

#include <string>

#include "backend/backend.hpp"
#include "forward_testing.hpp"

namespace cm {
namespace {

void check(const std::string& arch, const std::string& model, const std::string& exemplars, const std::string& group,
           const std::string& oracle) {
  const auto cpu = make_backend("cpu", 0, "test");
  testing::expect_forward_matches_oracle(*cpu, arch, model, exemplars, group, oracle);
}

TEST(ForwardOracle, ClipHf) {
  check("clip_vit", "clip_hf/expert1", "exemplars.h5", "task1", "clip_hf_expert1.h5");
}

TEST(ForwardOracle, ClipOpenClip) {
  check("clip_vit", "clip_openclip/expert1.safetensors", "exemplars.h5", "task1",
                       "clip_openclip_expert1.h5");
}

TEST(ForwardOracle, LlamaGroupedQueryAttention) {
  check("llama", "llama_gqa/expert1", "tokens.h5", "task1", "llama_gqa_expert1.h5");
}

TEST(ForwardOracle, Llama3RopeScalingTiedEmbeddings) {
  check("llama", "llama3_rope/expert1", "tokens.h5", "task1", "llama3_rope_expert1.h5");
}

TEST(ForwardOracle, MistralSlidingWindowBf16) {
  check("llama", "mistral/expert1", "tokens.h5", "task1", "mistral_expert1.h5");
}

TEST(ForwardOracle, Qwen2BiasesPaddedExemplars) {
  check("llama", "qwen2/expert1", "tokens.h5", "padded1", "qwen2_expert1.h5");
}

}  // namespace
}  // namespace cm
