#pragma once
// Softmax. softmax_row is the two-pass form the CPU backend uses on a materialised score row (its exp:
// exp_poly.hpp). The online
// form (Milakov & Gimelshein 2018) folds scores in tiles into a running maximum m and sum l, rescaling what
// was accumulated whenever m grows, so attention never holds a [seq, seq] score matrix: the CUDA flash
// kernel (attention.cu) runs attention_row_online's steps with one key per lane of a warp. Masked keys
// (attention_mask.hpp) score -inf.
#include <math.h>
#include <stdint.h>

#include "attention_mask.hpp"
#include "exp_poly.hpp"
#include "host_device.hpp"

namespace cm {

// In place on one row; the row maximum is subtracted first so exp never overflows.
CM_HD void softmax_row(float* x, int64_t n) {
  float m = x[0];
  for (int64_t j = 1; j < n; ++j) m = x[j] > m ? x[j] : m;  // fmaxf without its NaN rule: a call on the CPU
  // The exponentials and their sum are separate loops: the ordered sum would keep the exponentials from
  // running in vector lanes, and the sum's order is the same either way.
  for (int64_t j = 0; j < n; ++j) x[j] = x[j] == -INFINITY ? 0.0f : exp_poly(x[j] - m);  // masked: exactly 0
  float s = 0.0f;
  for (int64_t j = 0; j < n; ++j) s += x[j];
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
// the sum and every output accumulated so far must be multiplied: 0 at the first tile with a visible key
// (nothing was accumulated), 1 while the maximum stays put, also at -inf when every key so far was masked.
CM_HD float online_softmax_rescale(OnlineSoftmax* s, float tile_max) {
  const float m = fmaxf(s->m, tile_max);
  const float r = s->m == m ? 1.0f : expf(s->m - m);
  s->m = m;
  s->l *= r;
  return r;
}

// Unnormalised weight of one score under the current maximum; a masked key (score -inf) weighs 0, also
// while the maximum is still -inf, where exp(-inf - -inf) would be NaN.
CM_HD float online_softmax_weight(const OnlineSoftmax& s, float score) {
  return score == -INFINITY ? 0.0f : expf(score - s.m);
}

// The score scale 1/sqrt(head_dim), rounded from double as the CPU backend's SGEMM alpha is.
CM_HD float attention_scale(int64_t head_dim) { return static_cast<float>(1.0 / sqrt(static_cast<double>(head_dim))); }

// Keys [*begin, *end) that queries first..last of one sequence may see under the mask's causal and window
// bounds, begin rounded down to a tile edge so that the tiles stay those starting at keys 0, 32, 64, ...
// Every tile outside is masked for all of those queries, and folding one would change nothing (it rescales
// by 1 and adds zero weights times finite values), so it is skipped: causal attention reads half the keys.
CM_HD void attention_key_range(const AttentionMask& m, int64_t seq, int64_t first, int64_t last, int64_t* begin,
                               int64_t* end) {
  *end = m.causal && last + 1 < seq ? last + 1 : seq;
  const int64_t lo = m.window > 0 && first - m.window + 1 > 0 ? first - m.window + 1 : 0;
  *begin = lo / kAttentionTile * kAttentionTile;
}

// out[0..head_dim) = softmax(scale q k^T) v for query i of sequence b and query head h, over the keys that
// attends() lets it see (the others score -inf), folded kAttentionTile keys at a time with the online
// softmax. q, k, v are the whole tensors of AttentionShape. A query that sees no key gets zeros: its sum
// stays 0 and every weight 0.
CM_HD void attention_row_online(const float* q, const float* k, const float* v, const AttentionShape& s,
                                const AttentionMask& mask, int64_t b, int64_t h, int64_t i, float* out) {
  const int64_t hd = s.head_dim, ld = s.heads * hd, kv_ld = s.kv_heads * hd;
  const float* qi = q + (b * s.seq + i) * ld + h * hd;
  const int64_t kv = b * s.seq * kv_ld + attention_kv_head(s, h) * hd;  // key j: k + kv + j * kv_ld
  const float scale = attention_scale(hd);
  int64_t begin = 0, end = 0;
  attention_key_range(mask, s.seq, i, i, &begin, &end);
  OnlineSoftmax st = online_softmax_start();
  for (int64_t d = 0; d < hd; ++d) out[d] = 0.0f;
  float score[kAttentionTile];
  for (int64_t t0 = begin; t0 < end; t0 += kAttentionTile) {
    const int64_t n = end - t0 < kAttentionTile ? end - t0 : kAttentionTile;
    float tile_max = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      score[j] = -INFINITY;
      if (attends(mask, b, s.seq, i, t0 + j)) {
        const float* kj = k + kv + (t0 + j) * kv_ld;
        float dot = 0.0f;
        for (int64_t d = 0; d < hd; ++d) dot += qi[d] * kj[d];
        score[j] = scale * dot;
      }
      tile_max = fmaxf(tile_max, score[j]);
    }
    const float r = online_softmax_rescale(&st, tile_max);
    for (int64_t d = 0; d < hd; ++d) out[d] *= r;
    float tile_sum = 0.0f;
    for (int64_t j = 0; j < n; ++j) {
      const float p = online_softmax_weight(st, score[j]);
      tile_sum += p;
      const float* vj = v + kv + (t0 + j) * kv_ld;
      for (int64_t d = 0; d < hd; ++d) out[d] += p * vj[d];
    }
    st.l += tile_sum;
  }
  const float inv = st.l > 0.0f ? 1.0f / st.l : 0.0f;
  for (int64_t d = 0; d < hd; ++d) out[d] *= inv;
}

}  // namespace cm
