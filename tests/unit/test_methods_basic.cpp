// Weight averaging, task arithmetic and Fisher merging on hand-checkable inputs.
#include <gtest/gtest.h>

#include "common/error.hpp"
#include "method_testing.hpp"

namespace cm {
namespace {

using testing::run_single;
using testing::TestModel;

TestModel two_experts() {
  TestModel m;
  m.add("w", Role::Linear, {2, 2}, {1, 2, 3, 4}, {{0.5f, -1, 0, 2}, {1.5f, 1, -2, 0}}, "site");
  m.add("b", Role::Shift, {2}, {0, 1}, {{1, 1}, {3, -1}});
  return m;
}

TEST(MethodWeightAverage, MeanOfTheExperts) {
  const auto out = run_single("weight_average", {}, two_experts());
  EXPECT_EQ(out.at("w"), (std::vector<float>{2, 2, 2, 5}));
  EXPECT_EQ(out.at("b"), (std::vector<float>{2, 1}));
}

TEST(MethodTaskArithmetic, DefaultAlphaAndPerExpertAlphas) {
  const auto out = run_single("task_arithmetic", {}, two_experts());
  for (size_t i = 0; i < 4; ++i) {
    const float want = std::vector<float>{1, 2, 3, 4}[i] + 0.3f * (std::vector<float>{2, 0, -2, 2}[i]);
    EXPECT_FLOAT_EQ(out.at("w")[i], want);
  }
  const auto per = run_single("task_arithmetic", {{"alphas", "[1, -0.5]"}}, two_experts());
  EXPECT_EQ(per.at("w"), (std::vector<float>{0.75f, 0.5f, 4, 6}));
  EXPECT_EQ(per.at("b"), (std::vector<float>{-0.5f, 2.5f}));
}

MergeContext with_fisher(std::vector<std::vector<float>> per_expert) {
  MergeContext ctx;
  ctx.fisher = [per_expert](int k, const MergeUnit& u) {
    return std::vector<float>(per_expert[k].begin(), per_expert[k].begin() + u.numel());
  };
  return ctx;
}

TEST(MethodFisher, EqualFisherIsTheAverage) {
  const auto out = run_single("fisher", {}, two_experts(), with_fisher({{2, 2, 2, 2}, {2, 2, 2, 2}}));
  const std::vector<float> want = {2, 2, 2, 5};
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(out.at("w")[i], want[i], 1e-6);
}

TEST(MethodFisher, WeightsByFisher) {
  // theta_1 = [1.5, 1, 3, 6], theta_2 = [2.5, 3, 1, 4]; F = 3 vs 1 -> (3 theta_1 + theta_2) / 4.
  const auto out = run_single("fisher", {}, two_experts(), with_fisher({{3, 3, 3, 3}, {1, 1, 1, 1}}));
  const std::vector<float> want = {1.75f, 1.5f, 2.5f, 5.5f};
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(out.at("w")[i], want[i], 1e-6);
  // F = 0 everywhere: the 1e-6 each expert gets makes it the plain average.
  const auto zero = run_single("fisher", {}, two_experts(), with_fisher({{0, 0, 0, 0}, {0, 0, 0, 0}}));
  EXPECT_NEAR(zero.at("w")[3], 5.0f, 1e-6);
}

TEST(MethodFisher, RejectsNegativeFisher) {
  EXPECT_THROW(run_single("fisher", {}, two_experts(), with_fisher({{1, 1, -1, 1}, {1, 1, 1, 1}})), Error);
}

}  // namespace
}  // namespace cm
