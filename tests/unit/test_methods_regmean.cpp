// RegMean on cases with known answers, and against a direct solve of its normal equations.
#include <gtest/gtest.h>

#include <cmath>

#include "features/feature_store.hpp"
#include "method_testing.hpp"

namespace cm {
namespace {

using testing::run_single;
using testing::TestModel;

MergeContext with_features(const std::vector<FeatureStore>& stores) {
  MergeContext ctx;
  ctx.features = &stores;
  return ctx;
}

FeatureStore store(const std::vector<float>& rows, int64_t dim) {
  FeatureStore s;
  s.record("site", SiteKind::LinearInput, rows.data(), static_cast<int64_t>(rows.size()) / dim, dim);
  return s;
}

std::vector<float> add(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<float> c(a.size());
  for (size_t i = 0; i < a.size(); ++i) c[i] = a[i] + b[i];
  return c;
}

TEST(MethodRegMean, IdenticalExpertsGiveThatExpert) {
  TestModel m;
  const std::vector<float> base = testing::noise(12, 1), t = testing::noise(12, 2);
  m.add("w", Role::Linear, {3, 4}, base, {t, t, t}, "site");
  const std::vector<FeatureStore> f = {store(testing::noise(40, 3), 4), store(testing::noise(24, 4), 4),
                                       store(testing::noise(32, 5), 4)};
  const auto out = run_single("regmean", {}, m, with_features(f)).at("w");
  const std::vector<float> expert = add(base, t);
  for (size_t i = 0; i < 12; ++i) EXPECT_NEAR(out[i], expert[i], 1e-5) << i;
}

TEST(MethodRegMean, DiagonalGramIsAPerColumnWeightedMean) {
  // Task 1 rows [2,0,0], [0,1,0], [0,0,3]: G_1 = diag(4, 1, 9) / 3. Task 2 rows [1,0,0], [0,2,0],
  // [0,0,1] twice: G_2 = diag(1, 4, 2) / 4. Column j of W is (g1_j W_1[:, j] + g2_j W_2[:, j]) / (g1_j + g2_j).
  TestModel m;
  const std::vector<float> base(6, 0.0f), w1 = {1, 2, 3, 4, 5, 6}, w2 = {-1, 0, 1, 2, 2, 2};
  m.add("w", Role::Linear, {2, 3}, base, {w1, w2}, "site");
  const std::vector<FeatureStore> f = {store({2, 0, 0, 0, 1, 0, 0, 0, 3}, 3),
                                       store({1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 1}, 3)};
  const auto out = run_single("regmean", {{"reduction", "0.5"}}, m, with_features(f)).at("w");
  const double g1[3] = {4.0 / 3, 1.0 / 3, 3.0}, g2[3] = {0.25, 1.0, 0.5};
  for (int r = 0; r < 2; ++r)
    for (int j = 0; j < 3; ++j) {
      const double want = (g1[j] * w1[r * 3 + j] + g2[j] * w2[r * 3 + j]) / (g1[j] + g2[j]);
      EXPECT_NEAR(out[r * 3 + j], want, 1e-6) << r << "," << j;
    }
}

TEST(MethodRegMean, SingularGramIsRegularised) {
  // Input 2 is never active: sum_k G_k is singular, the retry adds 1e-6 * mean(diag), and column 2 of W,
  // which no feature constrains, comes out 0.
  TestModel m;
  m.add("w", Role::Linear, {1, 3}, {0, 0, 0}, {{1, 2, 3}, {3, 2, 1}}, "site");
  const std::vector<FeatureStore> f = {store({1, 0, 0, 0, 1, 0}, 3), store({1, 1, 0}, 3)};
  const auto out = run_single("regmean", {{"reduction", "1"}}, m, with_features(f)).at("w");
  // G_1 = diag(1, 1) / 2 on inputs 0-1, G_2 = [[1, 1], [1, 1]]; sum = [[1.5, 1], [1, 1.5]];
  // rhs = W_1 G_1 + W_2 G_2 = [0.5, 1] + [5, 5] = [5.5, 6]; by Cramer's rule (det 1.25) W = [1.8, 2.8],
  // moved by about 1e-6 by the regularisation.
  EXPECT_NEAR(out[0], 1.8f, 1e-5);
  EXPECT_NEAR(out[1], 2.8f, 1e-5);
  EXPECT_NEAR(out[2], 0.0f, 1e-5);
}

TEST(MethodRegMean, OtherRolesAreAveraged) {
  TestModel m;
  m.add("ln", Role::NormScale, {2}, {1, 1}, {{1, 2}, {3, 0}}, "norm_site");
  m.add("b", Role::Shift, {2}, {0, 0}, {{1, 2}, {3, 0}});
  const auto out = run_single("regmean", {}, m, with_features({}));
  EXPECT_EQ(out.at("ln"), (std::vector<float>{3, 2}));
  EXPECT_EQ(out.at("b"), (std::vector<float>{2, 1}));
}

}  // namespace
}  // namespace cm
