// Every CPU backend op against a naive double-precision loop.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "activations.hpp"
#include "backend/backend.hpp"
#if CATMERGE_HAVE_CUDA
#include "backend/cuda/cuda_backend.hpp"
#endif
#include "common/error.hpp"

namespace cm {
namespace {

std::vector<float> random_vec(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

std::unique_ptr<Backend> cpu() { return make_backend("cpu", 2, "test"); }

TEST(CpuBackend, LinearMatchesDoubleLoop) {
  std::mt19937 rng(1);
  const int64_t m = 37, n = 29, k = 53;
  const auto x = random_vec(m * k, rng), w = random_vec(n * k, rng), b = random_vec(n, rng);
  for (const bool with_bias : {true, false}) {
    std::vector<float> y(m * n, 123.0f);  // garbage must be overwritten, not accumulated
    cpu()->linear(x.data(), w.data(), with_bias ? b.data() : nullptr, y.data(), m, n, k);
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t c = 0; c < n; ++c) {
        double want = with_bias ? b[c] : 0.0;
        for (int64_t j = 0; j < k; ++j) want += static_cast<double>(x[r * k + j]) * w[c * k + j];
        EXPECT_NEAR(y[r * n + c], want, 1e-5) << r << "," << c << " bias=" << with_bias;
      }
    }
  }
}

TEST(CpuBackend, LayerNormMatchesDoubleLoopWithLargeMean) {
  std::mt19937 rng(2);
  const int64_t rows = 7, d = 96;
  const float eps = 1e-5f;
  // A large common offset is where float moments lose digits; xhat must stay exact to float precision.
  const auto x = random_vec(rows * d, rng, 300.0f, 302.0f);
  const auto g = random_vec(d, rng), b = random_vec(d, rng);
  std::vector<float> y(rows * d), xhat(rows * d);
  cpu()->layer_norm(x.data(), g.data(), b.data(), eps, y.data(), xhat.data(), rows, d);
  std::vector<float> inplace = x;
  cpu()->layer_norm(inplace.data(), g.data(), b.data(), eps, inplace.data(), nullptr, rows, d);
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0.0, var = 0.0;
    for (int64_t j = 0; j < d; ++j) mean += x[r * d + j];
    mean /= d;
    for (int64_t j = 0; j < d; ++j) var += (x[r * d + j] - mean) * (x[r * d + j] - mean);
    var /= d;  // biased, as PyTorch
    for (int64_t j = 0; j < d; ++j) {
      const double xh = (x[r * d + j] - mean) / std::sqrt(var + eps);
      const double want = xh * g[j] + b[j];
      EXPECT_NEAR(xhat[r * d + j], xh, 2e-6);
      EXPECT_NEAR(y[r * d + j], want, 4e-6);
      EXPECT_EQ(inplace[r * d + j], y[r * d + j]);
    }
  }
}

TEST(CpuBackend, ActivationsMatchDoubleFormulas) {
  std::vector<float> x;
  for (int i = -800; i <= 800; ++i) x.push_back(i * 0.01f);
  std::vector<float> q = x, g = x;
  cpu()->activation(Activation::QuickGelu, q.data(), static_cast<int64_t>(q.size()));
  cpu()->activation(Activation::Gelu, g.data(), static_cast<int64_t>(g.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    const double want_q = v / (1.0 + std::exp(-1.702 * v));
    const double want_g = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
    EXPECT_NEAR(q[i], want_q, 1e-6 * (1.0 + std::fabs(want_q))) << v;
    EXPECT_NEAR(g[i], want_g, 1e-6 * (1.0 + std::fabs(want_g))) << v;
    EXPECT_EQ(q[i], quick_gelu(x[i]));
    EXPECT_EQ(g[i], gelu(x[i]));
  }
}

// Every (sequence, head, query) of `out` against softmax over the keys `allowed(b, i, j)` admits, in double;
// kv head of query head h: h / (heads / kv_heads).
template <class Allowed>
void expect_attention(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                      const std::vector<float>& out, const AttentionShape& s, Allowed allowed) {
  const int64_t width = s.heads * s.head_dim, kv_width = s.kv_heads * s.head_dim, group = s.heads / s.kv_heads;
  for (int64_t bi = 0; bi < s.batch; ++bi)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t i = 0; i < s.seq; ++i) {
        const int64_t kh = h / group;
        std::vector<double> p(static_cast<size_t>(s.seq), 0.0);
        double mx = -1e300, sum = 0.0;
        for (int64_t j = 0; j < s.seq; ++j) {
          if (!allowed(bi, i, j)) continue;
          double dot = 0.0;
          for (int64_t c = 0; c < s.head_dim; ++c)
            dot += static_cast<double>(q[(bi * s.seq + i) * width + h * s.head_dim + c]) *
                   k[(bi * s.seq + j) * kv_width + kh * s.head_dim + c];
          p[j] = dot / std::sqrt(static_cast<double>(s.head_dim));
          mx = std::max(mx, p[j]);
        }
        for (int64_t j = 0; j < s.seq; ++j) sum += (p[j] = allowed(bi, i, j) ? std::exp(p[j] - mx) : 0.0);
        for (int64_t c = 0; c < s.head_dim; ++c) {
          double want = 0.0;
          for (int64_t j = 0; j < s.seq; ++j)
            if (sum > 0.0) want += p[j] / sum * v[(bi * s.seq + j) * kv_width + kh * s.head_dim + c];
          ASSERT_NEAR(out[(bi * s.seq + i) * width + h * s.head_dim + c], want, 1e-5) << bi << "," << h << "," << i;
        }
      }
}

