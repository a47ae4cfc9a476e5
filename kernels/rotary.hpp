#pragma once
// Rotary position embedding (RoFormer) in HF LLaMA's rotate_half layout: within a head of d dimensions,
// dimension i < d/2 pairs with i + d/2 and the pair turns by the angle pos * base^(-2i/d). Angles, cos and
// sin are float32, as transformers computes them (freqs = pos * inv_freq); inv_freq = 1 / base^(2i/d) is
// rounded from double, so host and device get the same float (their powf may differ in the last bits, which
// a position in the thousands would magnify) and it is the correctly rounded value torch's powf approximates.
#include <math.h>
#include <stdint.h>

#include "host_device.hpp"

namespace cm {

CM_HD float rope_angle(int64_t pos, int64_t i, int64_t d, float base) {
  const float exponent = static_cast<float>(2 * i) / static_cast<float>(d);  // float32, as torch's arange / dim
  const float inv_freq = static_cast<float>(1.0 / pow(static_cast<double>(base), static_cast<double>(exponent)));
  return static_cast<float>(pos) * inv_freq;
}

// (x0, x1) = (x[i], x[i + d/2]) -> (x0 cos - x1 sin, x1 cos + x0 sin).
CM_HD void rope_pair(float* x0, float* x1, float c, float s) {
  const float a = *x0, b = *x1;
  *x0 = a * c - b * s;
  *x1 = b * c + a * s;
}

// One head of d (even) dimensions at position pos, in place.
CM_HD void rope_head(float* x, int64_t d, int64_t pos, float base) {
  const int64_t half = d / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float a = rope_angle(pos, i, d, base);
    rope_pair(x + i, x + i + half, cosf(a), sinf(a));
  }
}

}  // namespace cm
