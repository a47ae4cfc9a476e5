// The rotary embedding's CPU twin: float32 angles pos * inv_freq[i] as transformers computes them, pair i
// turned by table entry i, rotations that keep norms, and scores that depend only on the distance between
// positions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "rotary.hpp"

namespace cm {
namespace {

// The unscaled table inv_freq[i] = 1 / base^(2i/d), in double and rounded once.
std::vector<float> table(double base, int64_t d) {
  std::vector<float> f(d / 2);
  for (int64_t i = 0; i < d / 2; ++i)
    f[i] = static_cast<float>(1.0 / std::pow(base, static_cast<double>(2 * i) / static_cast<double>(d)));
  return f;
}

TEST(KernelMathRotary, AnglesAreFloat32ProductsOfTheTable) {
  const int64_t d = 128;
  for (const double base : {10000.0, 500000.0}) {
    const auto inv = table(base, d);
    for (int64_t i = 0; i < d / 2; ++i)
      for (const int64_t pos : {0, 1, 7, 4095, 131071}) {
        // transformers: freqs = inv_freq @ position_ids in float32, one rounding of the exact product.
        const float a = rope_angle(pos, inv[i]);
        const float want = static_cast<float>(pos) * inv[i];
        EXPECT_EQ(std::memcmp(&a, &want, sizeof a), 0) << base << " " << i << " " << pos;
        const double exact = static_cast<double>(pos) * inv[i];
        EXPECT_LE(std::fabs(a - exact), 0.5 * 1.1920929e-7 * std::fabs(exact)) << base << " " << i << " " << pos;
      }
  }
}

TEST(KernelMathRotary, PairIUsesTableEntryI) {
  // A table that turns only pair 5 leaves every other pair as it was.
  const int64_t d = 16;
  std::vector<float> inv(d / 2, 0.0f);
  inv[5] = 0.25f;
  std::vector<float> x(d);
  for (int64_t j = 0; j < d; ++j) x[j] = static_cast<float>(j + 1);
  std::vector<float> y = x;
  rope_head(y.data(), d, 3, inv.data());
  for (int64_t i = 0; i < d / 2; ++i) {
    if (i == 5) continue;
    EXPECT_EQ(y[i], x[i]) << i;
    EXPECT_EQ(y[i + d / 2], x[i + d / 2]) << i;
  }
  EXPECT_NEAR(y[5], x[5] * std::cos(0.75) - x[13] * std::sin(0.75), 1e-5);
  EXPECT_NEAR(y[13], x[13] * std::cos(0.75) + x[5] * std::sin(0.75), 1e-5);
}

TEST(KernelMathRotary, MatchesDoubleRotationAndKeepsNorms) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n;
  const int64_t d = 64;
  const auto inv = table(10000.0, d);
  for (const int64_t pos : {0, 3, 100, 2048}) {
    std::vector<float> x(d);
    for (float& v : x) v = n(rng);
    std::vector<float> y = x;
    rope_head(y.data(), d, pos, inv.data());
    for (int64_t i = 0; i < d / 2; ++i) {
      const double a = rope_angle(pos, inv[i]);
      const double x0 = x[i], x1 = x[i + d / 2];
      EXPECT_NEAR(y[i], x0 * std::cos(a) - x1 * std::sin(a), 1e-5) << pos << " " << i;
      EXPECT_NEAR(y[i + d / 2], x1 * std::cos(a) + x0 * std::sin(a), 1e-5) << pos << " " << i;
      EXPECT_NEAR(std::hypot(y[i], y[i + d / 2]), std::hypot(x0, x1), 1e-5);
    }
    if (pos == 0) {
      EXPECT_EQ(y, x);
    }
  }
}

TEST(KernelMathRotary, ScoresDependOnRelativePosition) {
  std::mt19937 rng(4);
  std::normal_distribution<float> n;
  const int64_t d = 128;
  std::vector<float> q(d), k(d);
  for (float& v : q) v = n(rng);
  for (float& v : k) v = n(rng);
  for (const double base : {10000.0, 500000.0}) {
    const auto inv = table(base, d);
    const auto score = [&](int64_t m, int64_t p) {
      std::vector<float> a = q, b = k;
      rope_head(a.data(), d, m, inv.data());
      rope_head(b.data(), d, p, inv.data());
      double s = 0;
      for (int64_t i = 0; i < d; ++i) s += static_cast<double>(a[i]) * b[i];
      return s;
    };
    EXPECT_NEAR(score(5, 2), score(105, 102), 2e-3) << base;
    EXPECT_NEAR(score(40, 47), score(0, 7), 2e-3) << base;
  }
}

}  // namespace
}  // namespace cm
