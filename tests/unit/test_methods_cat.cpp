// CAT Merging: linear projections on a case with known eigenvectors and against a dense transcription of
// METHODS.md (with its own Jacobi eigensolver), norm and shift masks with ties, K = 1, other tensors; the same for
// `variant: released` (any-sign bases in both forms of the solve, rescales, mean norm scores, own-entry shift scores,
// 1-D tensors as shifts, the scaled feature model by default).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/error.hpp"
#include "eigen_testing.hpp"
#include "features/feature_store.hpp"
#include "method_testing.hpp"
#include "methods/linalg.hpp"

namespace cm {
namespace {

using testing::run_single;
using testing::TestModel;

MergeContext with_features(const std::vector<FeatureStore>& stores) {
  MergeContext ctx;
  ctx.features = &stores;
  return ctx;
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want, float tol = 1e-5f) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << i;
}

// A linear unit with known eigenvectors: S_1 = diag(4, 1, 2.25), S_2 = diag(1, 9, 0.25), T_1 = Q (a rotation about
// axis 2), T_2 = 2I. With lambda = 0.5, G_1 = T_2 (S_1 - 0.5 S_2) T_2^T = diag(14, -14, 8.5) and
// G_2 = Q diag(-1, 8.5, -0.875) Q^T.
struct KnownUnit {
  std::vector<FeatureStore> features = std::vector<FeatureStore>(2);
  TestModel model;
  KnownUnit() {
    const std::vector<float> x1 = {2, 0, 0, 0, 1, 0, 0, 0, 1.5f}, x2 = {1, 0, 0, 0, 3, 0, 0, 0, 0.5f};
    features[0].record("site", SiteKind::LinearInput, x1.data(), 3, 3);
    features[1].record("site", SiteKind::LinearInput, x2.data(), 3, 3);
    const std::vector<float> q = {0.6f, -0.8f, 0, 0.8f, 0.6f, 0, 0, 0, 1};
    model.add("w", Role::Linear, {3, 3}, std::vector<float>(9, 0.0f), {q, {2, 0, 0, 0, 2, 0, 0, 0, 2}}, "site");
  }
};

TEST(MethodCat, LinearProjectorWithKnownEigenvectors) {
  // B_1 = {e0, e2} (c >= 2), so T_2 -> diag(0, 2, 0); G_2 has one positive eigenvalue, B_2 = {Q e1}, so T_1 -> Q
  // with column 1 zeroed.
  const KnownUnit known;
  const std::vector<FeatureStore>& f = known.features;
  const TestModel& m = known.model;
  for (const char* c : {"2", "3", "10"}) {
    const auto out = run_single("cat", {{"alpha", "1"}, {"lambda", "0.5"}, {"c", c}}, m, with_features(f));
    expect_near(out.at("w"), {0.6f, 0, 0, 0.8f, 2, 0, 0, 0, 1});
  }
  // c = 1: B_1 = {e0} only, T_2 -> diag(0, 2, 2).
  const auto one = run_single("cat", {{"alpha", "1"}, {"lambda", "0.5"}, {"c", "1"}}, m, with_features(f));
  expect_near(one.at("w"), {0.6f, 0, 0, 0.8f, 2, 0, 0, 0, 3});
  // c = 0: nothing is trimmed.
  const auto none = run_single("cat", {{"alpha", "1"}, {"c", "0"}}, m, with_features(f));
  expect_near(none.at("w"), {2.6f, -0.8f, 0, 0.8f, 2.6f, 0, 0, 0, 3});
}

// Eigenpairs of a symmetric matrix by cyclic Jacobi rotations; eigenvectors are the columns of v.
void jacobi(std::vector<double> a, size_t n, std::vector<double>& w, std::vector<double>& v) {
  v.assign(n * n, 0.0);
  for (size_t i = 0; i < n; ++i) v[i * n + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (size_t p = 0; p < n; ++p)
      for (size_t q = p + 1; q < n; ++q) off += a[p * n + q] * a[p * n + q];
    if (off < 1e-30) break;
    for (size_t p = 0; p < n; ++p)
      for (size_t q = p + 1; q < n; ++q) {
        if (a[p * n + q] == 0) continue;
        const double theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q]);
        const double t = (theta >= 0 ? 1 : -1) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (size_t k = 0; k < n; ++k) {  // a <- a J
          const double akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (size_t k = 0; k < n; ++k) {  // a <- J^T a
          const double apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (size_t k = 0; k < n; ++k) {
          const double vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  w.resize(n);
  for (size_t i = 0; i < n; ++i) w[i] = a[i * n + i];
}

// METHODS.md's linear CAT for one unit, with plain loops: tasks [K][out*in], grams [K][in*in].
// released: the c largest eigenvalues whatever their sign (none when every one is <= 0), each T_i rescaled to its
// Frobenius norm after its projections.
TaskVectors cat_linear_reference(const TaskVectors& tasks, const std::vector<std::vector<double>>& grams, size_t out,
                                 size_t in, double lambda, size_t c, bool released = false) {
  const size_t K = tasks.size();
  std::vector<std::vector<std::vector<double>>> bases(K);  // [k][j] = unit vector of length out
  for (size_t k = 0; k < K; ++k) {
    std::vector<double> g(out * out, 0.0);
    for (size_t i = 0; i < K; ++i) {
      if (i == k) continue;
      for (size_t r = 0; r < out; ++r)
        for (size_t s = 0; s < out; ++s)
          for (size_t a = 0; a < in; ++a)
            for (size_t b = 0; b < in; ++b)
              g[r * out + s] += tasks[i][r * in + a] * (grams[k][a * in + b] - lambda * grams[i][a * in + b]) *
                                tasks[i][s * in + b];
    }
    std::vector<double> w, v;
    jacobi(g, out, w, v);
    std::vector<size_t> order(out);
    for (size_t j = 0; j < out; ++j) order[j] = j;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return w[a] > w[b]; });
    for (size_t j = 0; j < std::min(c, out) && (released ? w[order[0]] > 0 : w[order[j]] > 0); ++j) {
      std::vector<double> u(out);
      for (size_t r = 0; r < out; ++r) u[r] = v[r * out + order[j]];
      bases[k].push_back(u);
    }
  }
  TaskVectors result = tasks;
  for (size_t i = 0; i < K; ++i) {
    std::vector<double> t(tasks[i].begin(), tasks[i].end());
    for (size_t k = 0; k < K; ++k) {
      if (k == i) continue;
      for (const auto& u : bases[k])
        for (size_t col = 0; col < in; ++col) {
          double dot = 0;
          for (size_t r = 0; r < out; ++r) dot += u[r] * t[r * in + col];
          for (size_t r = 0; r < out; ++r) t[r * in + col] -= u[r] * dot;
        }
    }
    double was = 0, now = 0;
    for (size_t j = 0; j < t.size(); ++j) {
      was += static_cast<double>(tasks[i][j]) * tasks[i][j];
      now += t[j] * t[j];
    }
    const double scale = released && now > 0 ? std::sqrt(was / now) : 1.0;
    for (size_t j = 0; j < t.size(); ++j) result[i][j] = static_cast<float>(t[j] * scale);
  }
  return result;
}

TEST(MethodCat, LinearMatchesDenseDefinition) {
  // K = 3 (so each T_i gets two projections, in ascending k), a fused tensor of 2 units of [4, 5]; c = 3 of 4
  // eigenvalues, so that the released variant takes some <= 0.
  const size_t K = 3, out = 4, in = 5;
  std::vector<FeatureStore> f(K);
  std::vector<std::vector<double>> grams(K);
  for (size_t k = 0; k < K; ++k) {
    const std::vector<float> rows = testing::noise(7 * in, 40 + k);
    f[k].record("site", SiteKind::LinearInput, rows.data(), 7, in);
    grams[k] = f[k].at("site").gram;
  }
  TaskVectors tasks;
  for (size_t k = 0; k < K; ++k) tasks.push_back(testing::noise(2 * out * in, 60 + k));
  TestModel m;
  m.add("qkv", Role::Linear, {2 * out, in}, testing::noise(2 * out * in, 1), tasks, "site", 2);
  for (const char* variant : {"paper", "released"}) {
    const bool released = std::string(variant) == "released";
    const auto got = run_single(
        "cat", {{"alphas", "[0.5, 1, 2]"}, {"lambda", "0.3"}, {"c", released ? "3" : "2"}, {"variant", variant}}, m,
        with_features(f));
    std::vector<float> want = m.base.at("qkv");
    const std::vector<float> alphas = {0.5f, 1, 2};
    for (size_t part = 0; part < 2; ++part) {
      TaskVectors unit;
      for (const auto& t : tasks) unit.emplace_back(t.begin() + part * out * in, t.begin() + (part + 1) * out * in);
      const TaskVectors trimmed = cat_linear_reference(unit, grams, out, in, 0.3, released ? 3 : 2, released);
      for (size_t k = 0; k < K; ++k)
        for (size_t j = 0; j < out * in; ++j) want[part * out * in + j] += alphas[k] * trimmed[k][j];
    }
    expect_near(got.at("qkv"), want);
    EXPECT_GT(std::fabs(got.at("qkv")[0] - run_single("task_arithmetic", {{"alphas", "[0.5, 1, 2]"}}, m).at("qkv")[0]),
              1e-3f)
        << variant;  // the projections did something
  }
}

TEST(MethodCat, ReleasedLinearTakesEigenvaluesOfAnySignAndRescales) {
  // c = 2: B_1 = {e0, e2} (as the paper's), B_2 = {Q e1, Q e2} (8.5 and -0.875), so T_2 -> diag(0, 2, 0) and
  // T_1 -> Q's column 0 alone; rescaled to their norms 2 sqrt(3) and sqrt(3): T_2 -> diag(0, 2 sqrt(3), 0), T_1 ->
  // sqrt(3) (0.6, 0.8, 0) in column 0.
  const KnownUnit known;
  const std::vector<FeatureStore>& f = known.features;
  const TestModel& m = known.model;
  const float r3 = std::sqrt(3.0f);
  const std::map<std::string, std::string> params = {{"alpha", "1"}, {"lambda", "0.5"}, {"variant", "released"}};
  auto c2 = params;
  c2["c"] = "2";
  expect_near(run_single("cat", c2, m, with_features(f)).at("w"), {0.6f * r3, 0, 0, 0.8f * r3, 2 * r3, 0, 0, 0, 0});
  // c = 3: each basis spans everything; both projections leave only rounding, which is 0, not rescaled.
  auto c3 = params;
  c3["c"] = "3";
  expect_near(run_single("cat", c3, m, with_features(f)).at("w"), std::vector<float>(9, 0.0f));
}

// The removal bases `any_sign` against the dense spectrum, in both forms of the solve. K = 2 tasks of 3 rows and a
// unit [7, 8]: F has m = 6 < out rows and G_k rank 6, so one eigenvalue 0 (its null vector is unique) above its
// negative ones. Asking for one more vector than G_k has positive eigenvalues takes that null vector: the reduced
// form (order m) cannot, so it hands the task to the formed one.
TEST(MethodCat, AnySignBasesMatchTheDenseSpectrumInBothForms) {
  const int64_t out = 7, in = 8, n = 3;
  const TaskVectors tasks = {testing::noise(out * in, 3), testing::noise(out * in, 4)};
  const std::vector<float> x0 = testing::noise(n * in, 5), x1 = testing::noise(n * in, 6);
  ConflictProblem p;
  p.where = "w";
  p.out = out;
  p.in = in;
  p.lambda = 2.0;
  p.any_sign = true;
  p.tasks = {tasks[0].data(), tasks[1].data()};
  p.rows = {{x0.data(), n}, {x1.data(), n}};
  std::vector<FeatureStore> f(2);
  f[0].record("s", SiteKind::LinearInput, x0.data(), n, in);
  f[1].record("s", SiteKind::LinearInput, x1.data(), n, in);
  const std::vector<std::vector<double>> grams = {f[0].at("s").gram_matrix(), f[1].at("s").gram_matrix()};
  for (size_t k = 0; k < 2; ++k) {
    const size_t i = 1 - k;
    std::vector<double> g(static_cast<size_t>(out * out), 0.0);
    for (int64_t r = 0; r < out; ++r)
      for (int64_t s = 0; s < out; ++s)
        for (int64_t a = 0; a < in; ++a)
          for (int64_t b = 0; b < in; ++b)
            g[r * out + s] += tasks[i][r * in + a] * (grams[k][a * in + b] - p.lambda * grams[i][a * in + b]) *
                              tasks[i][s * in + b];
    std::vector<double> w, v;
    jacobi(g, static_cast<size_t>(out), w, v);
    std::vector<size_t> order(static_cast<size_t>(out));
    for (size_t j = 0; j < order.size(); ++j) order[j] = j;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return w[a] > w[b]; });
    int positive = 0;
    while (positive < out && w[order[positive]] > 1e-9 * std::fabs(w[order[0]])) ++positive;
    ASSERT_GT(positive, 0);
    ASSERT_LT(positive, 6);
    const int c = positive + 1;  // reaches the null vector
    const double gap = std::min(w[order[c - 2]] - w[order[c - 1]], w[order[c - 1]] - w[order[c]]);
    ASSERT_GT(gap, 1e-3 * std::fabs(w[order[0]]));
    Basis want;
    want.cols = c;
    for (int j = 0; j < c; ++j)
      for (int64_t r = 0; r < out; ++r) want.rows.push_back(v[r * out + order[j]]);
    for (const auto pin : {ConflictOptions::Pin::Formed, ConflictOptions::Pin::Reduced, ConflictOptions::Pin::Cheaper}) {
      LinalgOptions o;
      o.conflict.pin = pin;
      const std::vector<Basis> got = make_cpu_linalg(o)->top_eigvecs(p, c, nullptr);
      ASSERT_EQ(got[k].cols, c) << k;
      EXPECT_LT(testing::projector_distance(got[k], want, out), 1e-4) << k << " pin " << static_cast<int>(pin);
    }
  }
}

