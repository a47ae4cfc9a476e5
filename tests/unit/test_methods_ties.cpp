// TIES-Merging: hand-worked examples of the exact-k trim (ties to the lower flat index in model order), the
// majority sign of zero sums and the disjoint options, both scopes, fused units, blocks on several threads and
// several ranks, against a brute-force transcription of METHODS.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <thread>

#include "common/error.hpp"
#include "merge_math.hpp"
#include "method_testing.hpp"
#include "methods/method_common.hpp"

namespace cm {
namespace {

using testing::run_single;
using testing::TestModel;

// K = 2, d = 6, density 0.5: each task keeps its k = 3 largest magnitudes.
//   T1 = [ 0.5, -0.1, 0.3,  0.0, -0.4, 0.2 ]  keeps 0.5, -0.4, 0.3 -> [0.5, 0, 0.3, 0, -0.4, 0]
//   T2 = [-0.2,  0.6, 0.3, -0.1, -0.05, 0.05] keeps 0.6, 0.3, -0.2 -> [-0.2, 0.6, 0.3, 0, 0, 0]
// Elect: sums [0.3, 0.6, 0.6, 0, -0.4, 0] -> signs [+, +, +, 0, -, 0]; the zero sums have no nonzero entry.
// Disjoint mean of the agreeing nonzero entries: [0.5, 0.6, (0.3 + 0.3) / 2, 0, -0.4, 0]; sum: 0.6 at entry 2.
TestModel hand_example() {
  TestModel m;
  m.add("t", Role::Other, {6}, {1, 1, 1, 1, 1, 1},
        {{0.5f, -0.1f, 0.3f, 0.0f, -0.4f, 0.2f}, {-0.2f, 0.6f, 0.3f, -0.1f, -0.05f, 0.05f}});
  return m;
}

TEST(MethodTies, HandWorkedExample) {
  const std::vector<float> mean = {0.5f, 0.6f, 0.3f, 0.0f, -0.4f, 0.0f}, sum = {0.5f, 0.6f, 0.6f, 0.0f, -0.4f, 0.0f};
  for (const char* scope : {"model", "tensor"})
    for (const char* disjoint : {"mean", "sum"}) {
      const auto out = run_single(
          "ties", {{"density", "0.5"}, {"alpha", "0.5"}, {"scope", scope}, {"disjoint", disjoint}}, hand_example());
      const std::vector<float>& tau = std::string(disjoint) == "mean" ? mean : sum;
      for (size_t i = 0; i < 6; ++i)
        EXPECT_FLOAT_EQ(out.at("t")[i], 1.0f + 0.5f * tau[i]) << scope << " " << disjoint << " " << i;
    }
}

TEST(MethodTies, DensityOneKeepsEverything) {
  // k = d: nothing is trimmed; element 0 elects - (0.5 - 0.7 < 0): mean of -0.7 alone.
  TestModel m;
  m.add("t", Role::Other, {2}, {0, 0}, {{0.5f, 0.1f}, {-0.7f, 0.3f}});
  const auto out = run_single("ties", {{"density", "1"}, {"alpha", "1"}}, m);
  EXPECT_FLOAT_EQ(out.at("t")[0], -0.7f);
  EXPECT_FLOAT_EQ(out.at("t")[1], 0.2f);
}

TEST(MethodTies, DensityBelowOneEntryKeepsNothing) {
  // floor(3 * 0.2) = 0: every entry is trimmed away and the merge is the base.
  TestModel m;
  m.add("t", Role::Other, {3}, {1, 2, 3}, {{0.5f, -0.1f, 0.3f}});
  EXPECT_EQ(run_single("ties", {{"density", "0.2"}, {"scope", "tensor"}}, m).at("t"), (std::vector<float>{1, 2, 3}));
}

TEST(MethodTies, ModelScopeThresholdSpansTensors) {
  // One task, a = [1, 2], b = [3, 4, 5, 6], density 0.5. Over the model (d = 6) k = 3: 6, 5, 4 kept, so a is
  // trimmed away. Per tensor: a keeps its 1 largest (2), b its 2 largest (6, 5).
  TestModel m;
  m.add("a", Role::Other, {2}, {0, 0}, {{1, 2}});
  m.add("b", Role::Other, {4}, {0, 0, 0, 0}, {{3, 4, 5, 6}});
  const auto model = run_single("ties", {{"density", "0.5"}, {"alpha", "1"}}, m);
  EXPECT_EQ(model.at("a"), (std::vector<float>{0, 0}));
  EXPECT_EQ(model.at("b"), (std::vector<float>{0, 4, 5, 6}));
  const auto tensor = run_single("ties", {{"density", "0.5"}, {"alpha", "1"}, {"scope", "tensor"}}, m);
  EXPECT_EQ(tensor.at("a"), (std::vector<float>{0, 2}));
  EXPECT_EQ(tensor.at("b"), (std::vector<float>{0, 0, 5, 6}));
}

TEST(MethodTies, TiesGoToTheLowerFlatIndexInModelOrder) {
  // One tensor, k = floor(5 * 0.4) = 2 of three magnitudes 0.3: the two of lower index stay.
  TestModel one;
  one.add("t", Role::Other, {5}, std::vector<float>(5, 0.0f), {{0.1f, 0.3f, -0.3f, 0.3f, 0.2f}});
  for (const char* scope : {"model", "tensor"})
    EXPECT_EQ(run_single("ties", {{"density", "0.4"}, {"alpha", "1"}, {"scope", scope}}, one).at("t"),
              (std::vector<float>{0, 0.3f, -0.3f, 0, 0}))
        << scope;
  // Over the model the order is the model's (here z before a, not the names' order): k = 2 of the four 0.3s.
  TestModel two;
  two.add("z", Role::Other, {2}, {0, 0}, {{0.1f, -0.3f}});
  two.add("a", Role::Other, {3}, {0, 0, 0}, {{0.3f, 0.3f, 0.3f}});
  const auto out = run_single("ties", {{"density", "0.4"}, {"alpha", "1"}}, two);
  EXPECT_EQ(out.at("z"), (std::vector<float>{0, -0.3f}));
  EXPECT_EQ(out.at("a"), (std::vector<float>{0.3f, 0, 0}));
  // The kept ties end exactly where a tensor ends: k = floor(5 * 0.2) = 1 of three 0.3s, z's one is kept and
  // none of a's (no tensor splits its ties; the vision zoo's first TIES point found this case).
  TestModel edge;
  edge.add("z", Role::Other, {2}, {0, 0}, {{0.3f, 0.1f}});
  edge.add("a", Role::Other, {3}, {0, 0, 0}, {{-0.3f, 0.3f, 0.1f}});
  const auto cut = run_single("ties", {{"density", "0.2"}, {"alpha", "1"}}, edge);
  EXPECT_EQ(cut.at("z"), (std::vector<float>{0.3f, 0}));
  EXPECT_EQ(cut.at("a"), (std::vector<float>{0, 0, 0}));
}

TEST(MethodTies, ZeroSumsTakeTheScopesMajoritySign) {
  // Nothing trimmed (density 1). a: sums [0, 3] (1 - 1, 2 + 1); b: sums [-1, -2]. Over the model one sum is > 0
  // and two are < 0: the majority is -, so a[0] takes the - entry of task 2. Per tensor a's own majority is +
  // (one sum > 0, none < 0): a[0] takes task 1's +1.
  TestModel m;
  m.add("a", Role::Other, {2}, {0, 0}, {{1.0f, 2.0f}, {-1.0f, 1.0f}});
  m.add("b", Role::Other, {2}, {0, 0}, {{-2.0f, -3.0f}, {1.0f, 1.0f}});
  const std::map<std::string, std::string> params = {{"density", "1"}, {"alpha", "1"}};
  const auto model = run_single("ties", params, m);
  EXPECT_EQ(model.at("a"), (std::vector<float>{-1.0f, 1.5f}));
  EXPECT_EQ(model.at("b"), (std::vector<float>{-2.0f, -3.0f}));
  auto per_tensor = params;
  per_tensor["scope"] = "tensor";
  EXPECT_EQ(run_single("ties", per_tensor, m).at("a"), (std::vector<float>{1.0f, 1.5f}));
  // A scope whose signs balance takes +: sums [0, 1, -1].
  TestModel even;
  even.add("t", Role::Other, {3}, {0, 0, 0}, {{1.0f, 1.0f, -1.0f}, {-1.0f, 0.0f, 0.0f}});
  EXPECT_EQ(run_single("ties", params, even).at("t"), (std::vector<float>{1.0f, 1.0f, -1.0f}));
}

TEST(MethodTies, DisjointIsAnOption) {
  TestModel m = hand_example();
  EXPECT_THROW(run_single("ties", {{"disjoint", "median"}}, m), Error);
}

// The rule written out: per task, the scope's entries ranked by |T| descending, then scope position (units in
// model order, then row-major); the first floor(d * density) kept; then the sign election with the scope's majority
// and the combination, one entry at a time through the per-element functions.
testing::Merged brute_force(const TestModel& m, double density, bool per_tensor, TiesDisjoint disjoint, float alpha) {
  std::vector<std::vector<MergeUnit>> scopes;
  for (const TensorSpec& t : m.spec.tensors)
    for (const MergeUnit& u : units_of(t)) {
      if (per_tensor || scopes.empty()) scopes.emplace_back();
      scopes.back().push_back(u);
    }
  const int K = m.num_tasks();
  testing::Merged out;
  for (const TensorSpec& t : m.spec.tensors) out[t.name].assign(static_cast<size_t>(t.numel()), 0.0f);
  for (const auto& scope : scopes) {
    struct Entry {
      const MergeUnit* unit;
      int64_t i;
    };
    std::vector<Entry> entries;
    for (const MergeUnit& u : scope)
      for (int64_t i = 0; i < u.numel(); ++i) entries.push_back({&u, i});
    const auto value = [&](int k, const Entry& e) { return m.tasks.at(e.unit->name())[k][e.unit->offset + e.i]; };
    std::vector<std::vector<float>> kept(K, std::vector<float>(entries.size(), 0.0f));
    const size_t keep = static_cast<size_t>(std::floor(static_cast<double>(entries.size()) * density));
    for (int k = 0; k < K; ++k) {
      std::vector<size_t> order(entries.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return std::fabs(value(k, entries[a])) > std::fabs(value(k, entries[b]));
      });
      for (size_t j = 0; j < keep; ++j) kept[k][order[j]] = value(k, entries[order[j]]);
    }
    int64_t balance = 0;
    for (size_t e = 0; e < entries.size(); ++e) {
      float total = 0.0f;
      for (int k = 0; k < K; ++k) total += kept[k][e];
      balance += (total > 0.0f) - (total < 0.0f);
    }
    const float majority = balance >= 0 ? 1.0f : -1.0f;
    for (size_t e = 0; e < entries.size(); ++e) {
      float v[8];
      for (int k = 0; k < K; ++k) v[k] = kept[k][e];
      const Entry& x = entries[e];
      out[x.unit->name()][x.unit->offset + x.i] =
          m.base.at(x.unit->name())[x.unit->offset + x.i] + alpha * ties_combine(v, K, majority, disjoint);
    }
  }
  return out;
}

// Task vectors of a few magnitudes (as bf16 task vectors are), so that thresholds fall inside long runs of ties
// and many sums of nonzero entries are exactly 0.
TestModel few_magnitudes(int K, uint32_t seed) {
  std::mt19937 rng(seed);
  TestModel m;
  for (int t = 0; t < 6; ++t) {
    const int parts = t == 3 ? 3 : 1;
    const int64_t rows = 6 * (t + 2), cols = 5;
    const size_t n = static_cast<size_t>(rows * cols);
    TaskVectors tasks(static_cast<size_t>(K), std::vector<float>(n));
    for (auto& task : tasks)
      for (float& v : task) v = static_cast<float>(static_cast<int>(rng() % 7) - 3) * 0.125f;
    m.add("w" + std::to_string(t), Role::Linear, {rows, cols}, testing::noise(n, t), tasks, "", parts);
  }
  return m;
}

TEST(MethodTies, ExactKWithTiesMatchesTheRuleOnRanksAndBothScopes) {
  const TestModel m = few_magnitudes(3, 11);
  for (const char* scope : {"model", "tensor"})
    for (const char* density : {"0.2", "0.45"}) {
      const std::map<std::string, std::string> params = {
          {"density", density}, {"scope", scope}, {"alpha", "0.3"}, {"disjoint", "sum"}};
      const auto want = brute_force(m, std::stod(density), std::string(scope) == "tensor", TiesDisjoint::Sum, 0.3f);
      const auto one = run_single("ties", params, m);
      EXPECT_EQ(one, want) << scope << " " << density;
      for (int ranks : {2, 3}) EXPECT_EQ(testing::run_ranks("ties", params, m, ranks), one) << scope << " " << ranks;
    }
}

// A stream that cuts every unit into blocks of `rows` rows, visited by `workers` threads at once in an interleaved
// order, as the job's stream does (job/inputs.cpp): the cuts and the majority must not depend on it.
class BlockStream : public UnitStream {
 public:
  BlockStream(const TestModel& model, int64_t rows, int workers, const MergeUnit* only = nullptr)
      : model_(model), rows_(rows), workers_(workers), only_(only) {}
  int workers() const override { return workers_; }
  void for_each(const Visitor& visit, int64_t sample_stride) override {
    std::vector<MergeUnit> blocks;
    for (const TensorSpec& t : model_.spec.tensors)
      for (const MergeUnit& u : units_of(t)) {
        if (only_ && (u.name() != only_->name() || u.part != only_->part)) continue;
        if (sample_stride > 1) {
          for (const MergeUnit& r : sample_runs(u, sample_stride)) blocks.push_back(r);
          continue;
        }
        const int64_t row = u.numel() / u.shape[0];
        for (int64_t r = 0; r < u.shape[0]; r += rows_) {
          MergeUnit b = u;
          b.offset = u.offset + r * row;
          b.shape[0] = std::min(rows_, u.shape[0] - r);
          blocks.push_back(b);
        }
      }
    std::reverse(blocks.begin(), blocks.end());  // the last block first: any order must do
    std::vector<std::thread> threads;
    for (int w = 0; w < workers_; ++w)
      threads.emplace_back([&, w] {
        for (size_t i = static_cast<size_t>(w); i < blocks.size(); i += static_cast<size_t>(workers_)) {
          const MergeUnit& b = blocks[i];
          const auto slice = [&](const std::vector<float>& v) {
            return std::vector<float>(v.begin() + b.offset, v.begin() + b.offset + b.numel());
          };
          TaskVectors tasks;
          for (const auto& v : model_.tasks.at(b.name())) tasks.push_back(slice(v));
          visit(w, b, slice(model_.base.at(b.name())), tasks);
        }
      });
    for (auto& t : threads) t.join();
  }