TEST(CpuBackend, AttentionMatchesDoubleLoop) {
  std::mt19937 rng(3);
  const AttentionShape s{3, 11, 4, 4, 8};
  // Scores up to ~ +-60: without subtracting the row max, exp would overflow float.
  const int64_t n = s.batch * s.seq * s.heads * s.head_dim;
  const auto q = random_vec(n, rng, -3.0f, 3.0f), k = random_vec(n, rng, -3.0f, 3.0f), v = random_vec(n, rng);
  std::vector<float> out(q.size());
  cpu()->attention(q.data(), k.data(), v.data(), out.data(), s, AttentionMask{});
  expect_attention(q, k, v, out, s, [](int64_t, int64_t, int64_t) { return true; });
}

// A decoder's attention: 8 query heads on 2 key/value heads, causal, a sliding window of 4, and padding on
// both sides (sequence 1's first two queries see no key at all and must come out as zeros).
TEST(CpuBackend, MaskedGroupedAttentionMatchesDoubleLoop) {
  std::mt19937 rng(4);
  const AttentionShape s{3, 9, 8, 2, 8};
  const int64_t nq = s.batch * s.seq * s.heads * s.head_dim, nkv = s.batch * s.seq * s.kv_heads * s.head_dim;
  const auto q = random_vec(nq, rng, -3.0f, 3.0f), k = random_vec(nkv, rng, -3.0f, 3.0f), v = random_vec(nkv, rng);
  std::vector<uint8_t> keys(static_cast<size_t>(s.batch * s.seq), 1);
  for (int64_t j : {0, 1}) keys[static_cast<size_t>(1 * s.seq + j)] = 0;   // left padding
  for (int64_t j : {6, 7, 8}) keys[static_cast<size_t>(2 * s.seq + j)] = 0;  // right padding
  for (int64_t window : {int64_t{0}, int64_t{4}}) {
    SCOPED_TRACE("window " + std::to_string(window));
    std::vector<float> out(q.size(), -7.0f);
    cpu()->attention(q.data(), k.data(), v.data(), out.data(), s, AttentionMask{true, window, keys.data()});
    expect_attention(q, k, v, out, s, [&](int64_t b, int64_t i, int64_t j) {
      return j <= i && (window == 0 || i - j < window) && keys[static_cast<size_t>(b * s.seq + j)] != 0;
    });
  }
}

TEST(CpuBackend, RmsNormMatchesDoubleFormula) {
  std::mt19937 rng(5);
  const int64_t rows = 5, d = 48;
  const auto x = random_vec(rows * d, rng, -4.0f, 4.0f), g = random_vec(d, rng);
  std::vector<float> y(x.size()), xhat(x.size());
  cpu()->rms_norm(x.data(), g.data(), 1e-5f, y.data(), xhat.data(), rows, d);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int64_t j = 0; j < d; ++j) ss += static_cast<double>(x[r * d + j]) * x[r * d + j];
    const double rstd = 1.0 / std::sqrt(ss / d + 1e-5);
    for (int64_t j = 0; j < d; ++j) {
      EXPECT_NEAR(xhat[r * d + j], x[r * d + j] * rstd, 1e-6);
      EXPECT_NEAR(y[r * d + j], x[r * d + j] * rstd * g[j], 1e-6);
    }
  }
}

TEST(CpuBackend, SiluGateAndRotaryMatchDoubleFormulas) {
  std::mt19937 rng(6);
  const auto gate = random_vec(200, rng, -6.0f, 6.0f), up = random_vec(200, rng);
  std::vector<float> out(gate.size());
  cpu()->silu_gate(gate.data(), up.data(), out.data(), static_cast<int64_t>(gate.size()));
  for (size_t i = 0; i < gate.size(); ++i)
    EXPECT_NEAR(out[i], gate[i] / (1.0 + std::exp(-static_cast<double>(gate[i]))) * up[i], 1e-6);

  // Rows of 3 heads of 8 at positions r % 5: pair (i, i + 4) turns by pos * inv_freq[i].
  const int64_t rows = 10, seq = 5, heads = 3, hd = 8;
  const std::vector<float> inv_freq = {1.0f, 0.1f, 0.01f, 0.001f};
  const auto x = random_vec(rows * heads * hd, rng);
  std::vector<float> y = x;
  cpu()->rotary(y.data(), rows, seq, heads, hd, inv_freq.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < hd / 2; ++i) {
        const int64_t a = (r * heads + h) * hd + i, b = a + hd / 2;
        const double angle = static_cast<double>(r % seq) * inv_freq[i];
        EXPECT_NEAR(y[a], x[a] * std::cos(angle) - x[b] * std::sin(angle), 1e-6);
        EXPECT_NEAR(y[b], x[b] * std::cos(angle) + x[a] * std::sin(angle), 1e-6);
      }
}

TEST(CpuBackend, MakeBackendNames) {
  EXPECT_STREQ(make_backend("cpu", 0, "k").get()->name(), "cpu");
#if CATMERGE_HAVE_CUDA
  const bool gpu = cuda_device_count() > 0;
  const char* no_cuda = "config.yaml:backend: cuda: no CUDA device is visible to this process";
#else
  const bool gpu = false;
  const char* no_cuda = "config.yaml:backend: the cuda backend is not built into this catmerge (build with CATMERGE_CUDA=ON)";
#endif
  EXPECT_STREQ(make_backend("auto", 1, "k").get()->name(), gpu ? "cuda" : "cpu");
  if (!gpu) {
    try {
      make_backend("cuda", 0, "config.yaml:backend");
      FAIL() << "cuda accepted without a GPU";
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(), no_cuda);
    }
  }
  try {
    make_backend("tpu", 0, "config.yaml:backend");
    FAIL() << "tpu accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "config.yaml:backend: unknown backend 'tpu' (expected auto, cpu, cuda)");
  }
}

}  // namespace
}  // namespace cm
