// Exact order statistics by histogram selection, against std::nth_element, and across simulated ranks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "merge_math.hpp"
#include "method_testing.hpp"
#include "methods/select.hpp"

namespace cm {
namespace {

// Negatives, duplicates, +-0, denormals, values sharing their top 16 key bits, and extremes.
std::vector<float> awkward_values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> kind(0, 9);
  const float denormal = std::numeric_limits<float>::denorm_min();
  std::vector<float> v(n);
  for (auto& x : v) {
    switch (kind(rng)) {
      case 0: x = 0.0f; break;
      case 1: x = -0.0f; break;
      case 2: x = denormal * static_cast<float>(rng() % 1000) * (rng() % 2 ? 1.0f : -1.0f); break;
      case 3: x = 1.0f + static_cast<float>(rng() % 64) * 0x1p-23f; break;  // same top 16 bits
      case 4: x = -2.5f; break;
      case 5: x = (rng() % 2 ? 1.0f : -1.0f) * std::numeric_limits<float>::max(); break;
      default: x = normal(rng); break;
    }
  }
  return v;
}

// A source emitting each series in chunks of varying size.
ValueSource chunked(const std::vector<std::vector<float>>& series) {
  return [&series](const ValueEmitter& emit) {
    for (size_t s = 0; s < series.size(); ++s) {
      size_t i = 0, step = 1;
      while (i < series[s].size()) {
        const size_t n = std::min(step, series[s].size() - i);
        emit(static_cast<int>(s), series[s].data() + i, n);
        i += n;
        step = step * 3 + 1;
      }
    }
  };
}

float nth(std::vector<float> v, size_t k) {
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

TEST(SelectKey, OrderPreservingAndInvertible) {
  const std::vector<float> sorted = {-std::numeric_limits<float>::infinity(), -3.0f, -1e-40f, -0.0f, 0.0f,
                                     1e-40f, 1.0f, 3.0f, std::numeric_limits<float>::infinity()};
  for (size_t i = 0; i < sorted.size(); ++i) {
    const float back = order_key_value(order_key(sorted[i]));
    EXPECT_EQ(std::memcmp(&sorted[i], &back, sizeof back), 0) << sorted[i];
    if (i > 0) {
      EXPECT_LT(order_key(sorted[i - 1]), order_key(sorted[i]));
    }
  }
}

TEST(SelectExact, MatchesNthElement) {
  const std::vector<std::vector<float>> series = {awkward_values(20000, 1), awkward_values(777, 2),
                                                  awkward_values(1, 3), awkward_values(5000, 4)};
  LocalReducer reducer;
  ExactSelect select(static_cast<int>(series.size()), reducer);
  select.scan(chunked(series));
  std::vector<OrderQuery> queries;
  for (size_t s = 0; s < series.size(); ++s) {
    const uint64_t d = series[s].size();
    ASSERT_EQ(select.count(static_cast<int>(s)), d);
    for (uint64_t p : {uint64_t{0}, d / 7, d / 3, d / 2, d - d / 5 - 1, d - 1}) queries.push_back({static_cast<int>(s), p});
  }
  std::reverse(queries.begin(), queries.end());  // answers come back in query order, whatever it is
  const std::vector<float> got = select.select(queries, chunked(series));
  for (size_t q = 0; q < queries.size(); ++q)
    EXPECT_EQ(got[q], nth(series[queries[q].series], queries[q].position))
        << "series " << queries[q].series << " position " << queries[q].position;
  for (size_t s = 0; s < series.size(); ++s) {
    EXPECT_EQ(select.min(static_cast<int>(s)), *std::min_element(series[s].begin(), series[s].end()));
    EXPECT_EQ(select.max(static_cast<int>(s)), *std::max_element(series[s].begin(), series[s].end()));
  }
}

TEST(SelectExact, EveryPositionOfASmallSeries) {
  const std::vector<std::vector<float>> series = {{3.0f, -1.0f, 3.0f, 0.0f, -0.0f, 2.0f, -1.0f, 1e-45f}};
  LocalReducer reducer;
  ExactSelect select(1, reducer);
  select.scan(chunked(series));
  std::vector<OrderQuery> queries;
  for (uint64_t p = 0; p < series[0].size(); ++p) queries.push_back({0, p});
  const std::vector<float> got = select.select(queries, chunked(series));
  std::vector<float> want = series[0];
  std::sort(want.begin(), want.end());
  for (size_t p = 0; p < want.size(); ++p) EXPECT_EQ(got[p], want[p]) << p;
}

// Split over three simulated ranks (one with no values at all), every rank gets the global answer.
TEST(SelectExact, SameAnswerOnEveryRank) {
  const std::vector<float> all = awkward_values(9000, 5);
  const std::vector<std::vector<std::vector<float>>> shares = {
      {std::vector<float>(all.begin(), all.begin() + 4000)},
      {std::vector<float>(all.begin() + 4000, all.end())},
      {std::vector<float>()}};
  testing::ReduceHub hub(3);
  std::vector<std::vector<float>> answers(3);
  std::vector<float> minima(3), maxima(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      testing::GroupReducer reducer(hub);
      ExactSelect select(1, reducer);
      select.scan(chunked(shares[r]));
      EXPECT_EQ(select.count(0), all.size());
      answers[r] = select.select({{0, 0}, {0, 4500}, {0, 8999}}, chunked(shares[r]));
      minima[r] = select.min(0);
      maxima[r] = select.max(0);
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(answers[r], (std::vector<float>{nth(all, 0), nth(all, 4500), nth(all, 8999)}));
    EXPECT_EQ(minima[r], nth(all, 0));
    EXPECT_EQ(maxima[r], nth(all, 8999));
  }
}

TEST(SelectPosition, ClampsToTheSeries) {
  EXPECT_EQ(clamp_position(-1.0, 10), 0u);
  EXPECT_EQ(clamp_position(0.0, 10), 0u);
  EXPECT_EQ(clamp_position(4.0, 10), 4u);
  EXPECT_EQ(clamp_position(9.0, 10), 9u);
  EXPECT_EQ(clamp_position(10.0, 10), 9u);
  EXPECT_EQ(clamp_position(std::floor(10000 * (1.0 - 1e-4)) - 1, 10000), 9998u);
}

}  // namespace
}  // namespace cm
