// FeatureStore statistics against naive double sums, accumulated over several record() calls.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/error.hpp"
#include "features/feature_store.hpp"

namespace cm {
namespace {

std::vector<float> random_rows(int64_t n, int64_t dim, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.5f, 2.0f);
  std::vector<float> v(static_cast<size_t>(n * dim));
  for (float& x : v) x = nd(rng);
  return v;
}

TEST(FeatureStore, GramAccumulatesOverCalls) {
  std::mt19937 rng(4);
  const int64_t dim = 13;
  FeatureStore store;
  std::vector<double> want(dim * dim, 0.0);
  int64_t total = 0;
  for (const int64_t n : {5, 1500, 7}) {  // 1500 rows cross the store's internal block size
    const auto x = random_rows(n, dim, rng);
    store.record("layers.0.attn_in", SiteKind::LinearInput, x.data(), n, dim);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t i = 0; i < dim; ++i) {
        for (int64_t j = 0; j < dim; ++j) want[i * dim + j] += static_cast<double>(x[r * dim + i]) * x[r * dim + j];
      }
    }
    total += n;
  }
  const SiteStats& s = store.at("layers.0.attn_in");
  EXPECT_EQ(s.kind, SiteKind::LinearInput);
  EXPECT_EQ(s.dim, dim);
  EXPECT_EQ(s.rows, total);
  EXPECT_TRUE(s.sqsum.empty());
  ASSERT_EQ(s.gram.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(s.gram[i], want[i], 1e-10 * (1.0 + std::abs(want[i]))) << i;
}

TEST(FeatureStore, SqsumAccumulatesOverCalls) {
  std::mt19937 rng(5);
  const int64_t dim = 9;
  FeatureStore store;
  std::vector<double> want(dim, 0.0);
  for (const int64_t n : {3, 40}) {
    const auto x = random_rows(n, dim, rng);
    store.record("final.post_ln", SiteKind::NormInput, x.data(), n, dim);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t j = 0; j < dim; ++j) want[j] += static_cast<double>(x[r * dim + j]) * x[r * dim + j];
    }
  }
  const SiteStats& s = store.at("final.post_ln");
  EXPECT_EQ(s.kind, SiteKind::NormInput);
  EXPECT_EQ(s.rows, 43);
  EXPECT_TRUE(s.gram.empty());
  for (int64_t j = 0; j < dim; ++j) EXPECT_NEAR(s.sqsum[j], want[j], 1e-12 * want[j]);
}

TEST(FeatureStore, WantsOnlyListedSites) {
  FeatureStore all;
  EXPECT_TRUE(all.wants("anything"));
  FeatureStore some({"layers.1.ln1", "final.post_ln"});
  EXPECT_TRUE(some.wants("final.post_ln"));
  EXPECT_FALSE(some.wants("layers.0.ln1"));
}

TEST(FeatureStore, InconsistentSiteIsInternalError) {
  FeatureStore store;
  const std::vector<float> x(12, 1.0f);
  store.record("s", SiteKind::LinearInput, x.data(), 3, 4);
  EXPECT_THROW(store.record("s", SiteKind::LinearInput, x.data(), 2, 6), Error);
  EXPECT_THROW(store.record("s", SiteKind::NormInput, x.data(), 3, 4), Error);
  EXPECT_THROW(store.at("never"), Error);
  EXPECT_EQ(store.sites().size(), 1u);
}

}  // namespace
}  // namespace cm
