// Every architecture's forward, through the Forward interface, against the transformers oracle
// (tools/reference/make_fixtures.py; bert: tools/make_random_bert.py): every feature site and the pooled
// output of the first two exemplars through expert 1. CLIP: the same expert under HF names (separate q/k/v)
// and open_clip names (fused in_proj, transposed proj), plus the image embeddings. llama family: LLaMA with
// grouped-query attention, LLaMA 3 rope scaling with tied embeddings, Mistral's sliding window on bf16
// weights, Qwen2's q/k/v biases on padded exemplars. bert: BERT and RoBERTa (its padding-offset positions)
// on right- and left-padded sequences, and BertForSequenceClassification's names under bert.; and any model
// a test names in the environment (tests/hf/bert_minilm_forward.py: the real all-MiniLM-L6-v2).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "backend/backend.hpp"
#include "forward_testing.hpp"
#include "io/exemplars.hpp"

namespace cm {
namespace {

void check(const std::string& arch, const std::string& model, const std::string& exemplars, const std::string& group,
           const std::string& oracle) {
  const auto cpu = make_backend("cpu", 0, "test");
  testing::expect_forward_matches_oracle(*cpu, arch, model, exemplars, group, oracle);
}

TEST(ForwardOracle, ClipHf) {
  check("clip_vit", "clip_hf/expert1", "exemplars.h5", "task1", "forward/clip_hf_expert1.h5");
}

TEST(ForwardOracle, ClipOpenClip) {
  check("clip_vit", "clip_openclip/expert1.safetensors", "exemplars.h5", "task1",
        "forward/clip_openclip_expert1.h5");
}

TEST(ForwardOracle, LlamaGroupedQueryAttention) {
  check("llama", "llama_gqa/expert1", "tokens.h5", "task1", "forward/llama_gqa_expert1.h5");
}

TEST(ForwardOracle, Llama3RopeScalingTiedEmbeddings) {
  check("llama", "llama3_rope/expert1", "tokens.h5", "task1", "forward/llama3_rope_expert1.h5");
}

TEST(ForwardOracle, MistralSlidingWindowBf16) {
  check("llama", "mistral/expert1", "tokens.h5", "task1", "forward/mistral_expert1.h5");
}

TEST(ForwardOracle, Qwen2BiasesPaddedExemplars) {
  check("llama", "qwen2/expert1", "tokens.h5", "padded1", "forward/qwen2_expert1.h5");
}

TEST(ForwardOracle, BertPaddedExemplars) {
  check("bert", "bert/expert1", "bert/tokens.h5", "task1", "bert/oracle_expert1.h5");
}

TEST(ForwardOracle, RobertaPaddingOffsetPositions) {
  check("bert", "roberta/expert1", "roberta/tokens.h5", "task1", "roberta/oracle_expert1.h5");
}

TEST(ForwardOracle, BertForSequenceClassificationNames) {
  check("bert", "bert_seqcls/model", "bert/tokens.h5", "task2", "bert_seqcls/oracle.h5");
}

// A model and an oracle a test wrote at run time: CATMERGE_ORACLE_MODEL (a checkpoint of architecture
// CATMERGE_ORACLE_ARCH) and CATMERGE_ORACLE (an HDF5 file holding the sites, 'pooled', and the exemplars
// it ran at its root). Skipped without them.
TEST(ForwardOracle, ModelNamedByTheEnvironment) {
  const char* model = std::getenv("CATMERGE_ORACLE_MODEL");
  const char* arch = std::getenv("CATMERGE_ORACLE_ARCH");
  const char* oracle = std::getenv("CATMERGE_ORACLE");
  if (!model || !arch || !oracle) GTEST_SKIP() << "CATMERGE_ORACLE_MODEL, CATMERGE_ORACLE_ARCH and CATMERGE_ORACLE unset";
  const auto cpu = make_backend("cpu", 0, "test");
  testing::expect_forward_matches_oracle(*cpu, arch, model, oracle, "/", oracle, count_exemplars(oracle, "/", ""));
}

}  // namespace
}  // namespace cm
