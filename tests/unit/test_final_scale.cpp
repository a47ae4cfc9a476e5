// A method with a final scale (methods/method.hpp) merges as apply_final_scale(base, alpha, direction()), bit
// for bit: what lets a sweep merge the direction once and every alpha of it as one run would.
#include <gtest/gtest.h>

#include <cstring>

#include "method_testing.hpp"

namespace cm {
namespace {

using testing::make;
using testing::MemoryStream;
using testing::noise;
using testing::TestModel;

TestModel model() {
  TestModel m;
  const size_t n = 4 * 300;
  TaskVectors tasks;
  for (uint32_t k = 0; k < 3; ++k) tasks.push_back(noise(n, 11 + k, 0.05f));
  m.add("w", Role::Linear, {4, 300}, noise(n, 3), tasks);
  m.add("b", Role::Shift, {300}, noise(300, 4), {noise(300, 5, 0.1f), noise(300, 6, 0.1f), noise(300, 7, 0.1f)});
  return m;
}

struct Case {
  std::string method;
  std::map<std::string, std::string> params;
  float alpha;
};

class FinalScale : public ::testing::TestWithParam<Case> {};

TEST_P(FinalScale, MergeIsTheScaledDirectionBitForBit) {
  const Case& c = GetParam();
  const TestModel m = model();
  LocalReducer local;
  MergeContext ctx = testing::context_for(m, {});
  ctx.reducer = &local;
  std::unique_ptr<Method> method = make(c.method, c.params, ctx);
  ASSERT_TRUE(method->final_scale().has_value());
  EXPECT_EQ(*method->final_scale(), c.alpha);
  MemoryStream stream(m);
  method->prepare(stream);
  stream.for_each(
      [&](int, const MergeUnit& u, const std::vector<float>& base, const TaskVectors& original) {
        if (method->unit_statistics()) {
          MemoryStream unit(m, u);
          method->prepare_unit(unit);
        }
        TaskVectors for_merge = original, for_direction = original;
        std::vector<float> merged(base.size()), d(base.size()), scaled(base.size());
        method->merge(u, base, for_merge, merged.data());
        method->direction(u, base, for_direction, d.data());
        apply_final_scale(base.data(), c.alpha, d.data(), scaled.data(), base.size());
        EXPECT_EQ(std::memcmp(merged.data(), scaled.data(), merged.size() * sizeof(float)), 0) << u.name();
      },
      1);
}

INSTANTIATE_TEST_SUITE_P(
    Methods, FinalScale,
    ::testing::Values(Case{"ties", {{"alpha", "0.7"}, {"density", "0.2"}}, 0.7f},
                      Case{"ties", {{"alpha", "0.5"}, {"scope", "tensor"}}, 0.5f},
                      Case{"pcb", {{"alpha", "0.9"}, {"ratio", "0.2"}}, 0.9f},
                      Case{"dare", {{"alpha", "0.4"}, {"combine", "ties"}}, 0.4f}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.method + std::to_string(info.index); });

TEST(FinalScale, PerExpertAlphasAndMethodsWithoutAlphaHaveNone) {
  const TestModel m = model();
  MergeContext ctx = testing::context_for(m, {});
  EXPECT_FALSE(make("task_arithmetic", {{"alpha", "0.3"}}, ctx)->final_scale());  // sum_k alpha T_k, as METHODS.md
  EXPECT_FALSE(make("dare", {{"alpha", "0.3"}}, ctx)->final_scale());
  EXPECT_FALSE(make("cat", {{"alphas", "[0.1, 0.2, 0.3]"}}, ctx)->final_scale());
  EXPECT_EQ(make("cat", {{"alpha", "0.15"}}, ctx)->final_scale(), 0.15f);
  EXPECT_FALSE(make("weight_average", {}, ctx)->final_scale());
  EXPECT_FALSE(make("regmean", {}, ctx)->final_scale());
}

}  // namespace
}  // namespace cm
