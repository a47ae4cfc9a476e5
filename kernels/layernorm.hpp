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
// Each pass keeps four partial sums (of j mod 4), added in a fixed order at the end: one serial chain of
// double additions was the CPU forward's LayerNorm cost, each addition waiting on the one before.
CM_HD double sum4(double a, double b, double c, double d) { return (a + b) + (c + d); }

CM_HD void row_moments(const float* x, int64_t d, float eps, double* mean, double* rstd) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  int64_t j = 0;
  for (; j + 4 <= d; j += 4) {
    s0 += x[j];
    s1 += x[j + 1];
    s2 += x[j + 2];
    s3 += x[j + 3];
  }
  for (; j < d; ++j) s0 += x[j];
  const double m = sum4(s0, s1, s2, s3) / static_cast<double>(d);
  double q0 = 0.0, q1 = 0.0, q2 = 0.0, q3 = 0.0;
  for (j = 0; j + 4 <= d; j += 4) {
    const double c0 = x[j] - m, c1 = x[j + 1] - m, c2 = x[j + 2] - m, c3 = x[j + 3] - m;
    q0 += c0 * c0;
    q1 += c1 * c1;
    q2 += c2 * c2;
    q3 += c3 * c3;
  }
  for (; j < d; ++j) {
    const double c = x[j] - m;
    q0 += c * c;
  }
  *mean = m;
  *rstd = layer_norm_rstd(sum4(q0, q1, q2, q3), d, eps);
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
  if (!xhat) {  // the eval's case, a loop that vectorises
    for (int64_t j = 0; j < d; ++j) y[j] = layer_norm_value(x[j], mean, rstd, g[j], b[j], nullptr);
    return;
  }
  for (int64_t j = 0; j < d; ++j) y[j] = layer_norm_value(x[j], mean, rstd, g[j], b[j], xhat + j);
}

}  // namespace cm
