// Every architecture's forward on the CUDA backend against the transformers oracle, as the CPU backend is
// checked in tests/unit/test_forward_oracle.cpp: CLIP (HF and open_clip names), the llama family (grouped
// heads, LLaMA 3 rope, Mistral's sliding window on bf16 weights, Qwen2's biases on padded sequences) and bert
// (BERT and RoBERTa on padded sequences: bidirectional attention with padded keys, exact-erf GELU, LayerNorm;
// BertForSequenceClassification's names).
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
  for (const Case& c : {Case{"clip_vit", "clip_hf/expert1", "exemplars.h5", "task1", "forward/clip_hf_expert1.h5"},
                        Case{"clip_vit", "clip_openclip/expert1.safetensors", "exemplars.h5", "task1",
                             "forward/clip_openclip_expert1.h5"},
                        Case{"llama", "llama_gqa/expert1", "tokens.h5", "task1", "forward/llama_gqa_expert1.h5"},
                        Case{"llama", "llama3_rope/expert1", "tokens.h5", "task1", "forward/llama3_rope_expert1.h5"},
                        Case{"llama", "mistral/expert1", "tokens.h5", "task1", "forward/mistral_expert1.h5"},
                        Case{"llama", "qwen2/expert1", "tokens.h5", "padded1", "forward/qwen2_expert1.h5"},
                        Case{"bert", "bert/expert1", "bert/tokens.h5", "task1", "bert/oracle_expert1.h5"},
                        Case{"bert", "roberta/expert1", "roberta/tokens.h5", "task1", "roberta/oracle_expert1.h5"},
                        Case{"bert", "bert_seqcls/model", "bert/tokens.h5", "task2", "bert_seqcls/oracle.h5"}}) {
    SCOPED_TRACE(c.oracle);
    testing::expect_forward_matches_oracle(*cuda, c.arch, c.model, c.exemplars, c.group, c.oracle);
  }
}

}  // namespace
}  // namespace cm