// A norm-scale unit: sum xhat^2 of task 1 [2, 3, 3, 1, 0] over 3 rows, of task 2 [0, 0, 0, 0, 1] over 1; T = ones.
struct NormUnit {
  std::vector<FeatureStore> features = std::vector<FeatureStore>(2);
  TestModel model;
  NormUnit() {
    const std::vector<float> x1 = {1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0}, x2 = {0, 0, 0, 0, 1};
    features[0].record("ln", SiteKind::NormInput, x1.data(), 3, 5);
    features[1].record("ln", SiteKind::NormInput, x2.data(), 1, 5);
    model.add("ln.weight", Role::NormScale, {5}, std::vector<float>(5, 0.0f), TaskVectors(2, std::vector<float>(5, 1.0f)),
              "ln");
  }
};

TEST(MethodCat, NormMaskBreaksTiesByLowerIndex) {
  // lambda_norm = 1. Task 1: g = [2, 3, 3, 1, -1]; task 2: g = [-2, -3, -3, -1, 1] (only entry 4 is positive).
  const NormUnit unit;
  const std::vector<FeatureStore>& f = unit.features;
  const TestModel& m = unit.model;
  const auto merged = [&](const char* c) {
    return run_single("cat", {{"alpha", "1"}, {"lambda_norm", "1"}, {"c_norm", c}}, m, with_features(f)).at("ln.weight");
  };
  EXPECT_EQ(merged("1"), (std::vector<float>{2, 1, 2, 2, 1}));  // the tie 3 = 3 goes to entry 1
  EXPECT_EQ(merged("3"), (std::vector<float>{1, 1, 1, 2, 1}));  // entries 1, 2, 0; task 2 still only 4
  EXPECT_EQ(merged("0"), (std::vector<float>{2, 2, 2, 2, 2}));
}

