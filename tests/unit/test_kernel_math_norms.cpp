// CPU twins of the norm and activation kernels: RMSNorm and SiLU gating against double-precision formulas,
// LayerNorm's per-element step against its row form.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "activations.hpp"
#include "layernorm.hpp"
#include "rmsnorm.hpp"

namespace cm {
namespace {

std::vector<float> uniform(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

TEST(KernelMathNorms, RmsNormMatchesDoubleFormula) {
  const int64_t d = 4096;
  const auto x = uniform(d, 1, -4.0f, 4.0f), g = uniform(d, 2, 0.5f, 1.5f);
  std::vector<float> y(d), xhat(d), inplace = x;
  rms_norm_row(x.data(), g.data(), 1e-6f, y.data(), xhat.data(), d);
  rms_norm_row(inplace.data(), g.data(), 1e-6f, inplace.data(), nullptr, d);
  double ms = 0;
  for (float v : x) ms += static_cast<double>(v) * v;
  const double rstd = 1.0 / std::sqrt(ms / d + 1e-6);
  for (int64_t j = 0; j < d; ++j) {
    EXPECT_NEAR(xhat[j], x[j] * rstd, 1e-6 * std::fabs(x[j] * rstd) + 1e-7);
    EXPECT_NEAR(y[j], x[j] * rstd * g[j], 2e-6 * std::fabs(x[j] * rstd * g[j]) + 1e-7);
    EXPECT_EQ(inplace[j], y[j]);
  }
}

TEST(KernelMathNorms, RmsNormOfZerosIsZero) {
  const std::vector<float> x(8, 0.0f), g(8, 3.0f);
  std::vector<float> y(8, 1.0f);
  rms_norm_row(x.data(), g.data(), 1e-5f, y.data(), nullptr, 8);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(KernelMathNorms, LayerNormElementIsTheRowStep) {
  const int64_t d = 77;
  const auto x = uniform(d, 3, 10.0f, 12.0f), g = uniform(d, 4, -1.0f, 1.0f), b = uniform(d, 5, -1.0f, 1.0f);
  double mean = 0, rstd = 0;
  row_moments(x.data(), d, 1e-5f, &mean, &rstd);
  double ss = 0;
  for (float v : x) ss += (v - mean) * (v - mean);
  EXPECT_EQ(rstd, layer_norm_rstd(ss, d, 1e-5f));
  std::vector<float> y(d), xhat(d);
  layer_norm_row(x.data(), g.data(), b.data(), mean, rstd, y.data(), xhat.data(), d);
  for (int64_t j = 0; j < d; ++j) {
    float xh = 0;
    EXPECT_EQ(layer_norm_value(x[j], mean, rstd, g[j], b[j], &xh), y[j]);
    EXPECT_EQ(xh, xhat[j]);
  }
}

TEST(KernelMathActivations, SiluGateMatchesDoubleFormula) {
  for (int i = -2000; i <= 2000; ++i) {
    const float gate = static_cast<float>(i) * 0.01f, up = 0.5f - static_cast<float>(i) * 0.003f;
    const double s = gate / (1.0 + std::exp(-static_cast<double>(gate)));
    EXPECT_NEAR(silu(gate), s, 1e-6 * (1 + std::fabs(s))) << gate;
    EXPECT_NEAR(silu_gate(gate, up), s * up, 2e-6 * (1 + std::fabs(s * up))) << gate;
  }
  EXPECT_EQ(silu(0.0f), 0.0f);
  EXPECT_NEAR(silu(-100.0f), 0.0f, 1e-38f);  // exp(100) is still finite in float
}

}  // namespace
}  // namespace cm
