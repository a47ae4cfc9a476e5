// LoRA experts (io/peft_adapter.*) against peft itself: every adapter of data/fixtures/lora (made by
// tools/make_lora_fixtures.py) read as an expert is, tensor by tensor, the checkpoint peft's merge_and_unload()
// saved for it (ADAPTER.merged; fan_in_fan_out's made with numpy); merges of LoRA experts through the job equal
// the same merges of those checkpoints; eval scores an adapter as peft's own forward predicted; the output's
// provenance and the feature cache's key cover the adapter's files.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "io/checkpoint.hpp"
#include "io/content_hash.hpp"
#include "job/config.hpp"
#include "job/feature_cache.hpp"
#include "job/inputs.hpp"
#include "job/merge_job.hpp"
#include "job/provenance.hpp"
#include "plan/shard_plan.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::fixtures_dir;

std::string fixture(const std::string& relative) { return (fixtures_dir() / relative).string(); }

struct AdapterCase {
  std::string adapter;  // under data/fixtures/lora; its expert is ADAPTER.merged
  std::string base;     // under data/fixtures
  int changed;          // tensors the adapter changes
};

const AdapterCase kAdapters[] = {
    {"llama_qkvo", "llama/base", 9},            // q/k/v/o_proj of 2 layers, lm_head whole
    {"llama_mlp_rslora", "llama/base", 7},      // gate/up/down_proj of 2 layers, embed_tokens
    {"llama_fan_in_fan_out", "llama/base", 4},  // v_proj and up_proj of 2 layers
    {"clip", "clip_hf/base", 10},               // q/v_proj, fc1, fc2 of 2 layers, post_layernorm weight and bias
    {"clip_bf16", "clip_bf16/base", 4},         // k_proj and fc2 of 2 layers
    {"bert", "lora/bert_base", 2},              // query and value of 1 layer
};

class LoraAdapter : public ::testing::TestWithParam<AdapterCase> {};

TEST_P(LoraAdapter, IsTheCheckpointPeftMergedItInto) {
  const AdapterCase& c = GetParam();
  const std::shared_ptr<const Checkpoint> base = open_checkpoint(fixture(c.base));
  const auto lora = open_expert_checkpoint(fixture("lora/" + c.adapter), base);
  const auto want = open_checkpoint(fixture("lora/" + c.adapter + ".merged"));
  EXPECT_EQ(lora->config_json(), base->config_json());
  test::expect_same_tensors(*lora, *want, 1e-6);
  int changed = 0;
  for (const TensorInfo& w : want->tensors()) {
    SCOPED_TRACE(w.name);
    const std::vector<float> got = lora->read(w.name);
    changed += got != base->read(w.name) ? 1 : 0;
    // Any range reads as the same values: pieces that start and end inside rows.
    std::vector<float> pieces(got.size());
    for (int64_t first = 0; first < w.numel(); first += 7)
      lora->read_into(w.name, first, std::min<int64_t>(7, w.numel() - first), pieces.data() + first);
    EXPECT_EQ(pieces, got);
  }
  EXPECT_EQ(changed, c.changed);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LoraAdapter, ::testing::ValuesIn(kAdapters),
                         [](const ::testing::TestParamInfo<AdapterCase>& info) { return info.param.adapter; });

// An adapter of LlamaForCausalLM (model.layers...) on a base saved without that prefix (layers...): its factors
// find their tensors by the tail of their names.
TEST(LoraAdapterNames, ACausalLmAdapterFitsABareBase) {
  const test::ScratchDir dir;
  std::vector<test::NamedTensor> bare = test::read_all(fixture("llama/base"));
  for (test::NamedTensor& t : bare)
    if (t.name.rfind("model.", 0) == 0) t.name = t.name.substr(6);
  test::write_safetensors(dir / "bare.safetensors", bare);
  const auto lora = open_expert_checkpoint(fixture("lora/llama_qkvo"), open_checkpoint((dir / "bare.safetensors").string()));
  const auto want = open_checkpoint(fixture("lora/llama_qkvo.merged"));
  for (const TensorInfo& w : want->tensors()) {
    const std::string name = w.name.rfind("model.", 0) == 0 ? w.name.substr(6) : w.name;
    EXPECT_LE(test::relative_error(lora->read(name), want->read(w.name)), 1e-6) << name;
  }
}

