#pragma once
// A float32 exponential without a library call, for the CPU forward's element loops (quick_gelu, softmax):
// glibc's expf is one call per element, which no loop can vectorise, and it was a tenth of the CPU eval.
#include <stdint.h>
#include <string.h>

#include "host_device.hpp"

namespace cm {

// e^t in float32 to within about 2 ulp. Cody-Waite reduction t = n ln2 + r,
// |r| <= ln2 / 2, a degree-7 Taylor polynomial for e^r (truncation under 1e-8 relative), and 2^n from its
// exponent bits. t is clamped to [-87, 88], where e^t stays a normal float: beyond, a sigmoid of it is 1 or
// within 1e-38 of 0 either way.
CM_HD float exp_poly(float t) {
  t = t < -87.0f ? -87.0f : (t > 88.0f ? 88.0f : t);
  const float n = (t * 1.44269504f + 12582912.0f) - 12582912.0f;  // round to nearest: 1.5 * 2^23
  const float r = (t - n * 0.693145752f) - n * 1.42860677e-6f;    // ln2 in two parts
  const float p =
      1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

}  // namespace cm
