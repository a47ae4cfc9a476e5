// The online softmax of the flash attention kernel (its CPU twin attention_row_online) against the two-pass
// softmax over a materialised score row.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "softmax.hpp"

namespace cm {
namespace {

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
      const float scale = 0.125f;
      attention_row_online(q.data(), k.data(), v.data(), hd, seq, hd, scale, out.data());
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
  EXPECT_EQ(online_softmax_rescale(&st, 4.0f), 1.0f);  // a smaller tile maximum changes nothing
}

}  // namespace
}  // namespace cm