// A merge whose experts under lora/ are adapters, and the same merge with each replaced by ADAPTER.merged, run
// through the job: the outputs agree within 1e-6 relative per tensor (16-bit outputs: or one unit in the last place).
void expect_same_merge(const json& cfg) {
  const test::ScratchDir dir;
  json materialised = cfg;
  for (json& e : materialised["experts"])
    if (e["path"].get<std::string>().rfind("lora/", 0) == 0) e["path"] = e["path"].get<std::string>() + ".merged";
  const auto merge = [&](const json& c, const std::string& name) {
    const fs::path file = dir / (name + ".yaml"), out = dir / (name + ".h5");
    std::ofstream(file) << test::fixture_case_config(c, out.string());
    SoloCommunicator solo;
    run_merge(load_config(file.string(), {}), solo);
    return open_checkpoint(out.string());
  };
  const auto lora = merge(cfg, "lora"), checkpoints = merge(materialised, "merged");
  test::expect_same_tensors(*lora, *checkpoints, 1e-6);
}

json llama_merge(const json& method) {
  json experts = json::array();
  for (const char* a : {"llama_qkvo", "llama_mlp_rslora", "llama_fan_in_fan_out"})
    experts.push_back({{"name", a}, {"path", std::string("lora/") + a},
                       {"exemplars", "lora/tokens.h5:/task" + std::to_string(experts.size() + 1)}});
  return {{"model", {{"arch", "llama"}, {"base", "llama/base"}}},
          {"experts", experts},
          {"method", method},
          {"runtime", {{"backend", "cpu"}, {"threads", 2}}}};
}

TEST(LoraMerge, TaskArithmeticOfLlamaAdaptersIsThatOfTheirCheckpoints) {
  expect_same_merge(llama_merge({{"name", "task_arithmetic"}, {"alpha", 0.4}}));
}

TEST(LoraMerge, TiesOfLlamaAdaptersIsThatOfTheirCheckpoints) { expect_same_merge(llama_merge({{"name", "ties"}})); }

// CAT on LoRA experts needs a setting whose bases are well defined: a LoRA task vector has rank r, so G_k has
// eigenvalues that are zero but for rounding, and at lambda 5 some units have fewer than c clearly positive ones;
// which of those noise eigenvalues come out positive then decides the basis, and a last-bit change of an expert
// moves the merge by 1e-3 (so it does for two full checkpoints that differ in one bit). With lambda 0.2 every
// G_k is positive semidefinite on the factors' span, and c 2 is below every rank here (down_proj's rank_pattern 2).
const json kWellPosedCat = {{"name", "cat"}, {"c", 2}, {"lambda", 0.2}};

TEST(LoraMerge, CatWithFeaturesOfLlamaAdaptersIsThatOfTheirCheckpoints) {
  json cfg = llama_merge(kWellPosedCat);
  cfg["features"] = {{"exemplars", 4}};
  expect_same_merge(cfg);
}

// A LoRA expert beside a full one, CAT's features from both.
TEST(LoraMerge, CatOfAClipAdapterAndAFullExpert) {
  json method = kWellPosedCat;
  method["alpha"] = 0.5;
  expect_same_merge({{"model", {{"arch", "clip_vit"}, {"base", "clip_hf/base"}}},
                     {"experts", {{{"name", "lora"}, {"path", "lora/clip"}, {"exemplars", "exemplars.h5:/task1"}},
                                  {{"name", "full"}, {"path", "clip_hf/expert2"}, {"exemplars", "exemplars.h5:/task2"}}}},
                     {"method", method},
                     {"runtime", {{"backend", "cpu"}, {"threads", 2}}}});
}

// bfloat16: the adapter's expert is rounded to bf16 as a bf16 checkpoint holds it; so is the merge.
TEST(LoraMerge, TaskArithmeticOnABf16Base) {
  expect_same_merge({{"model", {{"arch", "clip_vit"}, {"base", "clip_bf16/base"}}},
                     {"experts", {{{"name", "lora"}, {"path", "lora/clip_bf16"}},
                                  {{"name", "full"}, {"path", "clip_bf16/expert1"}}}},
                     {"method", {{"name", "task_arithmetic"}, {"alpha", 0.5}}},
                     {"runtime", {{"backend", "cpu"}, {"threads", 2}}}});
}

