// TIES-Merging: a hand-worked example, both scopes, fused units and several ranks.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "merge_math.hpp"
#include "method_testing.hpp"
#include "methods/method_common.hpp"

namespace cm {
namespace {

using testing::run_single;
using testing::TestModel;

// K = 2, d = 6, density 0.5: the trim position is 6 - floor(6 * 0.5) - 1 = 2.
//   T1 = [ 0.5, -0.1, 0.3,  0.0, -0.4, 0.2 ]  |T1| sorted [0, .1, .2, .3, .4, .5] -> t1 = 0.2
//   T2 = [-0.2,  0.6, 0.3, -0.1, -0.05, 0.05] |T2| sorted [.05, .05, .1, .2, .3, .6] -> t2 = 0.1
// Trimmed (|T| >= t kept, ties kept): T1 = [0.5, 0, 0.3, 0, -0.4, 0.2], T2 = [-0.2, 0.6, 0.3, -0.1, 0, 0].
// Elect: sums [0.3, 0.6, 0.6, -0.1, -0.4, 0.2] -> signs [+, +, +, -, -, +].
// Disjoint mean of the agreeing nonzero entries: [0.5, 0.6, (0.3 + 0.3) / 2, -0.1, -0.4, 0.2].
TestModel hand_example() {
  TestModel m;
  m.add("t", Role::Other, {6}, {1, 1, 1, 1, 1, 1},
        {{0.5f, -0.1f, 0.3f, 0.0f, -0.4f, 0.2f}, {-0.2f, 0.6f, 0.3f, -0.1f, -0.05f, 0.05f}});
  return m;
}

TEST(MethodTies, HandWorkedExample) {
  const std::vector<float> tau = {0.5f, 0.6f, 0.3f, -0.1f, -0.4f, 0.2f};
  for (const char* scope : {"model", "tensor"}) {
    const auto out = run_single("ties", {{"density", "0.5"}, {"alpha", "0.5"}, {"scope", scope}}, hand_example());
    for (size_t i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(out.at("t")[i], 1.0f + 0.5f * tau[i]) << scope << " " << i;
  }
}

TEST(MethodTies, DensityOneKeepsEverything) {
  // Position 6 - 6 - 1 < 0: nothing is trimmed; element 0 elects - (0.5 - 0.7 < 0): mean of -0.7 alone.
  TestModel m;
  m.add("t", Role::Other, {2}, {0, 0}, {{0.5f, 0.1f}, {-0.7f, 0.3f}});
  const auto out = run_single("ties", {{"density", "1"}, {"alpha", "1"}}, m);
  EXPECT_FLOAT_EQ(out.at("t")[0], -0.7f);
  EXPECT_FLOAT_EQ(out.at("t")[1], 0.2f);
}

TEST(MethodTies, ModelScopeThresholdSpansTensors) {
  // One task, a = [1, 2], b = [3, 4, 5, 6], density 0.5. Over the model (d = 6): position 6 - 3 - 1 = 2,
  // t = 3, so a is trimmed away and b kept. Per tensor: a (d = 2) position 0, t = 1, all kept; b (d = 4)
  // position 1, t = 4, the 3 trimmed.
  TestModel m;
  m.add("a", Role::Other, {2}, {0, 0}, {{1, 2}});
  m.add("b", Role::Other, {4}, {0, 0, 0, 0}, {{3, 4, 5, 6}});
  const auto model = run_single("ties", {{"density", "0.5"}, {"alpha", "1"}}, m);
  EXPECT_EQ(model.at("a"), (std::vector<float>{0, 0}));
  EXPECT_EQ(model.at("b"), (std::vector<float>{3, 4, 5, 6}));
  const auto tensor = run_single("ties", {{"density", "0.5"}, {"alpha", "1"}, {"scope", "tensor"}}, m);
  EXPECT_EQ(tensor.at("a"), (std::vector<float>{1, 2}));
  EXPECT_EQ(tensor.at("b"), (std::vector<float>{0, 4, 5, 6}));
}

TEST(MethodTies, RanksAndFusedUnitsDoNotChangeTheResult) {
  TestModel m;
  for (int t = 0; t < 5; ++t) {
    const int parts = t == 2 ? 3 : 1;
    const int64_t rows = 6 * (t + 1);
    const size_t n = static_cast<size_t>(rows * 3);
    m.add("t" + std::to_string(t), Role::Linear, {rows, 3}, testing::noise(n, t),
          {testing::noise(n, 10 + t), testing::noise(n, 20 + t), testing::noise(n, 30 + t)}, "", parts);
  }
  const std::map<std::string, std::string> params = {{"density", "0.3"}};
  const auto one = run_single("ties", params, m);
  for (int ranks : {2, 3}) EXPECT_EQ(testing::run_ranks("ties", params, m, ranks), one) << ranks << " ranks";
  // scope: tensor works per unit: a fused tensor gives the same values as its parts stored separately.
  TestModel fused, split;
  const std::vector<float> base = testing::noise(36, 1);
  TaskVectors tasks = {testing::noise(36, 2), testing::noise(36, 3)};
  fused.add("qkv", Role::Linear, {12, 3}, base, tasks, "", 3);
  for (int p = 0; p < 3; ++p) {
    TaskVectors part;
    for (const auto& t : tasks) part.emplace_back(t.begin() + 12 * p, t.begin() + 12 * (p + 1));
    split.add("p" + std::to_string(p), Role::Linear, {4, 3}, {base.begin() + 12 * p, base.begin() + 12 * (p + 1)}, part);
  }
  const std::map<std::string, std::string> per_tensor = {{"density", "0.5"}, {"scope", "tensor"}};
  const auto f = run_single("ties", per_tensor, fused).at("qkv");
  const auto s = run_single("ties", per_tensor, split);
  for (int p = 0; p < 3; ++p)
    EXPECT_EQ(std::vector<float>(f.begin() + 12 * p, f.begin() + 12 * (p + 1)), s.at("p" + std::to_string(p)));
}

// ties_direction works a stretch of entries at a time so that it vectorises; it must give the bits of
// ties_trim and ties_disjoint_mean (the GPU's per-element functions) entry by entry, over a length that is no
// multiple of the stretch, with zeros, values at the threshold and sums of zero.
TEST(MethodTies, CombineEqualsThePerEntryFunctionsBitForBit) {
  const size_t n = 3001, K = 4;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> kind(0, 7);
  const std::vector<float> thresholds = {0.5f, 0.0f, 1.25f, -std::numeric_limits<float>::infinity()};
  TaskVectors tasks(K, std::vector<float>(n));
  std::vector<float> base(n);
  for (size_t i = 0; i < n; ++i) {
    base[i] = normal(rng);
    for (size_t k = 0; k < K; ++k) {
      switch (kind(rng)) {
        case 0: tasks[k][i] = 0.0f; break;
        case 1: tasks[k][i] = (rng() % 2 ? 1.0f : -1.0f) * thresholds[k % 3]; break;
        case 2: tasks[k][i] = k % 2 ? 0.75f : -0.75f; break;  // pairs that cancel
        default: tasks[k][i] = normal(rng); break;
      }
    }
  }
  std::vector<float> out(n);
  ties_direction(tasks, thresholds, n, out.data());
  apply_final_scale(base.data(), 0.3f, out.data(), out.data(), n);
  for (size_t i = 0; i < n; ++i) {
    float kept[K];
    for (size_t k = 0; k < K; ++k) kept[k] = ties_trim(tasks[k][i], thresholds[k]);
    const float want = base[i] + 0.3f * ties_disjoint_mean(kept, static_cast<int>(K));
    EXPECT_EQ(std::memcmp(&out[i], &want, sizeof want), 0) << i << ": " << out[i] << " vs " << want;
  }
}

// Large enough that the sample brackets the thresholds (one pass over the values): against thresholds found by
// sorting every |T_k| of the model, over one and two ranks (whose samples and kept values differ).
TEST(MethodTies, ModelScopeOverLargeTensorsMatchesSortedThresholds) {
  TestModel m;
  const size_t K = 3;
  for (int t = 0; t < 3; ++t) {
    const int64_t rows = 64 * (t + 2);
    const size_t n = static_cast<size_t>(rows * 256);
    m.add("w" + std::to_string(t), Role::Linear, {rows, 256}, testing::noise(n, t),
          {testing::noise(n, 40 + t), testing::noise(n, 50 + t), testing::noise(n, 60 + t)});
  }
  std::vector<float> thresholds(K);
  for (size_t k = 0; k < K; ++k) {
    std::vector<float> magnitudes;
    for (int t = 0; t < 3; ++t)
      for (float v : m.tasks.at("w" + std::to_string(t))[k]) magnitudes.push_back(std::fabs(v));
    std::sort(magnitudes.begin(), magnitudes.end());
    const size_t d = magnitudes.size();
    thresholds[k] = magnitudes[d - static_cast<size_t>(std::floor(static_cast<double>(d) * 0.2)) - 1];
  }
  const std::map<std::string, std::string> params = {{"density", "0.2"}, {"alpha", "1"}};
  const auto one = run_single("ties", params, m);
  for (int t = 0; t < 3; ++t) {
    const std::string name = "w" + std::to_string(t);
    const std::vector<float>& base = m.base.at(name);
    for (size_t i = 0; i < base.size(); ++i) {
      float kept[K];
      for (size_t k = 0; k < K; ++k) kept[k] = ties_trim(m.tasks.at(name)[k][i], thresholds[k]);
      ASSERT_EQ(one.at(name)[i], base[i] + ties_disjoint_mean(kept, static_cast<int>(K))) << name << " " << i;
    }
  }
  EXPECT_EQ(testing::run_ranks("ties", params, m, 2), one);
}

}  // namespace
}  // namespace cm
