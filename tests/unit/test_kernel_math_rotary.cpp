// The rotary embedding's CPU twin: the float32 angles of transformers, rotations that keep norms, and scores
// that depend only on the distance between positions.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "rotary.hpp"

namespace cm {
namespace {

TEST(KernelMathRotary, AnglesAreTransformersFloat32) {
  const int64_t d = 128;
  for (int64_t i = 0; i < d / 2; ++i) {
    // transformers: inv_freq = 1.0 / (base ** (arange(0, d, 2).float() / d)), freqs = t * inv_freq (float32).
    const float inv = 1.0f / std::pow(10000.0f, static_cast<float>(2 * i) / static_cast<float>(d));
    for (const int64_t pos : {0, 1, 7, 4095}) {
      const float want = static_cast<float>(pos) * inv;
      EXPECT_NEAR(rope_angle(pos, i, d, 10000.0f), want, 2.5e-7f * std::fabs(want)) << i << " " << pos;
    }
  }
}

TEST(KernelMathRotary, MatchesDoubleRotationAndKeepsNorms) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n;
  const int64_t d = 64;
  for (const int64_t pos : {0, 3, 100, 2048}) {
    std::vector<float> x(d);
    for (float& v : x) v = n(rng);
    std::vector<float> y = x;
    rope_head(y.data(), d, pos, 10000.0f);
    for (int64_t i = 0; i < d / 2; ++i) {
      const double a = rope_angle(pos, i, d, 10000.0f);
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
  const auto score = [&](int64_t m, int64_t p) {
    std::vector<float> a = q, b = k;
    rope_head(a.data(), d, m, 10000.0f);
    rope_head(b.data(), d, p, 10000.0f);
    double s = 0;
    for (int64_t i = 0; i < d; ++i) s += static_cast<double>(a[i]) * b[i];
    return s;
  };
  EXPECT_NEAR(score(5, 2), score(105, 102), 2e-3);
  EXPECT_NEAR(score(40, 47), score(0, 7), 2e-3);
}

}  // namespace
}  // namespace cm