// eval --model ADAPTER scores the expert the adapter makes from model.base: every label of eval.h5 is what
// peft's unmerged forward of llama_qkvo predicts, which the base gets wrong on some sequences.
TEST(LoraEval, ScoresAnAdapterOnTheConfigurationsBase) {
  const test::ScratchDir dir;
  const std::string config = (dir / "eval.yaml").string();
  const auto write_config = [&](bool with_base) {
    std::ofstream(config) << "model: {arch: llama" << (with_base ? ", base: " + fixture("llama/base") : "") << "}\n"
                          << "experts: [{name: qkvo, path: x}]\n"
                          << "eval: {heads: " << fixture("lora/heads.safetensors") << ", data: " << fixture("lora/eval.h5")
                          << "}\nruntime: {backend: cpu, threads: 1}\n";
  };
  write_config(true);
  const auto correct = [&](const std::string& model) {
    const std::string prefix = (dir / "scores").string();
    const test::CliResult r = test::run_catmerge({"eval", config, "--model", model, "--out", prefix});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const json scores = json::parse(test::file_bytes(prefix + ".json"));
    EXPECT_EQ(scores["tasks"][0]["images"], 12);
    return scores["tasks"][0]["correct"].get<int>();
  };
  EXPECT_EQ(correct(fixture("lora/llama_qkvo")), 12);
  EXPECT_EQ(correct(fixture("lora/llama_qkvo.merged")), 12);
  EXPECT_LT(correct(fixture("llama/base")), 12);

  write_config(false);
  const test::CliResult r = test::run_catmerge({"eval", config, "--model", fixture("lora/llama_qkvo")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "catmerge: error: " + config + ": model.base: missing (--model " + fixture("lora/llama_qkvo") +
                       " is a PEFT adapter of it)\n");
}

// Without a configuration there is no base to apply an adapter to: one line that says so.
TEST(LoraInspect, AnAdapterAloneIsRefusedWithAReason) {
  const test::CliResult r = test::run_catmerge({"inspect", fixture("lora/clip")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("catmerge: error: " + fixture("lora/clip") + ": a PEFT adapter (adapter_config.json) is read "
                        "against a base model", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// A job's configuration, its inputs and a one-rank plan.
struct Opened {
  explicit Opened(const std::string& config)
      : cfg(load_config(config, {})), in(cfg, false), plan(make_plan(in.model(), 1)) {}
  JobConfig cfg;
  JobInputs in;
  ShardPlan plan;
};

// The adapter's two files are the expert's inputs: listed with their content hashes in the output's provenance, and
// in the feature cache's key, so an adapter with one value changed is another expert there.
TEST(LoraInputs, ProvenanceAndFeatureKeysCoverTheAdapterFiles) {
  const test::ScratchDir dir;
  for (const char* copy : {"a", "b"}) fs::copy(fixture("lora/clip"), dir / copy);
  const std::string changed = (dir / "b" / "adapter_model.safetensors").string();
  std::vector<test::NamedTensor> factors = test::read_all(changed);
  factors.front().values.front() += 0.25f;
  test::write_safetensors(changed, factors);

  const auto open = [&](const std::string& adapter) {
    const fs::path file = dir / (adapter + ".yaml");
    std::ofstream(file) << "model: {arch: clip_vit, base: " << fixture("clip_hf/base") << "}\nexperts: [{name: t, path: "
                        << (dir / adapter).string() << ", exemplars: '" << fixture("exemplars.h5") << ":/task1'}]\n"
                        << "method: {name: cat}\noutput: {path: " << (dir / "out.h5").string() << "}\n";
    return std::make_unique<Opened>(file.string());
  };
  const auto a = open("a"), b = open("b");
  SoloCommunicator solo;

  const json inputs = describe_inputs(a->cfg, a->in, a->plan, solo, true);
  std::vector<std::string> expert_files;
  for (const json& f : inputs) {
    if (f["role"] != "expert:t") continue;
    const std::string path = f["path"];
    expert_files.push_back(fs::path(path).filename().string());
    EXPECT_EQ(f["size"].get<uint64_t>(), fs::file_size(path)) << path;
    EXPECT_EQ(f[kContentHashName], content_hash_file(path)) << path;
  }
  EXPECT_EQ(expert_files, (std::vector<std::string>{"adapter_config.json", "adapter_model.safetensors"}));

  const auto key_inputs = [&](const Opened& o) {
    return feature_inputs_of(o.cfg, o.in, 0, {}, "cpu", hash_feature_files(o.cfg, o.in, o.plan, solo));
  };
  const std::vector<FeatureInput> before = key_inputs(*a), now = key_inputs(*b);
  EXPECT_NE(feature_key(before), feature_key(now));
  EXPECT_EQ(describe_change(before, now),
            "another expert (experts.0.path, " + changed + ": hash " +
                content_hash_file((dir / "a" / "adapter_model.safetensors").string()) + " now " +
                content_hash_file(changed) + ")");
}

}  // namespace
}  // namespace cm
