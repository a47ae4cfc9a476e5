// LayerNorm, RMSNorm and the MLP activations on the GPU against their CPU twins (kernels/*.hpp).
#include "activations.hpp"
#include "activations_cuda.hpp"
#include "gpu_testing.hpp"
#include "layernorm.hpp"
#include "norms_cuda.hpp"
#include "rmsnorm.hpp"

namespace cm {
namespace {

using testing::near_ulps;
using testing::random_floats;

class GpuNorms : public testing::GpuTest {};

TEST_F(GpuNorms, LayerNormMatchesRowMoments) {
  for (const int64_t d : {7, 96, 1024, 1280}) {
    const int64_t rows = 37;
    // A large common offset (late residual streams): the double moments keep xhat exact.
    const auto x = random_floats(rows * d, 1, 300.0f, 302.0f), g = random_floats(d, 2), b = random_floats(d, 3);
    float* dx = device(x);
    float* dy = device_zeros<float>(x.size());
    float* dxhat = device_zeros<float>(x.size());
    gpu::layer_norm(dx, device(g), device(b), 1e-5f, dy, dxhat, rows, d, stream());
    const auto y = host(dy, x.size()), xhat = host(dxhat, x.size());
    gpu::layer_norm(dx, device(g), device(b), 1e-5f, dx, nullptr, rows, d, stream());  // in place, no xhat
    const auto inplace = host(dx, x.size());
    std::vector<float> want(x.size()), want_xhat(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      double mean = 0, rstd = 0;
      row_moments(x.data() + r * d, d, 1e-5f, &mean, &rstd);
      layer_norm_row(x.data() + r * d, g.data(), b.data(), mean, rstd, want.data() + r * d, want_xhat.data() + r * d,
                     d);
    }
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_TRUE(near_ulps(xhat[i], want_xhat[i], 1, 1e-6f)) << "d " << d << " at " << i;
      ASSERT_TRUE(near_ulps(y[i], want[i], 2, 1e-6f)) << "d " << d << " at " << i;
      ASSERT_EQ(inplace[i], y[i]);
    }
  }
}

TEST_F(GpuNorms, RmsNormMatchesCpuRow) {
  const int64_t rows = 19, d = 4096;
  const auto x = random_floats(rows * d, 4, -3.0f, 3.0f), g = random_floats(d, 5);
  float* dy = device_zeros<float>(x.size());
  float* dxhat = device_zeros<float>(x.size());
  gpu::rms_norm(device(x), device(g), 1e-6f, dy, dxhat, rows, d, stream());
  const auto y = host(dy, x.size()), xhat = host(dxhat, x.size());
  std::vector<float> want(x.size()), want_xhat(x.size());
  for (int64_t r = 0; r < rows; ++r)
    rms_norm_row(x.data() + r * d, g.data(), 1e-6f, want.data() + r * d, want_xhat.data() + r * d, d);
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_TRUE(near_ulps(xhat[i], want_xhat[i], 1, 1e-6f)) << i;
    ASSERT_TRUE(near_ulps(y[i], want[i], 2, 1e-6f)) << i;
  }
}

TEST_F(GpuNorms, ActivationsMatchCpu) {
  std::vector<float> x;
  for (int i = -1000; i <= 1000; ++i) x.push_back(i * 0.0123f);
  const auto up = random_floats(x.size(), 6, -2.0f, 2.0f);
  const int64_t n = static_cast<int64_t>(x.size());
  float* dg = device(x);
  float* dq = device(x);
  float* ds = device_zeros<float>(x.size());
  gpu::gelu(dg, n, stream());
  gpu::quick_gelu(dq, n, stream());
  gpu::silu_gate(device(x), device(up), ds, n, stream());
  const auto g = host(dg, x.size()), q = host(dq, x.size()), s = host(ds, x.size());
  // Device expf and erff are within 2 ulp of the true value, like glibc's: a few ulp apart at most.
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_TRUE(near_ulps(g[i], gelu(x[i]), 4, 1e-7f)) << x[i];
    ASSERT_TRUE(near_ulps(q[i], quick_gelu(x[i]), 4, 1e-7f)) << x[i];
    ASSERT_TRUE(near_ulps(s[i], silu_gate(x[i], up[i]), 4, 1e-7f)) << x[i];
  }
}

}  // namespace
}  // namespace cm
