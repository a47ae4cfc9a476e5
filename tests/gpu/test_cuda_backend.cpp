// Every op of the CUDA backend against the CPU backend.
#include <cmath>
#include <cstdint>
#include <vector>

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
  const AttentionShape s{2, 257, 16, 16, 64};
  const int64_t n = s.batch * s.seq * s.heads * s.head_dim;
  const auto q = random_floats(n, 8, -2.0f, 2.0f), k = random_floats(n, 9, -2.0f, 2.0f), v = random_floats(n, 10);
  std::vector<float> got(n), want(n);
  cuda->attention(q.data(), k.data(), v.data(), got.data(), s, AttentionMask{});
  cpu->attention(q.data(), k.data(), v.data(), want.data(), s, AttentionMask{});
  for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 2e-6f) << i;
}

// The LLaMA decoder's ops, as its forward pass calls them on the host.
TEST_F(CudaBackendOps, RmsNormMatchesCpu) {
  const int64_t rows = 300, d = 4096;
  const auto x = random_floats(rows * d, 11, -5.0f, 5.0f), g = random_floats(d, 12);
  std::vector<float> y(x.size()), xhat(x.size()), wy(x.size()), wxhat(x.size());
  cuda->rms_norm(x.data(), g.data(), 1e-5f, y.data(), xhat.data(), rows, d);
  cpu->rms_norm(x.data(), g.data(), 1e-5f, wy.data(), wxhat.data(), rows, d);
  std::vector<float> inplace = x;
  cuda->rms_norm(inplace.data(), g.data(), 1e-5f, inplace.data(), nullptr, rows, d);
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_NEAR(xhat[i], wxhat[i], 1e-6f) << i;
    ASSERT_NEAR(y[i], wy[i], 2e-6f) << i;
    ASSERT_EQ(inplace[i], y[i]) << i;
  }
}

TEST_F(CudaBackendOps, SiluGateMatchesCpu) {
  const auto gate = random_floats(100000, 13, -8.0f, 8.0f), up = random_floats(100000, 14, -3.0f, 3.0f);
  const int64_t n = static_cast<int64_t>(gate.size());
  std::vector<float> got(gate.size()), want(gate.size()), inplace = gate;
  cuda->silu_gate(gate.data(), up.data(), got.data(), n);
  cpu->silu_gate(gate.data(), up.data(), want.data(), n);
  cuda->silu_gate(inplace.data(), up.data(), inplace.data(), n);
  for (size_t i = 0; i < gate.size(); ++i) {
    ASSERT_TRUE(testing::near_ulps(got[i], want[i], 4, 1e-7f)) << i;
    ASSERT_EQ(inplace[i], got[i]) << i;
  }
}

TEST_F(CudaBackendOps, RotaryMatchesCpu) {
  const int64_t seq = 1000, batch = 2, heads = 8, hd = 128, rows = batch * seq;
  std::vector<float> inv_freq(hd / 2);
  for (int64_t i = 0; i < hd / 2; ++i)
    inv_freq[i] = static_cast<float>(1.0 / std::pow(500000.0, static_cast<double>(2 * i) / static_cast<double>(hd)));
  const auto x = random_floats(rows * heads * hd, 15);
  std::vector<float> got = x, want = x;
  cuda->rotary(got.data(), rows, seq, heads, hd, inv_freq.data());
  cpu->rotary(want.data(), rows, seq, heads, hd, inv_freq.data());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-6f) << i;
}

TEST_F(CudaBackendOps, MaskedGroupedAttentionMatchesCpu) {
  // 8 query heads on 2 key/value heads, causal with a sliding window, the second sequence left-padded so
  // its first rows see no key; a second call with another mask reuses the staged buffers.
  const AttentionShape s{2, 300, 8, 2, 128};
  const int64_t n = s.batch * s.seq * s.heads * s.head_dim, kv_n = s.batch * s.seq * s.kv_heads * s.head_dim;
  const auto q = random_floats(n, 16, -2.0f, 2.0f), k = random_floats(kv_n, 17, -2.0f, 2.0f);
  const auto v = random_floats(kv_n, 18);
  std::vector<uint8_t> keys(static_cast<size_t>(s.batch * s.seq), 1);
  for (int64_t j = 0; j < 45; ++j) keys[s.seq + j] = 0;
  for (const AttentionMask mask : {AttentionMask{true, 64, keys.data()}, AttentionMask{true, 0, nullptr}}) {
    std::vector<float> got(n, 7.0f), want(n);
    cuda->attention(q.data(), k.data(), v.data(), got.data(), s, mask);
    cpu->attention(q.data(), k.data(), v.data(), want.data(), s, mask);
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 2e-6f) << i << " window " << mask.window;
  }
}

}  // namespace
}  // namespace cm
