#pragma once
// LayerNorm. The moments are taken in double (two passes) so that rows with a large mean, such as residual
// streams late in a deep model, keep full float32 accuracy in xhat. The CPU runs row_moments and
// layer_norm_row; the CUDA kernel (norms.cu) reduces each pass in parallel and then calls the same
// layer_norm_rstd and layer_norm_value.
#include <math.h>
#include <stdint.h>

#include "host_device.hpp"

namespace cm {

// 1 / sqrt(biased variance + eps) from the sum of squared deviations ss over d values.
CM_HD double layer_norm_rstd(double ss, int64_t d, float eps) {
  return 1.0 / sqrt(ss / static_cast<double>(d) + static_cast<double>(eps));
}

// Mean and 1 / sqrt(biased variance + eps) of x[0..d-1].
CM_HD void row_moments(const float* x, int64_t d, float eps, double* mean, double* rstd) {
  double s = 0.0;
  for (int64_t j = 0; j < d; ++j) s += x[j];
  const double m = s / static_cast<double>(d);
  double ss = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    const double c = x[j] - m;
    ss += c * c;
  }
  *mean = m;
  *rstd = layer_norm_rstd(ss, d, eps);
}

// One element: xhat = (x - mean) * rstd (stored to *xhat unless it is nullptr); returns xhat * g + b.
CM_HD float layer_norm_value(float x, double mean, double rstd, float g, float b, float* xhat) {
  const float xh = static_cast<float>((x - mean) * rstd);
  if (xhat) *xhat = xh;
  return xh * g + b;
}

// xhat = (x - mean) * rstd; y = xhat * g + b. y may alias x (each element is read before it is written);
// xhat may be nullptr.
CM_HD void layer_norm_row(const float* x, const float* g, const float* b, double mean, double rstd, float* y,
                          float* xhat, int64_t d) {
  for (int64_t j = 0; j < d; ++j) y[j] = layer_norm_value(x[j], mean, rstd, g[j], b[j], xhat ? xhat + j : nullptr);
}

}  // namespace cm