TEST(MethodCat, ReleasedNormMaskTakesMeansAndAnySign) {
  // Means of xhat^2: task 1 [2/3, 1, 1, 1/3, 0], task 2 [0, 0, 0, 0, 1]. Task 1: g = [2/3, 1, 1, 1/3, -1] ->
  // entries 1, 2 (c_norm 2); task 2: g = [-2/3, -1, -1, -1/3, 1] -> entries 4 and 3, whatever the sign.
  // T_1 = [1, 1, 1, 0, 0], T_2 = [1, 0, 0, 1, 1], each rescaled from norm sqrt(3) to sqrt(5).
  const NormUnit unit;
  const std::vector<FeatureStore>& f = unit.features;
  const TestModel& m = unit.model;
  const auto merged = [&](const char* variant) {
    return run_single("cat", {{"alpha", "1"}, {"lambda_norm", "1"}, {"c_norm", "2"}, {"variant", variant}}, m,
                      with_features(f))
        .at("ln.weight");
  };
  const float s = std::sqrt(5.0f / 3.0f);
  expect_near(merged("released"), {2 * s, s, s, s, s});
  EXPECT_EQ(merged("paper"), (std::vector<float>{2, 1, 1, 2, 1}));  // task 2 takes entry 4 alone; no rescale
}

