// exp_poly (kernels/exp_poly.hpp), the CPU forward's exponential, against the exact e^t in double, and the
// softmax and quick_gelu built on it against their definitions.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "activations.hpp"
#include "softmax.hpp"

namespace cm {
namespace {

// Distance in units in the last place of float32 at the exact value.
double ulps(float got, double exact) {
  const float e = static_cast<float>(exact);
  return std::fabs(static_cast<double>(got) - exact) /
         static_cast<double>(std::nextafter(e, std::numeric_limits<float>::infinity()) - e);
}

TEST(KernelMathExp, WithinTwoUlpsOfTheExactExponential) {
  double worst = 0;
  for (float t = -87.0f; t <= 88.0f; t += 0.000731f) worst = std::max(worst, ulps(exp_poly(t), std::exp(double{t})));
  EXPECT_LE(worst, 2.0);
  EXPECT_EQ(exp_poly(0.0f), 1.0f);
  // Beyond the clamp e^t is the smallest normal's neighbourhood or ~e^88, never Inf, NaN or a subnormal.
  EXPECT_GT(exp_poly(-1000.0f), 0.0f);
  EXPECT_TRUE(std::isnormal(exp_poly(-1000.0f)));
  EXPECT_TRUE(std::isfinite(exp_poly(1000.0f)));
}

TEST(KernelMathExp, SoftmaxAndQuickGeluFollowTheirDefinitions) {
  std::vector<float> row = {0.5f, -1.25f, 3.0f, -std::numeric_limits<float>::infinity(), 2.0f};
  const std::vector<float> x = row;
  softmax_row(row.data(), static_cast<int64_t>(row.size()));
  double z = 0;
  for (float v : x) z += std::exp(double{v} - 3.0);
  for (size_t j = 0; j < x.size(); ++j) EXPECT_NEAR(row[j], std::exp(double{x[j]} - 3.0) / z, 2e-7) << j;
  EXPECT_EQ(row[3], 0.0f);  // a masked key weighs exactly 0
  for (float v : {-20.0f, -3.5f, -0.1f, 0.0f, 0.7f, 4.0f, 60.0f}) {
    const double want = v / (1.0 + std::exp(-1.702 * v));
    EXPECT_NEAR(quick_gelu(v), want, 4e-7 * std::max(1.0, std::fabs(want))) << v;
  }
}

}  // namespace
}  // namespace cm
