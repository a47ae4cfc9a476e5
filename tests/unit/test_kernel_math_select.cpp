// CPU twins of the selection kernels: the top-c order with ties to the lower index, CAT's entry scores and
// masks, the 16-bit halves of order keys and a two-pass selection from histograms, and task vectors'
// finiteness check.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "merge_math.hpp"
#include "methods/cat_masks.hpp"
#include "methods/select.hpp"
#include "task_vector.hpp"

namespace cm {
namespace {

TEST(KernelMathSelect, RanksBeforeIsAStrictTotalOrder) {
  EXPECT_TRUE(ranks_before(2.0, 5, 1.0, 0));
  EXPECT_TRUE(ranks_before(1.0, 3, 1.0, 4));  // a tie goes to the lower index
  EXPECT_FALSE(ranks_before(1.0, 4, 1.0, 3));
  EXPECT_FALSE(ranks_before(1.0, 3, 1.0, 3));  // irreflexive
  std::vector<double> g = {3, 1, 3, 2, 3, 0, -1, 2};
  std::vector<int64_t> idx(g.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return ranks_before(g[a], a, g[b], b); });
  EXPECT_EQ(idx, (std::vector<int64_t>{0, 2, 4, 3, 7, 1, 5, 6}));
}

TEST(KernelMathSelect, EntryScoreIsTheMethodsFormula) {
  const float t[4] = {0.5f, -2.0f, 1.0f, 3.0f};
  const double xsq[4] = {1.0, 4.0, 2.0, 0.5};
  const double lambda = 0.7;
  for (int k = 0; k < 4; ++k) {
    double norm = 0, shift = 0;
    for (int i = 0; i < 4; ++i) {
      if (i == k) continue;
      norm += double(t[i]) * t[i] * (xsq[k] - lambda * xsq[i]);
      shift += double(t[i]) * t[i];
    }
    EXPECT_EQ(cat_entry_score(t, xsq, 4, k, lambda), norm) << k;
    EXPECT_EQ(cat_entry_score(t, nullptr, 4, k, lambda), shift) << k;
  }
}

TEST(KernelMathSelect, TopCMasksWithTiesAndFewPositives) {
  // Shift scores for task 0 are T_1^2 = [4, 1, 4, 0, 4, 1]: the three 4s tie, lower indices first.
  const TaskVectors tasks = {{9, 9, 9, 9, 9, 9}, {2, 1, -2, 0, 2, -1}};
  const auto masks = cat_entry_masks(tasks, {}, 0.0, 4);
  EXPECT_EQ(masks[0], (std::vector<int64_t>{0, 2, 4, 1}));
  EXPECT_EQ(masks[1], (std::vector<int64_t>{0, 1, 2, 3}));       // T_0^2 = 81 everywhere: index order
  EXPECT_EQ(cat_entry_masks(tasks, {}, 0.0, 10)[0].size(), 5u);  // only 5 scores are > 0
  EXPECT_TRUE(cat_entry_masks(tasks, {}, 0.0, 0)[0].empty());
  TaskVectors applied = tasks;
  apply_entry_masks(masks, applied);
  EXPECT_EQ(applied[1], (std::vector<float>{0, 0, 0, 0, 0, -1}));  // task 0's mask zeroes T_1 ...
  EXPECT_EQ(applied[0], (std::vector<float>{0, 0, 0, 0, 9, 9}));   // ... and task 1's zeroes T_0
}

TEST(KernelMathSelect, ReleasedMasksTakeAnySignAndTheSortedPosition) {
  // Any sign: shift scores T_1^2 = [4, 1, 4, 0, 4, 1] for task 0 rank the same; task 1's are 81 everywhere.
  const TaskVectors tasks = {{9, 9, 9, 9, 9, 9}, {2, 1, -2, 0, 2, -1}};
  EXPECT_EQ(cat_entry_masks(tasks, {}, 0.0, 10, MaskPick::AnySign)[0], (std::vector<int64_t>{0, 2, 4, 1, 5, 3}));
  // Norm scores with lambda 2 and per-entry statistics x: task 0's g = T_1^2 (x_0 - 2 x_1) = [-4, -1, -4, 0, -4, -1]
  // with x_0 = 1, x_1 = 1: none is > 0, but the released pick takes the best 2 whatever the sign (0, then -1 at 1).
  const std::vector<double> x(6, 1.0);
  const std::vector<const double*> xsq = {x.data(), x.data()};
  EXPECT_TRUE(cat_entry_masks(tasks, xsq, 2.0, 2)[0].empty());
  EXPECT_EQ(cat_entry_masks(tasks, xsq, 2.0, 2, MaskPick::AnySign)[0], (std::vector<int64_t>{3, 1}));
  // The released shift masks score each task's own entries: (K - 1) T_k^2. Task 1: [4, 1, 4, 0, 4, 1], c = 1: the
  // value at 1-based position 5 of the sorted scores is 4, which three entries reach; task 0: all 81, every entry.
  const auto shift = released_shift_masks(tasks, 1);
  EXPECT_EQ(shift[0], (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(shift[1], (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(released_shift_masks(tasks, 6)[1].size(), 6u);  // d - c < 1: every entry
  EXPECT_EQ(released_shift_masks(tasks, 3)[1], (std::vector<int64_t>{0, 1, 2, 4, 5}));  // position 3: the 1s
}

TEST(KernelMathSelect, KeyHalvesRecombine) {
  for (const float f : {-3.5f, -0.0f, 0.0f, 1e-40f, 1.0f, 65504.0f, std::numeric_limits<float>::infinity()}) {
    const uint32_t key = order_key(f);
    EXPECT_EQ((key_top_bin(key) << 16) | key_low_bin(key), key);
    EXPECT_LT(key_top_bin(key), 65536u);
    EXPECT_LT(key_low_bin(key), 65536u);
  }
}

TEST(KernelMathSelect, TwoHistogramPassesSelectLikeNthElement) {
  // The GPU's two passes (histogram.cu): counts of the top halves, then of the low halves inside the bin
  // that holds the position; histogram_locate walks each.
  std::mt19937 rng(9);
  std::normal_distribution<float> n;
  std::vector<float> v(200000);
  for (float& x : v) x = n(rng);
  for (size_t i = 0; i < v.size(); i += 3) v[i] = 0.25f;  // a third of the values share one key
  std::vector<uint64_t> top(kSelectBins, 0);
  for (float x : v) ++top[key_top_bin(order_key(x))];
  for (const uint64_t position : {uint64_t{0}, uint64_t{1000}, uint64_t{66666}, uint64_t{100000}, v.size() - 1}) {
    uint32_t bin = 0, low_bin = 0;
    uint64_t rest = 0, unused = 0;
    histogram_locate(top.data(), position, &bin, &rest);
    std::vector<uint64_t> low(kSelectBins, 0);
    for (float x : v)
      if (key_top_bin(order_key(x)) == bin) ++low[key_low_bin(order_key(x))];
    histogram_locate(low.data(), rest, &low_bin, &unused);
    std::vector<float> sorted = v;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(position), sorted.end());
    EXPECT_EQ(order_key_value((bin << 16) | low_bin), sorted[position]) << position;
  }
}

TEST(KernelMathTaskVector, DeltaAndFiniteness) {
  EXPECT_EQ(task_delta(1.5f, 0.25f), 1.25f);
  EXPECT_TRUE(finite_value(std::numeric_limits<float>::max()));
  EXPECT_TRUE(finite_value(-0.0f));
  EXPECT_TRUE(finite_value(std::numeric_limits<float>::denorm_min()));
  EXPECT_FALSE(finite_value(std::numeric_limits<float>::infinity()));
  EXPECT_FALSE(finite_value(-std::numeric_limits<float>::infinity()));
  EXPECT_FALSE(finite_value(std::numeric_limits<float>::quiet_NaN()));
  EXPECT_FALSE(finite_value(task_delta(std::numeric_limits<float>::max(), -std::numeric_limits<float>::max())));
}

}  // namespace
}  // namespace cm
