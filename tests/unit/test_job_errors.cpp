// Bad input, end to end through the catmerge binary: one line naming the file and the problem,
// a non-zero exit, and no output (final or temporary) left behind.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>

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

  test::ScratchDir dir_;
};

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

}  // namespace
}  // namespace cm