 private:
  const TestModel& model_;
  int64_t rows_;
  int workers_;
  const MergeUnit* only_;
};

TEST(MethodTies, BlocksOnSeveralThreadsGiveTheSameTrim) {
  const TestModel m = few_magnitudes(4, 5);
  for (const char* scope : {"model", "tensor"}) {
    const std::map<std::string, std::string> params = {{"density", "0.3"}, {"scope", scope}};
    const auto one = run_single("ties", params, m);
    LocalReducer local;
    MergeContext ctx = testing::context_for(m, {});
    ctx.reducer = &local;
    const auto method = testing::make("ties", params, ctx);
    BlockStream stream(m, 2, 3);
    method->prepare(stream);
    testing::Merged got;
    for (const TensorSpec& t : m.spec.tensors) got[t.name].assign(static_cast<size_t>(t.numel()), 0.0f);
    for (const TensorSpec& t : m.spec.tensors)
      for (const MergeUnit& u : units_of(t)) {
        if (method->unit_statistics()) {
          BlockStream unit(m, 3, 2, &u);
          method->prepare_unit(unit);
        }
        // Merged in blocks of another size than the statistics saw.
        const int64_t row = u.numel() / u.shape[0];
        for (int64_t r = 0; r < u.shape[0]; r += 5) {
          MergeUnit b = u;
          b.offset = u.offset + r * row;
          b.shape[0] = std::min<int64_t>(5, u.shape[0] - r);
          std::vector<float> base(m.base.at(t.name).begin() + b.offset, m.base.at(t.name).begin() + b.offset + b.numel());
          TaskVectors tasks;
          for (const auto& v : m.tasks.at(t.name))
            tasks.emplace_back(v.begin() + b.offset, v.begin() + b.offset + b.numel());
          method->merge(b, base, tasks, got[t.name].data() + b.offset);
        }
      }
    EXPECT_EQ(got, one) << scope;
  }
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

// ties_direction works a stretch of entries at a time so that it vectorises; it must give the bits of ties_trim and
// ties_combine (the GPU's per-element functions) entry by entry, over a length that is no multiple of the stretch,
// from a flat index other than 0, with zeros, values at the threshold on both sides of a cut and sums of zero.
TEST(MethodTies, CombineEqualsThePerEntryFunctionsBitForBit) {
  const size_t n = 3001, K = 4;
  const int64_t offset = 500;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> kind(0, 7);
  const std::vector<TiesTaskTrim> trims = {{0.5f, offset + 1700}, {0.0f, offset + 3}, {1.25f, 0}, kTiesKeepAll};
  TaskVectors tasks(K, std::vector<float>(n));
  std::vector<float> base(n);
  for (size_t i = 0; i < n; ++i) {
    base[i] = normal(rng);
    for (size_t k = 0; k < K; ++k) {
      switch (kind(rng)) {
        case 0: tasks[k][i] = 0.0f; break;
        case 1: tasks[k][i] = (rng() % 2 ? 1.0f : -1.0f) * trims[k % 3].threshold; break;
        case 2: tasks[k][i] = k % 2 ? 0.75f : -0.75f; break;  // pairs that cancel
        default: tasks[k][i] = normal(rng); break;
      }
    }
  }
  for (const float majority : {1.0f, -1.0f})
    for (const TiesDisjoint disjoint : {TiesDisjoint::Mean, TiesDisjoint::Sum}) {
      std::vector<float> out(n);
      ties_direction(tasks, trims, offset, majority, disjoint, n, out.data());
      apply_final_scale(base.data(), 0.3f, out.data(), out.data(), n);
      uint64_t positive = 0, negative = 0, want_positive = 0, want_negative = 0;
      ties_count_signs(tasks, trims, offset, n, &positive, &negative);
      for (size_t i = 0; i < n; ++i) {
        float kept[K], total = 0.0f;
        for (size_t k = 0; k < K; ++k) {
          kept[k] = ties_trim(tasks[k][i], trims[k], offset + static_cast<int64_t>(i));
          total += kept[k];
        }
        want_positive += total > 0.0f;
        want_negative += total < 0.0f;
        const float want = base[i] + 0.3f * ties_combine(kept, static_cast<int>(K), majority, disjoint);
        ASSERT_EQ(std::memcmp(&out[i], &want, sizeof want), 0) << i << ": " << out[i] << " vs " << want;
      }
      EXPECT_EQ(positive, want_positive);
      EXPECT_EQ(negative, want_negative);
    }
}

// Large enough that the sample brackets the thresholds (one pass over the values): against the rule over every
// |T_k| of the model, over one and two ranks (whose samples and kept values differ); float32 noise, and the
// same rounded to a few magnitudes, where the trim splits the ties at the threshold.
TEST(MethodTies, ModelScopeOverLargeTensorsMatchesTheRule) {
  for (const bool coarse : {false, true}) {
    TestModel m;
    for (int t = 0; t < 3; ++t) {
      const int64_t rows = 64 * (t + 2);
      const size_t n = static_cast<size_t>(rows * 256);
      TaskVectors tasks = {testing::noise(n, 40 + t), testing::noise(n, 50 + t), testing::noise(n, 60 + t)};
      for (auto& task : tasks)
        for (float& v : task) v = coarse ? std::round(v * 8.0f) / 8.0f : v;
      m.add("w" + std::to_string(t), Role::Linear, {rows, 256}, testing::noise(n, t), tasks);
    }
    const std::map<std::string, std::string> params = {{"density", "0.2"}, {"alpha", "1"}};
    const auto one = run_single("ties", params, m);
    EXPECT_EQ(one, brute_force(m, 0.2, false, TiesDisjoint::Mean, 1.0f)) << coarse;
    EXPECT_EQ(testing::run_ranks("ties", params, m, 2), one) << coarse;
  }
}

}  // namespace
}  // namespace cm