TEST(MethodCat, ReleasedShiftMaskScoresTheTasksOwnEntries) {
  // K = 2, c_shift = 1. Task 1: g = T_1^2 = [9, 1, 4, 0.25], the value at 1-based position 4 - 1 = 3 of g sorted
  // is 4: entries 0 and 2 of T_2 go. Task 2: g = [1, 1, 1, 1]: every entry reaches 1, T_1 goes entirely.
  TestModel m;
  m.add("b", Role::Shift, {4}, {0, 0, 0, 0}, {{3, 1, 2, 0.5f}, {1, 1, 1, 1}});
  const auto merged = [&](const char* c) {
    return run_single("cat", {{"alpha", "1"}, {"c_shift", c}, {"variant", "released"}}, m).at("b");
  };
  EXPECT_EQ(merged("1"), (std::vector<float>{0, 1, 0, 1}));
  EXPECT_EQ(merged("0"), (std::vector<float>{0, 1, 1, 1}));  // position 4: the largest (9) alone for task 1
  EXPECT_EQ(merged("4"), (std::vector<float>{0, 0, 0, 0}));  // d - c < 1: every entry, both ways
}

TEST(MethodCat, ReleasedTakesOneDimensionalTensorsAsShifts) {
  // A 1-D 'other' tensor (CLIP's class_embedding) is a shift under the released variant and untouched by the
  // paper's; a 2-D one stays untouched by both.
  TestModel m;
  m.add("cls", Role::Other, {4}, {0, 0, 0, 0}, {{3, 1, 2, 0.5f}, {1, 1, 1, 1}});
  m.add("pos", Role::Other, {2, 2}, {0, 0, 0, 0}, {{3, 1, 2, 0.5f}, {1, 1, 1, 1}});
  const auto released = run_single("cat", {{"alpha", "1"}, {"c_shift", "1"}, {"variant", "released"}}, m);
  EXPECT_EQ(released.at("cls"), (std::vector<float>{0, 1, 0, 1}));
  EXPECT_EQ(released.at("pos"), (std::vector<float>{4, 2, 3, 1.5f}));
  EXPECT_EQ(run_single("cat", {{"alpha", "1"}, {"c_shift", "1"}}, m).at("cls"), (std::vector<float>{4, 2, 3, 1.5f}));
  LocalReducer local;
  MergeContext ctx = testing::context_for(m, {});
  const auto method = testing::make("cat", {{"variant", "released"}}, ctx);
  EXPECT_FALSE(method->elementwise(m.spec.tensors[0]));
  EXPECT_TRUE(method->elementwise(m.spec.tensors[1]));
}

