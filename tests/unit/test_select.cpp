// Exact order statistics (sample brackets, histograms) and the counts below and at them, against std::nth_element
// and counting, and across simulated ranks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <utility>

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

// A source emitting each series in chunks of varying size; its sample is every sample_stride-th run of
// kSampleRun values.
ValueSource chunked(const std::vector<std::vector<float>>& series) {
  return [&series](const ValueEmitter& emit, int64_t sample_stride) {
    for (size_t s = 0; s < series.size(); ++s) {
      const std::vector<float>& v = series[s];
      if (sample_stride > 1) {
        const size_t run = static_cast<size_t>(kSampleRun), stretch = run * static_cast<size_t>(sample_stride);
        for (size_t i = 0; i + run <= v.size(); i += stretch) emit(0, static_cast<int>(s), v.data() + i, run);
        continue;
      }
      size_t i = 0, step = 1;
      while (i < v.size()) {
        const size_t n = std::min(step, v.size() - i);
        emit(0, static_cast<int>(s), v.data() + i, n);
        i += n;
        step = step * 3 + 1;
      }
    }
  };
}

// The same values, but a sample of only the smallest: every bracket misses, so the histograms must answer.
ValueSource misleading(const std::vector<std::vector<float>>& series, const std::vector<std::vector<float>>& sorted) {
  const ValueSource all = chunked(series);
  return [all, &sorted](const ValueEmitter& emit, int64_t sample_stride) {
    if (sample_stride == 1) return all(emit, 1);
    for (size_t s = 0; s < sorted.size(); ++s)  // one value a run, so that the sample looks well spread
      for (size_t i = 0; i < std::min<size_t>(sorted[s].size(), 4 * kSampleRun); ++i)
        emit(0, static_cast<int>(s), &sorted[s][i], 1);
  };
}

// A fixed position: a sample cannot bracket it, so only small series (whose sample is empty) hold it.
OrderQuery at(int series, uint64_t position) {
  return {series, [position](uint64_t) { return static_cast<int64_t>(position); }};
}

// The position f * (d - 1) of a series of d values, a quantile as TIES and PCB ask.
OrderQuery quantile(int series, double f) {
  return {series, [f](uint64_t d) { return static_cast<int64_t>(clamp_position(f * static_cast<double>(d - 1), d)); }};
}

