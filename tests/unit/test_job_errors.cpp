// Bad input, end to end through the catmerge binary: one line naming the file and the problem,
// a non-zero exit, and no output (final or temporary) left behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace cm {
namespace {

namespace fs = std::filesystem;
using test::fixtures_dir;

class JobErrors : public ::testing::Test {
 protected:
  // A CAT merge of two clip_hf experts whose second expert is `expert2` (default: the fixture's).
  std::string config(const std::string& expert2 = "", const std::string& extra = "",
                     const std::string& method = "{name: cat, alpha: 0.3}") const {
    const fs::path f = fixtures_dir();
    const std::string e2 = expert2.empty() ? (f / "clip_hf/expert2").string() : expert2;
    return "model: {arch: clip_vit, base: " + (f / "clip_hf/base").string() + "}\n" +
           "experts:\n"
           "  - {name: a, path: " + (f / "clip_hf/expert1").string() + ", exemplars: " +
           (f / "exemplars.h5").string() + ":/task1}\n" +
           "  - {name: b, path: " + e2 + ", exemplars: " + (f / "exemplars.h5").string() + ":/task2}\n" +
           "method: " + method + "\n" + "output: {path: " + (dir_ / "merged.h5").string() + "}\n" + extra;
  }

  // Runs the config and checks the common contract; returns stderr.
  std::string fails(const std::string& text, const std::vector<std::string>& more = {}) const {
    const fs::path cfg = dir_ / "merge.yaml";
    std::ofstream(cfg) << text;
    std::vector<std::string> args{"run", cfg.string()};
    args.insert(args.end(), more.begin(), more.end());
    const test::CliResult r = test::run_catmerge(args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.err.rfind("catmerge: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "not one line: " << r.err;
    for (const auto& name : test::list_dir(dir_.path()))
      EXPECT_EQ(name.find(".h5"), std::string::npos) << "left behind: " << name;
    return r.err;
  }

  // expert2's tensors, changed by `edit`, written as one safetensors file in the scratch folder.
  template <class Edit>
  std::string edited_expert(Edit edit) const {
    auto tensors = test::read_all((fixtures_dir() / "clip_hf/expert2").string());
    edit(tensors);
    const fs::path p = dir_ / "expert2.safetensors";
    test::write_safetensors(p, tensors);
    return p.string();
  }

  // The committed CLIP LoRA adapter (data/fixtures/lora/clip) copied into the scratch folder, its configuration
  // and its factors changed by the edits.
  template <class EditConfig, class EditFactors>
  std::string edited_adapter(EditConfig edit_config, EditFactors edit_factors) const {
    const fs::path p = dir_ / "adapter";
    fs::copy(fixtures_dir() / "lora/clip", p);
    nlohmann::ordered_json cfg = nlohmann::ordered_json::parse(test::file_bytes(p / "adapter_config.json"));
    edit_config(cfg);
    std::ofstream(p / "adapter_config.json") << cfg.dump(2);
    auto factors = test::read_all((p / "adapter_model.safetensors").string());
    edit_factors(factors);
    test::write_safetensors(p / "adapter_model.safetensors", factors);
    return p.string();
  }

  // A merge whose second expert is the adapter `p` fails, naming the adapter's file and the problem.
  void expect_adapter_error(const std::string& p, const std::string& file_and_problem) const {
    const std::string err = fails(config(p));
    EXPECT_NE(err.find(p + file_and_problem), std::string::npos) << err;
  }

  test::ScratchDir dir_;
};

const std::string kQ0 = "base_model.model.vision_model.encoder.layers.0.self_attn.q_proj";
const auto kSameConfig = [](auto&) {};
const auto kSameFactors = [](auto&) {};

TEST_F(JobErrors, UnknownSection) {
  const std::string err = fails(config("", "modle: {}\n"));
  EXPECT_NE(err.find("merge.yaml: modle: unknown key"), std::string::npos) << err;
}

TEST_F(JobErrors, UnknownKeyInSection) {
  const std::string err = fails(config("", "runtime: {backend: cpu, thread: 2}\n"));
  EXPECT_NE(err.find("runtime.thread: unknown key"), std::string::npos) << err;
}

TEST_F(JobErrors, UnknownHyperparameter) {
  const std::string err = fails(config("", "", "{name: cat, alpah: 0.3}"));
  EXPECT_NE(err.find("merge.yaml"), std::string::npos) << err;
  EXPECT_NE(err.find("alpah"), std::string::npos) << err;
}

TEST_F(JobErrors, UnknownMethod) {
  const std::string err = fails(config("", "", "{name: catt}"));
  EXPECT_NE(err.find("catt"), std::string::npos) << err;
}

TEST_F(JobErrors, BadSetKey) {
  const std::string err = fails(config(), {"--set", "output.dtyp=f16"});
  EXPECT_NE(err.find("output.dtyp: unknown key"), std::string::npos) << err;
}

TEST_F(JobErrors, MissingExpertFile) {
  const std::string missing = (dir_ / "nowhere/model.safetensors").string();
  const std::string err = fails(config(missing));
  EXPECT_NE(err.find(missing), std::string::npos) << err;
  EXPECT_NE(err.find("no such file"), std::string::npos) << err;
}

TEST_F(JobErrors, TensorAbsentFromExpert) {
  const std::string name = "vision_model.encoder.layers.1.mlp.fc1.weight";
  const std::string p = edited_expert([&](auto& ts) {
    ts.erase(std::remove_if(ts.begin(), ts.end(), [&](const auto& t) { return t.name == name; }), ts.end());
  });
  const std::string err = fails(config(p));
  EXPECT_NE(err.find(p), std::string::npos) << err;
  EXPECT_NE(err.find(name), std::string::npos) << err;
  EXPECT_NE(err.find("missing"), std::string::npos) << err;
}

TEST_F(JobErrors, MismatchedShape) {
  const std::string name = "vision_model.encoder.layers.0.self_attn.k_proj.weight";
  const std::string p = edited_expert([&](auto& ts) {
    for (auto& t : ts)
      if (t.name == name) t.shape = {t.shape[1], t.shape[0] / 2, 2};
  });
  const std::string err = fails(config(p));
  EXPECT_NE(err.find(p), std::string::npos) << err;
  EXPECT_NE(err.find(name), std::string::npos) << err;
  EXPECT_NE(err.find("shape"), std::string::npos) << err;
}

TEST_F(JobErrors, NanInTaskVector) {
  const std::string name = "vision_model.encoder.layers.0.mlp.fc2.bias";
  const std::string p = edited_expert([&](auto& ts) {
    for (auto& t : ts)
      if (t.name == name) t.values[3] = std::numeric_limits<float>::quiet_NaN();
  });
  const std::string err = fails(config(p, "", "{name: task_arithmetic}"));
  EXPECT_NE(err.find(p), std::string::npos) << err;
  EXPECT_NE(err.find(name), std::string::npos) << err;
  EXPECT_NE(err.find("NaN"), std::string::npos) << err;
}

TEST_F(JobErrors, InfInTaskVector) {
  const std::string name = "vision_model.post_layernorm.weight";
  const std::string p = edited_expert([&](auto& ts) {
    for (auto& t : ts)
      if (t.name == name) t.values[0] = std::numeric_limits<float>::infinity();
  });
  const std::string err = fails(config(p, "", "{name: ties}"));
  EXPECT_NE(err.find(p), std::string::npos) << err;
  EXPECT_NE(err.find("infinite"), std::string::npos) << err;
}

TEST_F(JobErrors, TruncatedExpertFile) {
  const std::string p = edited_expert([](auto&) {});
  fs::resize_file(p, fs::file_size(p) - 100);
  const std::string err = fails(config(p));
  EXPECT_NE(err.find(p), std::string::npos) << err;
}

TEST_F(JobErrors, MissingExemplarGroup) {
  std::string text = config();
  text.replace(text.find(":/task2"), 7, ":/task9");
  const std::string err = fails(text);
  EXPECT_NE(err.find("task9"), std::string::npos) << err;
}

TEST_F(JobErrors, LoraAdapterOfAnotherType) {
  const std::string p = edited_adapter([](auto& c) { c["peft_type"] = "LOHA"; }, kSameFactors);
  expect_adapter_error(p, "/adapter_config.json: peft_type LOHA: only LORA adapters are read");
}

TEST_F(JobErrors, LoraAdapterWithDora) {
  const std::string p = edited_adapter([](auto& c) { c["use_dora"] = true; }, kSameFactors);
  expect_adapter_error(p, "/adapter_config.json: use_dora is true: only plain LoRA");
}

TEST_F(JobErrors, LoraAdapterWithoutConfig) {
  const std::string p = edited_adapter(kSameConfig, kSameFactors);
  fs::remove(fs::path(p) / "adapter_config.json");
  expect_adapter_error(p, ": has adapter_model.safetensors but no adapter_config.json");
}

TEST_F(JobErrors, LoraAdapterWithMalformedConfig) {
  const std::string p = edited_adapter(kSameConfig, kSameFactors);
  std::ofstream(fs::path(p) / "adapter_config.json") << "{\"peft_type\": \"LORA\", ";
  expect_adapter_error(p, "/adapter_config.json: not valid JSON");
}

TEST_F(JobErrors, LoraAdapterWithAStringRank) {
  const std::string p = edited_adapter([](auto& c) { c["r"] = "4"; }, kSameFactors);
  expect_adapter_error(p, "/adapter_config.json: r: expected a positive integer");
}

TEST_F(JobErrors, LoraAdapterWithoutWeights) {
  const std::string p = edited_adapter(kSameConfig, kSameFactors);
  fs::remove(fs::path(p) / "adapter_model.safetensors");
  expect_adapter_error(p, "/adapter_model.safetensors: missing");
}

TEST_F(JobErrors, LoraAdapterWithTruncatedWeights) {
  const std::string p = edited_adapter(kSameConfig, kSameFactors);
  const fs::path weights = fs::path(p) / "adapter_model.safetensors";
  fs::resize_file(weights, fs::file_size(weights) - 100);
  expect_adapter_error(p, "/adapter_model.safetensors: ");
}

TEST_F(JobErrors, LoraFactorsThatDoNotFitTheBase) {
  const std::string p = edited_adapter(kSameConfig, [](auto& ts) {
    for (auto& t : ts)
      if (t.name == kQ0 + ".lora_B.weight") {
        t.shape = {16, 4};
        t.values.resize(64);
      }
  });
  expect_adapter_error(p, "/adapter_model.safetensors: module 'vision_model.encoder.layers.0.self_attn.q_proj': lora_A "
                         "[4, 32] and lora_B [16, 4] make a [16, 32] delta, the base's "
                         "'vision_model.encoder.layers.0.self_attn.q_proj.weight' is [32, 32]");
}

TEST_F(JobErrors, LoraFactorsThatDoNotFitEachOther) {
  const std::string p = edited_adapter(kSameConfig, [](auto& ts) {
    for (auto& t : ts)
      if (t.name == kQ0 + ".lora_A.weight") {
        t.shape = {3, 32};
        t.values.resize(96);
      }
  });
  expect_adapter_error(p, "/adapter_model.safetensors: module 'vision_model.encoder.layers.0.self_attn.q_proj': lora_A "
                         "[3, 32] and lora_B [32, 4] do not share a rank");
}

TEST_F(JobErrors, LoraFactorsOfAnotherRankThanTheConfigs) {
  const std::string p = edited_adapter([](auto& c) { c["rank_pattern"] = {{"fc1", 2}}; }, kSameFactors);
  expect_adapter_error(p, "/adapter_model.safetensors: module 'vision_model.encoder.layers.0.mlp.fc1': its factors have "
                         "rank 4, adapter_config.json gives r = 2");
}

TEST_F(JobErrors, LoraFactorWithoutItsPartner) {
  const std::string p = edited_adapter(kSameConfig, [](auto& ts) {
    ts.erase(std::remove_if(ts.begin(), ts.end(), [](const auto& t) { return t.name == kQ0 + ".lora_B.weight"; }),
             ts.end());
  });
  expect_adapter_error(p, "/adapter_model.safetensors: module 'vision_model.encoder.layers.0.self_attn.q_proj' has "
                         "lora_A but no lora_B");
}

TEST_F(JobErrors, LoraTargetTheBaseDoesNotHave) {
  const std::string p = edited_adapter(kSameConfig, [](auto& ts) {
    for (auto& t : ts)
      if (t.name.rfind(kQ0 + ".", 0) == 0) t.name.replace(t.name.find("q_proj"), 6, "z_proj");
  });
  expect_adapter_error(p, "/adapter_model.safetensors: tensor "
                         "'base_model.model.vision_model.encoder.layers.0.self_attn.z_proj.lora_A.weight': the base " +
                         (fixtures_dir() / "clip_hf/base").string() +
                         " has no tensor 'vision_model.encoder.layers.0.self_attn.z_proj.weight' (nor one ending in it)");
}

TEST_F(JobErrors, LoraAdapterHoldingTwoAdapters) {
  const std::string p = edited_adapter(kSameConfig, [](auto& ts) {
    for (auto& t : ts)
      for (const char* factor : {".lora_A.", ".lora_B."})
        if (const size_t at = t.name.find(factor); at != std::string::npos)
          t.name.insert(at + 8, t.name.find("layers.0") != std::string::npos ? "one." : "two.");
  });
  expect_adapter_error(p, "/adapter_model.safetensors: holds the adapters 'one' and 'two': one adapter per file");
}

}  // namespace
}  // namespace cm
