#pragma once
// Softmax. softmax_row is the two-pass form the CPU backend uses on a materialised score row. The online
// form (Milakov & Gimelshein 2018) folds scores in tiles into a running maximum m and sum l, rescaling what
// was accumulated whenever m grows, so attention never holds a [seq, seq] score matrix: the CUDA flash
// kernel (attention.cu) runs attention_row_online's steps with one key per lane of a warp.
#include <math.h>
#include <stdint.h>

#include "host_device.hpp"

namespace cm {

// In place on one row; the row maximum is subtracted first so exp never overflows.
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

// Keys per tile of the online form; one warp of the CUDA kernel holds one tile.
constexpr int kAttentionTile = 32;

struct OnlineSoftmax {
  float m;  // largest score folded in so far (-inf before the first)
  float l;  // sum of exp(score - m) so far
};

CM_HD OnlineSoftmax online_softmax_start() { return OnlineSoftmax{-INFINITY, 0.0f}; }

// Moves the running maximum to cover a tile whose largest score is tile_max; returns the factor by which
// the sum and every output accumulated so far must be multiplied (0 before the first tile).
CM_HD float online_softmax_rescale(OnlineSoftmax* s, float tile_max) {
  const float m = fmaxf(s->m, tile_max);
  const float r = s->m == m ? 1.0f : expf(s->m - m);
  s->m = m;
  s->l *= r;
  return r;
}

// Unnormalised weight of one score under the current maximum.
CM_HD float online_softmax_weight(const OnlineSoftmax& s, float score) { return expf(score - s.m); }

// out[0..hd) = softmax(scale * q k^T) v for one query row, keys and values rows j = 0..seq-1 at k + j*ld and
// v + j*ld, folded kAttentionTile keys at a time with the online softmax.
CM_HD void attention_row_online(const float* q, const float* k, const float* v, int64_t ld, int64_t seq,
                                int64_t hd, float scale, float* out) {
  OnlineSoftmax st = online_softmax_start();
  for (int64_t d = 0; d < hd; ++d) out[d] = 0.0f;
  float score[kAttentionTile];
  for (int64_t t0 = 0; t0 < seq; t0 += kAttentionTile) {
    const int64_t n = seq - t0 < kAttentionTile ? seq - t0 : kAttentionTile;
    float tile_max = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      const float* kj = k + (t0 + j) * ld;
      float dot = 0.0f;
      for (int64_t d = 0; d < hd; ++d) dot += q[d] * kj[d];
      score[j] = scale * dot;
      tile_max = fmaxf(tile_max, score[j]);
    }
    const float r = online_softmax_rescale(&st, tile_max);
    for (int64_t d = 0; d < hd; ++d) out[d] *= r;
    float tile_sum = 0.0f;
    for (int64_t j = 0; j < n; ++j) {
      const float p = online_softmax_weight(st, score[j]);
      tile_sum += p;
      const float* vj = v + (t0 + j) * ld;
      for (int64_t d = 0; d < hd; ++d) out[d] += p * vj[d];
    }
    st.l += tile_sum;
  }
  const float inv = 1.0f / st.l;
  for (int64_t d = 0; d < hd; ++d) out[d] *= inv;
}

}  // namespace cm
