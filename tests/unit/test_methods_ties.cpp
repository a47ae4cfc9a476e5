// TIES-Merging: a hand-worked example, both scopes, fused units and several ranks.
#include <gtest/gtest.h>

#include "method_testing.hpp"

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

}  // namespace
}  // namespace cm
