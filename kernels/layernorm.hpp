#pragma once
// One row of LayerNorm. The moments are taken in double (two passes) so that rows with a large mean,
// such as residual streams late in a deep model, keep full float32 accuracy in xhat.
#include <math.h>
#include <stdint.h>

#include "host_device.hpp"

namespace cm {

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
  *rstd = 1.0 / sqrt(ss / static_cast<double>(d) + static_cast<double>(eps));
}

// xhat = (x - mean) * rstd; y = xhat * g + b. y may alias x (each element is read before it is written);
// xhat may be nullptr.
CM_HD void layer_norm_row(const float* x, const float* g, const float* b, double mean, double rstd, float* y,
                          float* xhat, int64_t d) {
  for (int64_t j = 0; j < d; ++j) {
    const float xh = static_cast<float>((x[j] - mean) * rstd);
    if (xhat) xhat[j] = xh;
    y[j] = xh * g[j] + b[j];
  }
}

}  // namespace cm
