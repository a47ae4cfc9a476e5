// Every architecture's forward on the CUDA backend against the transformers oracle, as the CPU backend is
// checked in tests/unit/test_forward_oracle.cpp: CLIP (HF and open_clip names) and the llama family (grouped
// heads, LLaMA 3 rope, Mistral's sliding window on bf16 weights, Qwen2's biases on padded sequences).
#include <string>

#include "backend/backend.hpp"
#include "forward_testing.hpp"
#include "gpu_testing.hpp"

namespace cm {
namespace {

class GpuForward : public testing::GpuTest {};

TEST_F(GpuForward, EveryArchitectureMatchesTransformers) {
  struct Case {
    const char *arch, *model, *exemplars, *group, *oracle;
  };
  const auto cuda = make_backend("cuda", 0, "test");
  for (const Case& c : {Case{"clip_vit", "clip_hf/expert1", "exemplars.h5", "task1", "clip_hf_expert1.h5"},
                        Case{"clip_vit", "clip_openclip/expert1.safetensors", "exemplars.h5", "task1",
                             "clip_openclip_expert1.h5"},
                        Case{"llama", "llama_gqa/expert1", "tokens.h5", "task1", "llama_gqa_expert1.h5"},
                        Case{"llama", "llama3_rope/expert1", "tokens.h5", "task1", "llama3_rope_expert1.h5"},
                        Case{"llama", "mistral/expert1", "tokens.h5", "task1", "mistral_expert1.h5"},
                        Case{"llama", "qwen2/expert1", "tokens.h5", "padded1", "qwen2_expert1.h5"}}) {
    SCOPED_TRACE(c.oracle);
    testing::expect_forward_matches_oracle(*cuda, c.arch, c.model, c.exemplars, c.group, c.oracle);
  }
}

}  // namespace
}  // namespace cm