float nth(std::vector<float> v, size_t k) {
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

// How many of v lie below x and how many equal it, by key (-0 below +0), as ExactSelect counts them.
std::pair<uint64_t, uint64_t> below_and_equal(const std::vector<float>& v, float x) {
  uint64_t below = 0, equal = 0;
  for (float y : v) {
    below += order_key(y) < order_key(x);
    equal += order_key(y) == order_key(x);
  }
  return {below, equal};
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

// Quantile queries of every series, as TIES and PCB ask them, against nth_element: through the brackets of the
// sample (one full pass), and through the histograms when the sample misleads (three).
TEST(SelectExact, MatchesNthElementThroughBracketsAndHistograms) {
  const std::vector<std::vector<float>> series = {awkward_values(200000, 1), awkward_values(777, 2),
                                                  awkward_values(1, 3), awkward_values(50000, 4)};
  std::vector<std::vector<float>> sorted = series;
  for (auto& v : sorted) std::sort(v.begin(), v.end());
  std::vector<OrderQuery> queries;
  for (int s = 0; s < static_cast<int>(series.size()); ++s)
    for (double f : {0.0, 1e-4, 1.0 / 7, 0.5, 0.8, 1.0 - 1e-4, 1.0}) queries.push_back(quantile(s, f));
  std::reverse(queries.begin(), queries.end());  // answers come back in query order, whatever it is
  for (bool mislead : {false, true}) {
    LocalReducer reducer;
    ExactSelect select(static_cast<int>(series.size()), reducer);
    select.run(queries, mislead ? misleading(series, sorted) : chunked(series));
    EXPECT_EQ(select.full_passes(), mislead ? 3 : 1);
    for (size_t q = 0; q < queries.size(); ++q) {
      const int s = queries[q].series;
      const uint64_t d = series[s].size();
      ASSERT_EQ(select.count(s), d);
      const uint64_t p = static_cast<uint64_t>(queries[q].position(d));
      ASSERT_TRUE(select.value(q).has_value());
      const float got = *select.value(q), want = nth(series[s], p);
      EXPECT_EQ(std::memcmp(&got, &want, sizeof got), 0) << "series " << s << " position " << p << " " << mislead;
      const auto [below, equal] = below_and_equal(series[s], want);
      EXPECT_EQ(select.count_below(q), below) << "series " << s << " position " << p << " " << mislead;
      EXPECT_EQ(select.count_equal(q), equal) << "series " << s << " position " << p << " " << mislead;
    }
  }
}

TEST(SelectExact, EveryPositionOfASmallSeries) {
  const std::vector<std::vector<float>> series = {{3.0f, -1.0f, 3.0f, 0.0f, -0.0f, 2.0f, -1.0f, 1e-45f}};
  LocalReducer reducer;
  ExactSelect select(1, reducer);
  std::vector<OrderQuery> queries;
  for (uint64_t p = 0; p < series[0].size(); ++p) queries.push_back(at(0, p));
  select.run(queries, chunked(series));
  const std::vector<float> want = {-1.0f, -1.0f, -0.0f, 0.0f, 1e-45f, 2.0f, 3.0f, 3.0f};  // -0 before +0, by key
  const std::vector<uint64_t> below = {0, 0, 2, 3, 4, 5, 6, 6}, equal = {2, 2, 1, 1, 1, 1, 2, 2};
  for (size_t p = 0; p < want.size(); ++p) {
    const float got = *select.value(p);
    EXPECT_EQ(std::memcmp(&got, &want[p], sizeof got), 0) << p;
    EXPECT_EQ(select.count_below(p), below[p]) << p;
    EXPECT_EQ(select.count_equal(p), equal[p]) << p;
  }
}

TEST(SelectExact, NegativePositionsAndEmptySeriesAskForNothing) {
  const std::vector<std::vector<float>> series = {{1.0f, 2.0f}, {}};
  LocalReducer reducer;
  ExactSelect select(2, reducer);
  select.run({{0, [](uint64_t) { return int64_t{-1}; }}, at(1, 0), at(0, 1)}, chunked(series));
  EXPECT_FALSE(select.value(0).has_value());
  EXPECT_FALSE(select.value(1).has_value());
  EXPECT_EQ(select.value(2), 2.0f);
  EXPECT_EQ(select.count(1), 0u);
}

// Split over three simulated ranks (one with no values at all), every rank gets the global answer.
TEST(SelectExact, SameAnswerOnEveryRank) {
  const std::vector<float> all = awkward_values(90000, 5);
  const std::vector<std::vector<std::vector<float>>> shares = {
      {std::vector<float>(all.begin(), all.begin() + 40000)},
      {std::vector<float>(all.begin() + 40000, all.end())},
      {std::vector<float>()}};
  testing::ReduceHub hub(3);
  std::vector<std::vector<float>> answers(3);
  std::vector<int> passes(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      testing::GroupReducer reducer(hub);
      ExactSelect select(1, reducer);
      select.run({quantile(0, 0.0), quantile(0, 0.5), quantile(0, 1.0)}, chunked(shares[r]));
      EXPECT_EQ(select.count(0), all.size());
      for (size_t q = 0; q < 3; ++q) {
        answers[r].push_back(*select.value(q));
        const auto [below, equal] = below_and_equal(all, *select.value(q));
        EXPECT_EQ(select.count_below(q), below) << r << " " << q;
        EXPECT_EQ(select.count_equal(q), equal) << r << " " << q;
      }
      passes[r] = select.full_passes();
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(answers[r], (std::vector<float>{nth(all, 0), nth(all, 44999), nth(all, 89999)}));
    EXPECT_EQ(passes[r], 1);
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
