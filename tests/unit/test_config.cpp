// The configuration reader: defaults, --set overrides, path resolution and key checking.
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.hpp"
#include "job/config.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

namespace fs = std::filesystem;

const char* const kMinimal =
    "model: {arch: clip_vit, base: models/base}\n"
    "experts:\n"
    "  - {name: one, path: models/e1, exemplars: 'ex.h5:/task1'}\n"
    "  - {path: /abs/e2, fisher: f2.safetensors}\n"
    "method: {name: cat, alpha: 0.5, alphas: [0.1, 0.2]}\n"
    "output: {path: out/merged.h5}\n";

class ConfigTest : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    const fs::path p = dir_ / "merge.yaml";
    std::ofstream(p) << text;
    return p.string();
  }
  test::ScratchDir dir_;
};

TEST_F(ConfigTest, ReadsKeysAndDefaults) {
  const JobConfig c = load_config(write(kMinimal), {});
  EXPECT_EQ(c.arch, "clip_vit");
  EXPECT_EQ(c.base, (dir_ / "models/base").string());
  ASSERT_EQ(c.experts.size(), 2u);
  EXPECT_EQ(c.experts[0].name, "one");
  EXPECT_EQ(c.experts[1].name, "expert1");
  EXPECT_EQ(c.experts[0].exemplars_file, (dir_ / "ex.h5").string());
  EXPECT_EQ(c.experts[0].exemplars_group, "/task1");
  EXPECT_EQ(c.experts[1].path, "/abs/e2");
  EXPECT_EQ(c.experts[1].fisher, (dir_ / "f2.safetensors").string());
  EXPECT_EQ(c.method, "cat");
  EXPECT_EQ(c.method_params.at("alpha"), "0.5");
  EXPECT_EQ(c.method_params.at("alphas"), "[0.1, 0.2]");
  EXPECT_EQ(c.exemplars, 2);
  EXPECT_EQ(c.feature_model, FeatureModel::Expert);
  EXPECT_FALSE(c.output_dtype.has_value());
  EXPECT_EQ(c.backend, "auto");
  EXPECT_EQ(c.threads, 0);
}

TEST_F(ConfigTest, SetOverridesAndResolvesAgainstWorkingDirectory) {
  const JobConfig c = load_config(write(kMinimal), {"method.alpha=0.7", "experts.1.name=two", "output.path=x.h5",
                                                    "features.exemplars=3", "runtime.threads=1"});
  EXPECT_EQ(c.method_params.at("alpha"), "0.7");
  EXPECT_EQ(c.experts[1].name, "two");
  EXPECT_EQ(c.output_path, "x.h5");
  EXPECT_EQ(c.exemplars, 3);
  const JobConfig d = load_config(write(kMinimal), {"output.dtype=bf16", "features.model=scaled"});
  EXPECT_EQ(d.output_dtype, DType::BF16);
  EXPECT_EQ(d.feature_model, FeatureModel::Scaled);
  EXPECT_EQ(c.threads, 1);
  EXPECT_NE(c.text.find("0.7"), std::string::npos);
}

TEST_F(ConfigTest, RejectsBadValues) {
  const std::string p = write(kMinimal);
  auto message = [&](const std::vector<std::string>& sets) {
    try {
      load_config(p, sets);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({"features.exemplars=0"}).find("features.exemplars: must be at least 1"), std::string::npos);
  EXPECT_NE(message({"features.model=scaledd"}).find("features.model: 'scaledd' is not one of expert, scaled"),
            std::string::npos);
  EXPECT_NE(message({"output.dtype=f64"}).find("output.dtype"), std::string::npos);
  EXPECT_NE(message({"model.arch=gpt2"}).find("model.arch"), std::string::npos);
  EXPECT_NE(message({"experts.5.path=x"}).find("no list element '5'"), std::string::npos);
  EXPECT_NE(message({"noequals"}).find("expected key=value"), std::string::npos);
  EXPECT_EQ(message({"features.exemplars=1"}), "no error");
}

TEST_F(ConfigTest, RejectsMissingSectionsAndBadYaml) {
  EXPECT_THROW(load_config(write("model: {arch: clip_vit, base: b}\n"), {}), Error);
  EXPECT_THROW(load_config(write("model: [unclosed\n"), {}), Error);
  EXPECT_THROW(load_config((dir_ / "absent.yaml").string(), {}), Error);
}

}  // namespace
}  // namespace cm
