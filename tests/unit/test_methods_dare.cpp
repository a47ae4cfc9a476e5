// DARE: keep rate, rescaling, and masks that depend only on (seed, expert, tensor name, flat index).
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.hpp"
#include "common/hash.hpp"
#include "merge_math.hpp"
#include "method_testing.hpp"
#include "philox.hpp"

namespace cm {
namespace {

using testing::run_single;
using testing::TestModel;

TestModel ones(int64_t rows, int64_t cols, int parts, int K) {
  TestModel m;
  m.add("layer.weight", Role::Linear, {rows, cols}, std::vector<float>(rows * cols, 0.0f),
        TaskVectors(K, std::vector<float>(rows * cols, 1.0f)), "", parts);
  return m;
}

TEST(MethodDare, KeepRateIsOneMinusPAndKeptEntriesAreRescaled) {
  const auto out = run_single("dare", {{"p", "0.3"}, {"alpha", "1"}}, ones(600, 500, 1, 1)).at("layer.weight");
  size_t kept = 0;
  for (float v : out) {
    if (v != 0.0f) {
      ++kept;
      EXPECT_EQ(v, 1.0f / 0.7f);
    }
  }
  // 300000 Bernoulli(0.7) draws: the standard deviation of the rate is 0.00084.
  EXPECT_NEAR(static_cast<double>(kept) / out.size(), 0.7, 0.005);
}

TEST(MethodDare, MaskDoesNotDependOnUnitsOrRanks) {
  const std::map<std::string, std::string> params = {{"p", "0.5"}, {"seed", "7"}};
  const auto whole = run_single("dare", params, ones(30, 8, 1, 3)).at("layer.weight");
  EXPECT_EQ(run_single("dare", params, ones(30, 8, 3, 3)).at("layer.weight"), whole);
  EXPECT_EQ(testing::run_ranks("dare", params, ones(30, 8, 3, 3), 2).at("layer.weight"), whole);
}

TEST(MethodDare, MaskFollowsPhilox) {
  // Element i of expert k is kept exactly when dare_keep(name hash, k, seed, i, p); the two experts differ.
  const auto out = run_single("dare", {{"p", "0.5"}, {"seed", "3"}, {"alphas", "[1, 10]"}}, ones(4, 16, 1, 2));
  const uint64_t h = fnv1a64("layer.weight");
  int differ = 0;
  for (uint64_t i = 0; i < 64; ++i) {
    const bool k0 = dare_keep(h, 0, 3, i, 0.5), k1 = dare_keep(h, 1, 3, i, 0.5);
    EXPECT_FLOAT_EQ(out.at("layer.weight")[i], (k0 ? 2.0f : 0.0f) + (k1 ? 20.0f : 0.0f)) << i;
    differ += k0 != k1;
  }
  EXPECT_GT(differ, 10);
  EXPECT_NE(run_single("dare", {{"seed", "4"}}, ones(4, 16, 1, 2)), run_single("dare", {{"seed", "3"}}, ones(4, 16, 1, 2)));
}

TEST(MethodDare, PZeroIsTaskArithmetic) {
  TestModel m;
  m.add("w", Role::Other, {5}, testing::noise(5, 1), {testing::noise(5, 2), testing::noise(5, 3)});
  EXPECT_EQ(run_single("dare", {{"p", "0"}, {"alpha", "0.7"}}, m), run_single("task_arithmetic", {{"alpha", "0.7"}}, m));
}

TEST(MethodDare, TiesCombineElectsOverTheRescaledEntries) {
  TestModel m;
  const TaskVectors tasks = {testing::noise(40, 5), testing::noise(40, 6), testing::noise(40, 7)};
  m.add("w", Role::Other, {40}, std::vector<float>(40, 0.5f), tasks);
  const auto out = run_single("dare", {{"p", "0.4"}, {"combine", "ties"}, {"alpha", "2"}}, m).at("w");
  const uint64_t h = fnv1a64("w");
  for (uint64_t i = 0; i < 40; ++i) {
    float v[3];
    for (uint32_t k = 0; k < 3; ++k) v[k] = dare_keep(h, k, 0, i, 0.4) ? tasks[k][i] / 0.6f : 0.0f;
    EXPECT_EQ(out[i], 0.5f + 2.0f * ties_combine(v, 3, 1.0f, TiesDisjoint::Mean)) << i;
  }
}

TEST(MethodDare, TiesCombineTakesTheModelsMajoritySignAndTheDisjointOption) {
  // p = 0 drops nothing. Sums: a [1 - 1, 2 + 1] = [0, 3], b [-1, -2]: over the model one sum is > 0 and two are
  // < 0, so a[0] elects - and takes task 2's -1 (not task 1's +1, which a's own majority would pick).
  TestModel m;
  m.add("a", Role::Other, {2}, {0, 0}, {{1.0f, 2.0f}, {-1.0f, 1.0f}});
  m.add("b", Role::Other, {2}, {0, 0}, {{-2.0f, -3.0f}, {1.0f, 1.0f}});
  const std::map<std::string, std::string> mean = {{"p", "0"}, {"combine", "ties"}, {"alpha", "1"}};
  const auto out = run_single("dare", mean, m);
  EXPECT_EQ(out.at("a"), (std::vector<float>{-1.0f, 1.5f}));
  EXPECT_EQ(out.at("b"), (std::vector<float>{-2.0f, -3.0f}));
  auto sum = mean;
  sum["disjoint"] = "sum";
  EXPECT_EQ(run_single("dare", sum, m).at("a"), (std::vector<float>{-1.0f, 3.0f}));
  EXPECT_EQ(testing::run_ranks("dare", sum, m, 2), run_single("dare", sum, m));
  // disjoint belongs to the TIES steps: task arithmetic has none.
  EXPECT_THROW(run_single("dare", {{"disjoint", "sum"}}, m), Error);
}

}  // namespace
}  // namespace cm
