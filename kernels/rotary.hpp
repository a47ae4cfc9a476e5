#pragma once
// Rotary position embedding (RoFormer) in HF LLaMA's rotate_half layout: within a head of d dimensions,
// dimension i < d/2 pairs with i + d/2 and the pair turns by the angle pos * inv_freq[i]. inv_freq comes from
// the model's rope settings (arch/llama.hpp: rope_inv_freq, base theta and rope_scaling), computed once on
// the host so host and device turn by the same floats; the angle, its cos and sin are float32, as
// transformers computes them (freqs = inv_freq @ position_ids in float32, then cos and sin).
#include <math.h>
#include <stdint.h>

#include "host_device.hpp"

namespace cm {

CM_HD float rope_angle(int64_t pos, float inv_freq) { return static_cast<float>(pos) * inv_freq; }

// (x0, x1) = (x[i], x[i + d/2]) -> (x0 cos - x1 sin, x1 cos + x0 sin).
CM_HD void rope_pair(float* x0, float* x1, float c, float s) {
  const float a = *x0, b = *x1;
  *x0 = a * c - b * s;
  *x1 = b * c + a * s;
}

// One head of d (even) dimensions at position pos, in place; inv_freq has d/2 entries.
CM_HD void rope_head(float* x, int64_t d, int64_t pos, const float* inv_freq) {
  const int64_t half = d / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float a = rope_angle(pos, inv_freq[i]);
    rope_pair(x + i, x + i + half, cosf(a), sinf(a));
  }
}

}  // namespace cm