TEST(MethodCat, ReleasedVariantDefaultsToScaledFeatures) {
  EXPECT_TRUE(default_scaled_features("cat", {{"variant", "released"}}, "w"));
  EXPECT_FALSE(default_scaled_features("cat", {}, "w"));
  EXPECT_FALSE(default_scaled_features("ties", {{"density", "0.3"}}, "w"));
  EXPECT_THROW(default_scaled_features("cat", {{"variant", "v2"}}, "w"), Error);
  // The rescale keeps the merge base + alpha * D with D free of alpha: one alpha is still a final scale.
  MergeContext ctx;
  ctx.num_tasks = 2;
  EXPECT_EQ(testing::make("cat", {{"variant", "released"}, {"alpha", "0.4"}}, ctx)->final_scale(), 0.4f);
}

TEST(MethodCat, ShiftMasksComeFromTheOriginalVectors) {
  // T_1 = [1, 0, 0], T_2 = [0, 2, 0], T_3 = [0, 0, 1.5], c_shift = 1. Masks from the originals: task 1 -> 1,
  // task 2 -> 2, task 3 -> 1 (g = [1, 4, 0]). Had task 1's mask been applied first, task 3 would pick 0.
  TestModel m;
  m.add("b", Role::Shift, {3}, {0, 0, 0}, {{1, 0, 0}, {0, 2, 0}, {0, 0, 1.5f}});
  EXPECT_EQ(run_single("cat", {{"alpha", "1"}, {"c_shift", "1"}}, m).at("b"), (std::vector<float>{1, 0, 0}));
  // Ties: g = T_1^2 = [1, 4, 4, 1] for task 2 -> entry 1 for c = 1; entries 1, 2, 0 for c = 3.
  TestModel t;
  t.add("b", Role::Shift, {4}, {0, 0, 0, 0}, {{1, 2, 2, 1}, {0, 0, 0, 0}});
  EXPECT_EQ(run_single("cat", {{"alpha", "1"}, {"c_shift", "1"}}, t).at("b"), (std::vector<float>{1, 0, 2, 1}));
  EXPECT_EQ(run_single("cat", {{"alpha", "1"}, {"c_shift", "3"}}, t).at("b"), (std::vector<float>{0, 0, 0, 1}));
}

TEST(MethodCat, SingleTaskIsTaskArithmetic) {
  TestModel m;
  m.add("w", Role::Linear, {2, 3}, testing::noise(6, 1), {testing::noise(6, 2)}, "site");
  m.add("ln", Role::NormScale, {3}, testing::noise(3, 3), {testing::noise(3, 4)}, "ln");
  m.add("b", Role::Shift, {3}, testing::noise(3, 5), {testing::noise(3, 6)});
  m.add("emb", Role::Other, {4}, testing::noise(4, 7), {testing::noise(4, 8)});
  EXPECT_EQ(run_single("cat", {{"c", "5"}}, m), run_single("task_arithmetic", {}, m));
}

TEST(MethodCat, OtherTensorsAreUntouched) {
  TestModel m;
  m.add("emb", Role::Other, {4}, testing::noise(4, 1), {testing::noise(4, 2), testing::noise(4, 3)});
  EXPECT_EQ(run_single("cat", {{"alphas", "[0.2, 0.7]"}}, m), run_single("task_arithmetic", {{"alphas", "[0.2, 0.7]"}}, m));
}

}  // namespace
}  // namespace cm
