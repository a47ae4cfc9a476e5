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

TEST(CpuBackend, AttentionMatchesDoubleLoop) {
  std::mt19937 rng(3);
  const int64_t batch = 3, seq = 11, heads = 4, hd = 8, width = heads * hd;
  // Scores up to ~ +-60: without subtracting the row max, exp would overflow float.
  const auto q = random_vec(batch * seq * width, rng, -3.0f, 3.0f);
  const auto k = random_vec(batch * seq * width, rng, -3.0f, 3.0f);
  const auto v = random_vec(batch * seq * width, rng);
  std::vector<float> out(q.size());
  cpu()->attention(q.data(), k.data(), v.data(), out.data(), batch, seq, heads, hd);
  for (int64_t bi = 0; bi < batch; ++bi) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < seq; ++i) {
        std::vector<double> p(seq);
        double mx = -1e300, sum = 0.0;
        for (int64_t j = 0; j < seq; ++j) {
          double s = 0.0;
          for (int64_t c = 0; c < hd; ++c) {
            s += static_cast<double>(q[(bi * seq + i) * width + h * hd + c]) * k[(bi * seq + j) * width + h * hd + c];
          }
          p[j] = s / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, p[j]);
        }
        for (double& e : p) sum += (e = std::exp(e - mx));
        for (int64_t c = 0; c < hd; ++c) {
          double want = 0.0;
          for (int64_t j = 0; j < seq; ++j) want += p[j] / sum * v[(bi * seq + j) * width + h * hd + c];
          EXPECT_NEAR(out[(bi * seq + i) * width + h * hd + c], want, 1e-5) << bi << "," << h << "," << i;
        }
      }
    }
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
