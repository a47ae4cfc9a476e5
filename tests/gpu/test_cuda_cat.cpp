// CAT on the GPU: the committed fixture cases merged with runtime.backend cuda against the reference's
// outputs (CLIP and the float32 llama-family cases, CAT and RegMean, so the decoder forward runs there too), and the CAT method with the CUDA Linalg against the same method on the CPU.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/backend.hpp"
#include "comm/communicator.hpp"
#include "features/feature_store.hpp"
#include "gpu_testing.hpp"
#include "io/checkpoint.hpp"
#include "job/config.hpp"
#include "job/merge_job.hpp"
#include "method_testing.hpp"
#include "methods/linalg.hpp"
#include "test_support.hpp"

namespace cm {
namespace {

using nlohmann::json;

class CudaCat : public testing::GpuTest {};

// The case's configuration with absolute fixture paths, the output in `out` and the cuda backend.
std::string cuda_config(const std::string& name, const std::string& out, std::string* expected) {
  json c = test::fixture_case(name);
  if (c.is_null()) {
    ADD_FAILURE() << "no case " << name;
    return "";
  }
  c["config"]["runtime"]["backend"] = "cuda";
  *expected = (test::fixtures_dir() / c["expected"].get<std::string>()).string();
  return test::fixture_case_config(c["config"], out);
}

TEST_F(CudaCat, FixtureCasesMatchTheReference) {
  for (const char* name : {"hf_cat", "openclip_cat", "llama_gqa_cat", "llama3_rope_cat_scaled", "qwen2_cat",
                           "qwen2_regmean"}) {
    SCOPED_TRACE(name);
    const test::ScratchDir dir;
    const std::string out = (dir / "merged.h5").string();
    std::string expected;
    std::ofstream(dir / "merge.yaml") << cuda_config(name, out, &expected);
    const JobConfig cfg = load_config((dir / "merge.yaml").string(), {});
    ASSERT_EQ(cfg.backend, "cuda");
    SoloCommunicator solo;
    run_merge(cfg, solo);
    const auto want = open_checkpoint(expected), got = open_checkpoint(out);
    ASSERT_EQ(got->tensors().size(), want->tensors().size());
    for (const TensorInfo& w : want->tensors()) {
      const std::vector<float> a = got->read(w.name), b = want->read(w.name);
      ASSERT_EQ(a.size(), b.size()) << w.name;
      double scale = 0, worst = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
        worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
      }
      EXPECT_LE(worst, 1e-4 * std::max(scale, 1e-30)) << w.name;
    }
  }
}

TEST_F(CudaCat, MethodOnTheCudaLinalgMatchesCpu) {
  // K = 3 experts, linear units above and below the dense limit's scale, a fused tensor, norm and shift units.
  const int K = 3;
  const int64_t out = 96, in = 64;
  const std::unique_ptr<Backend> cuda = make_backend("cuda", 0, "test");
  std::vector<FeatureStore> gpu_features, cpu_features;
  for (int k = 0; k < K; ++k) {
    gpu_features.emplace_back();
    cpu_features.emplace_back();
    for (FeatureStore* f : {&gpu_features.back(), &cpu_features.back()}) {
      const auto rows = testing::random_floats(40 * in, 60 + k);
      f->record("lin", SiteKind::LinearInput, rows.data(), 40, in);
      const auto xhat = testing::random_floats(40 * out, 70 + k);
      f->record("ln", SiteKind::NormInput, xhat.data(), 40, out);
    }
  }
  testing::TestModel m;
  TaskVectors lin, ln, bias;
  for (int k = 0; k < K; ++k) {
    lin.push_back(testing::random_floats(3 * out * in, 80 + k, -0.05f, 0.05f));
    ln.push_back(testing::random_floats(out, 90 + k, -0.05f, 0.05f));
    bias.push_back(testing::random_floats(out, 95 + k, -0.05f, 0.05f));
  }
  m.add("qkv", Role::Linear, {3 * out, in}, testing::random_floats(3 * out * in, 1), lin, "lin", 3);
  m.add("ln.weight", Role::NormScale, {out}, testing::random_floats(out, 2), ln, "ln");
  m.add("ln.bias", Role::Shift, {out}, testing::random_floats(out, 3), bias);
  MergeContext gpu_ctx, cpu_ctx;
  gpu_ctx.features = &gpu_features;
  gpu_ctx.linalg = &cuda->linalg();
  cpu_ctx.features = &cpu_features;
  const std::map<std::string, std::string> params = {{"lambda", "0.5"}, {"c", "4"}};
  const auto got = testing::run_single("cat", params, m, gpu_ctx),
             want = testing::run_single("cat", params, m, cpu_ctx);
  for (const auto& [name, values] : want)
    for (size_t i = 0; i < values.size(); ++i) ASSERT_NEAR(got.at(name)[i], values[i], 1e-5f) << name << " " << i;
}

}  // namespace
}  // namespace cm
