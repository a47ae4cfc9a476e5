// The online softmax of the flash attention kernel (its CPU twin attention_row_online) against the two-pass
// softmax over a materialised score row, and with grouped heads and masks against a direct double-precision
// masked softmax and the CPU backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "attention_mask.hpp"
#include "attention_testing.hpp"
#include "backend/backend.hpp"
#include "softmax.hpp"

namespace cm {
namespace {

using testing::AttentionCase;
using testing::case_name;
using testing::eighths;
using testing::key_mask;

// out = softmax(scale * q K^T) V for one row, two-pass in float (the CPU backend's way) and in double.
void two_pass(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v, int64_t seq,
              int64_t hd, float scale, std::vector<float>* out_float, std::vector<double>* out_double) {
  std::vector<float> s(seq);
  for (int64_t j = 0; j < seq; ++j) {
    float dot = 0;
    for (int64_t d = 0; d < hd; ++d) dot += q[d] * k[j * hd + d];
    s[j] = scale * dot;
  }
  std::vector<double> e(seq);
  double m = -INFINITY, sum = 0;
  for (float x : s) m = std::max(m, static_cast<double>(x));
  for (int64_t j = 0; j < seq; ++j) sum += (e[j] = std::exp(s[j] - m));
  softmax_row(s.data(), seq);
  out_float->assign(hd, 0.0f);
  out_double->assign(hd, 0.0);
  for (int64_t j = 0; j < seq; ++j)
    for (int64_t d = 0; d < hd; ++d) {
      (*out_float)[d] += s[j] * v[j * hd + d];
      (*out_double)[d] += e[j] / sum * v[j * hd + d];
    }
}

TEST(KernelMathAttention, OnlineSoftmaxMatchesTwoPass) {
  std::mt19937 rng(7);
  // Tile edges (31, 32, 33 keys), one key, ViT-L's 257 and 577 tokens; scores up to +-100 so the running
  // maximum moves between tiles and exp would overflow without it.
  for (const int64_t seq : {1, 31, 32, 33, 257, 577}) {
    for (const float spread : {0.5f, 10.0f}) {
      const int64_t hd = 64;
      std::uniform_real_distribution<float> u(-spread, spread), uv(-1.0f, 1.0f);
      std::vector<float> q(hd), k(seq * hd), v(seq * hd), out(hd);
      for (float& x : q) x = u(rng);
      for (float& x : k) x = u(rng);
      for (float& x : v) x = uv(rng);
      const float scale = attention_scale(hd);
      EXPECT_EQ(scale, 0.125f);
      attention_row_online(q.data(), k.data(), v.data(), AttentionShape{1, seq, 1, 1, hd}, AttentionMask{}, 0, 0, 0,
                           out.data());
      std::vector<float> want;
      std::vector<double> exact;
      two_pass(q, k, v, seq, hd, scale, &want, &exact);
      for (int64_t d = 0; d < hd; ++d) {
        EXPECT_NEAR(out[d], exact[d], 1e-6) << "seq " << seq << " spread " << spread << " d " << d;
        EXPECT_NEAR(out[d], want[d], 1e-6) << "seq " << seq << " spread " << spread << " d " << d;
      }
    }
  }
}

TEST(KernelMathAttention, RescaleFoldsTilesExactly) {
  // Folding [1, 2] then [5] equals the softmax sums of [1, 2, 5] under the final maximum.
  OnlineSoftmax st = online_softmax_start();
  EXPECT_EQ(online_softmax_rescale(&st, 2.0f), 0.0f);  // nothing accumulated yet
  st.l += online_softmax_weight(st, 1.0f) + online_softmax_weight(st, 2.0f);
  const float r = online_softmax_rescale(&st, 5.0f);
  EXPECT_FLOAT_EQ(r, std::exp(-3.0f));
  st.l += online_softmax_weight(st, 5.0f);
  EXPECT_EQ(st.m, 5.0f);
  EXPECT_NEAR(st.l, std::exp(-4.0) + std::exp(-3.0) + 1.0, 1e-6);
  EXPECT_EQ(online_softmax_rescale(&st, 4.0f), 1.0f);       // a smaller tile maximum changes nothing
  EXPECT_EQ(online_softmax_rescale(&st, -INFINITY), 1.0f);  // nor does a fully masked tile
  EXPECT_EQ(online_softmax_weight(st, -INFINITY), 0.0f);
}

TEST(KernelMathAttention, FullyMaskedTilesBeforeAnyKeyAreNotNaN) {
  // Tiles of masked keys before the first visible one keep the maximum at -inf: the factor is 1, every
  // weight 0 (exp(-inf - -inf) would be NaN), and the sum stays 0.
  OnlineSoftmax st = online_softmax_start();
  for (int t = 0; t < 3; ++t) {
    EXPECT_EQ(online_softmax_rescale(&st, -INFINITY), 1.0f);
    EXPECT_EQ(online_softmax_weight(st, -INFINITY), 0.0f);
    EXPECT_EQ(st.l, 0.0f);
  }
  EXPECT_EQ(online_softmax_rescale(&st, 3.0f), 0.0f);
  EXPECT_EQ(online_softmax_weight(st, 3.0f), 1.0f);
}

const std::vector<AttentionCase>& mask_cases() {
  static const std::vector<AttentionCase> cases = {
      {{1, 64, 4, 4, 16}, false, 0, {}},           // no mask: every key
      {{2, 100, 8, 2, 64}, true, 0, {}},           // grouped heads, causal
      {{1, 130, 4, 1, 32}, true, 40, {}},          // one key/value head, sliding window
      {{1, 50, 2, 1, 8}, false, 10, {}},           // a window alone also admits later keys
      {{3, 70, 4, 2, 16}, true, 0, {0, 5, 40}},    // left padding: first rows see nothing
      {{3, 45, 2, 2, 8}, false, 0, {-10, 45, 0}},  // right padding, and a sequence of padding only
      {{2, 150, 8, 4, 128}, true, 64, {33, -7}},   // everything at once, head_dim 128
  };
  return cases;
}

TEST(KernelMathAttention, MaskedGroupedRowsMatchDoubleSoftmaxAndCpuBackend) {
  const auto cpu = make_backend("cpu", 2, "test");
  for (const AttentionCase& c : mask_cases()) {
    SCOPED_TRACE(case_name(c));
    const AttentionShape& s = c.s;
    const int64_t hd = s.head_dim, ld = s.heads * hd, kv_ld = s.kv_heads * hd, group = s.heads / s.kv_heads;
    const auto q = eighths(static_cast<size_t>(s.batch * s.seq * ld), 1);
    const auto k = eighths(static_cast<size_t>(s.batch * s.seq * kv_ld), 2);
    const auto v = eighths(static_cast<size_t>(s.batch * s.seq * kv_ld), 3);
    const std::vector<uint8_t> keys = c.pad.empty() ? std::vector<uint8_t>{} : key_mask(c);
    const AttentionMask mask{c.causal, c.window, keys.empty() ? nullptr : keys.data()};
    std::vector<float> backend(q.size(), 7.0f), twin(static_cast<size_t>(hd));
    cpu->attention(q.data(), k.data(), v.data(), backend.data(), s, mask);
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t h = 0; h < s.heads; ++h)
        for (int64_t i = 0; i < s.seq; ++i) {
          // The definition: keys j the query may see (causal j <= i, window i - j < w, not padding), query
          // head h on key/value head h / group, softmax in double; no key, zeros.
          const float* qi = q.data() + (b * s.seq + i) * ld + h * hd;
          std::vector<double> score(static_cast<size_t>(s.seq), -INFINITY);
          double top = -INFINITY;
          for (int64_t j = 0; j < s.seq; ++j) {
            const bool sees = (!c.causal || j <= i) && (c.window == 0 || i - j < c.window) &&
                              (keys.empty() || keys[b * s.seq + j] != 0);
            if (!sees) continue;
            const float* kj = k.data() + (b * s.seq + j) * kv_ld + (h / group) * hd;
            double dot = 0.0;
            for (int64_t d = 0; d < hd; ++d) dot += static_cast<double>(qi[d]) * kj[d];
            score[j] = dot / std::sqrt(static_cast<double>(hd));
            top = std::max(top, score[j]);
          }
          std::vector<double> want(static_cast<size_t>(hd), 0.0);
          if (top > -INFINITY) {
            double sum = 0.0;
            for (double& e : score) sum += (e = std::exp(e - top));
            for (int64_t j = 0; j < s.seq; ++j)
              for (int64_t d = 0; d < hd; ++d)
                want[d] += score[j] / sum * v[(b * s.seq + j) * kv_ld + (h / group) * hd + d];
          }
          attention_row_online(q.data(), k.data(), v.data(), s, mask, b, h, i, twin.data());
          const float* got = backend.data() + (b * s.seq + i) * ld + h * hd;
          for (int64_t d = 0; d < hd; ++d) {
            if (top == -INFINITY) {
              ASSERT_EQ(twin[d], 0.0f) << b << "," << h << "," << i << "," << d;
              ASSERT_EQ(got[d], 0.0f) << b << "," << h << "," << i << "," << d;
            }
            ASSERT_NEAR(twin[d], want[d], 2e-6) << b << "," << h << "," << i << "," << d;
            ASSERT_NEAR(got[d], want[d], 2e-6) << b << "," << h << "," << i << "," << d;
          }
        }
  }
}

TEST(KernelMathAttention, SkippedKeyTilesAreMaskedForTheirRows) {
  // The kernel reads keys [begin, end) for a block of 8 rows, the twin for one row: every key outside is
  // masked for every row of the block, and begin stays on a tile edge.
  for (const AttentionCase& c : mask_cases()) {
    SCOPED_TRACE(case_name(c));
    const std::vector<uint8_t> keys = c.pad.empty() ? std::vector<uint8_t>{} : key_mask(c);
    const AttentionMask mask{c.causal, c.window, keys.empty() ? nullptr : keys.data()};
    const int64_t seq = c.s.seq;
    for (const int64_t rows : {1, 8})
      for (int64_t first = 0; first < seq; first += rows) {
        const int64_t last = std::min(first + rows, seq) - 1;
        int64_t begin = -1, end = -1;
        attention_key_range(mask, seq, first, last, &begin, &end);
        ASSERT_EQ(begin % kAttentionTile, 0);
        ASSERT_TRUE(0 <= begin && begin < end && end <= seq) << begin << " " << end;
        for (int64_t b = 0; b < c.s.batch; ++b)
          for (int64_t i = first; i <= last; ++i)
            for (int64_t j = 0; j < seq; ++j) {
              if (j < begin || j >= end) {
                ASSERT_FALSE(attends(mask, b, seq, i, j)) << i << " " << j;
              }
            }
      }
    if (!c.causal && c.window == 0) {
      int64_t begin = -1, end = -1;
      attention_key_range(mask, seq, 0, seq - 1, &begin, &end);
      EXPECT_EQ(begin, 0);
      EXPECT_EQ(end, seq);
    }
  }
}

}  // namespace
}  // namespace cm
