#pragma once
// In-place softmax of one row; the row maximum is subtracted first so exp never overflows.
#include <math.h>
#include <stdint.h>

#include "host_device.hpp"

namespace cm {

CM_HD void softmax_row(float* x, int64_t n) {
  float m = x[0];
  for (int64_t j = 1; j < n; ++j) m = fmaxf(m, x[j]);
  float s = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    x[j] = expf(x[j] - m);
    s += x[j];
  }
  const float inv = 1.0f / s;
  for (int64_t j = 0; j < n; ++j) x[j] *= inv;
}

}  // namespace cm
