// Every op of the CUDA backend against the CPU backend.
#include "backend/backend.hpp"
#include "gpu_testing.hpp"
#include "methods/linalg.hpp"

namespace cm {
namespace {

using testing::random_floats;

class CudaBackendOps : public testing::GpuTest {
 protected:
  void SetUp() override {
    testing::GpuTest::SetUp();
    if (IsSkipped()) return;
    cuda = make_backend("cuda", 0, "test");
    cpu = make_backend("cpu", 0, "test");
  }
  std::unique_ptr<Backend> cuda, cpu;
};

TEST_F(CudaBackendOps, NamesAndAuto) {
  EXPECT_STREQ(cuda->name(), "cuda");
  EXPECT_STREQ(make_backend("auto", 0, "test")->name(), "cuda");
  EXPECT_STREQ(cuda->linalg().name(), "cuda");
}

TEST_F(CudaBackendOps, LinearMatchesCpu) {
  const int64_t m = 514, n = 1024, k = 768;
  const auto x = random_floats(m * k, 1), w = random_floats(n * k, 2, -0.05f, 0.05f), b = random_floats(n, 3);
  for (const bool bias : {true, false}) {
    std::vector<float> got(m * n, 7.0f), want(m * n);
    cuda->linear(x.data(), w.data(), bias ? b.data() : nullptr, got.data(), m, n, k);
    cpu->linear(x.data(), w.data(), bias ? b.data() : nullptr, want.data(), m, n, k);
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-5f) << i << " bias " << bias;
  }
}

TEST_F(CudaBackendOps, LayerNormMatchesCpu) {
  const int64_t rows = 514, d = 1024;
  const auto x = random_floats(rows * d, 4, -5.0f, 5.0f), g = random_floats(d, 5), b = random_floats(d, 6);
  std::vector<float> y(x.size()), xhat(x.size()), wy(x.size()), wxhat(x.size());
  cuda->layer_norm(x.data(), g.data(), b.data(), 1e-5f, y.data(), xhat.data(), rows, d);
  cpu->layer_norm(x.data(), g.data(), b.data(), 1e-5f, wy.data(), wxhat.data(), rows, d);
  std::vector<float> inplace = x;
  cuda->layer_norm(inplace.data(), g.data(), b.data(), 1e-5f, inplace.data(), nullptr, rows, d);
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_NEAR(xhat[i], wxhat[i], 1e-6f) << i;
    ASSERT_NEAR(y[i], wy[i], 2e-6f) << i;
    ASSERT_EQ(inplace[i], y[i]) << i;
  }
}

TEST_F(CudaBackendOps, ActivationsMatchCpu) {
  const auto x = random_floats(100000, 7, -8.0f, 8.0f);
  for (const Activation act : {Activation::Gelu, Activation::QuickGelu}) {
    std::vector<float> got = x, want = x;
    cuda->activation(act, got.data(), static_cast<int64_t>(got.size()));
    cpu->activation(act, want.data(), static_cast<int64_t>(want.size()));
    for (size_t i = 0; i < x.size(); ++i) ASSERT_TRUE(testing::near_ulps(got[i], want[i], 4, 1e-7f)) << i;
  }
}

TEST_F(CudaBackendOps, AttentionMatchesCpu) {
  const int64_t batch = 2, seq = 257, heads = 16, hd = 64, n = batch * seq * heads * hd;
  const auto q = random_floats(n, 8, -2.0f, 2.0f), k = random_floats(n, 9, -2.0f, 2.0f), v = random_floats(n, 10);
  std::vector<float> got(n), want(n);
  cuda->attention(q.data(), k.data(), v.data(), got.data(), batch, seq, heads, hd);
  cpu->attention(q.data(), k.data(), v.data(), want.data(), batch, seq, heads, hd);
  for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 2e-6f) << i;
}

}  // namespace
}  // namespace cm
