#pragma once
// RMSNorm (LLaMA): xhat = x / sqrt(mean(x^2) + eps), y = xhat * g, no bias and no centring. The mean of
// squares is taken in double, as LayerNorm's moments are. The CUDA kernel (norms.cu) reduces the sum of
// squares in parallel and then calls the same rms_rstd and rms_norm_value.
#include <math.h>
#include <stdint.h>

#include "host_device.hpp"

namespace cm {

// 1 / sqrt(mean(x^2) + eps) from the sum of squares over d values.
CM_HD double rms_rstd(double sumsq, int64_t d, float eps) {
  return 1.0 / sqrt(sumsq / static_cast<double>(d) + static_cast<double>(eps));
}

// One element: xhat = x * rstd (stored to *xhat unless it is nullptr); returns xhat * g.
CM_HD float rms_norm_value(float x, double rstd, float g, float* xhat) {
  const float xh = static_cast<float>(x * rstd);
  if (xhat) *xhat = xh;
  return xh * g;
}

// One row of d values; y may alias x, xhat may be nullptr.
CM_HD void rms_norm_row(const float* x, const float* g, float eps, float* y, float* xhat, int64_t d) {
  double ss = 0.0;
  for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(x[j]) * x[j];
  const double rstd = rms_rstd(ss, d, eps);
  for (int64_t j = 0; j < d; ++j) y[j] = rms_norm_value(x[j], rstd, g[j], xhat ? xhat + j : nullptr);
}

}  // namespace cm
