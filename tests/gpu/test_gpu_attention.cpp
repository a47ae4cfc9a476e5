// The flash attention kernel against its CPU twin (attention_row_online) and the CPU backend's two-pass
// softmax over the materialised score row.
#include "attention_cuda.hpp"
#include "backend/backend.hpp"
#include "gpu_testing.hpp"
#include "softmax.hpp"

namespace cm {
namespace {

using testing::random_floats;

class GpuAttention : public testing::GpuTest {};

TEST_F(GpuAttention, MatchesOnlineTwinAndTwoPassCpu) {
  struct Shape {
    int64_t batch, seq, heads, hd;
  };
  // ViT-L/14 (257 tokens, 16 heads of 64), ViT-H's head width 80, a single token, and head_dim 256 (the
  // largest the kernel takes, past the default shared-memory limit).
  for (const Shape s : {Shape{2, 257, 16, 64}, Shape{1, 50, 4, 80}, Shape{3, 1, 2, 32}, Shape{1, 33, 1, 256}}) {
    SCOPED_TRACE("seq " + std::to_string(s.seq) + " hd " + std::to_string(s.hd));
    const int64_t width = s.heads * s.hd, n = s.batch * s.seq * width;
    const auto q = random_floats(n, 1, -3.0f, 3.0f), k = random_floats(n, 2, -3.0f, 3.0f), v = random_floats(n, 3);
    float* dout = device_zeros<float>(static_cast<size_t>(n));
    gpu::attention(device(q), device(k), device(v), dout, s.batch, s.seq, s.heads, s.hd, stream());
    const auto got = host(dout, static_cast<size_t>(n));
    std::vector<float> two_pass(static_cast<size_t>(n)), twin(static_cast<size_t>(s.hd));
    make_backend("cpu", 0, "test")
        ->attention(q.data(), k.data(), v.data(), two_pass.data(), s.batch, s.seq, s.heads, s.hd);
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.hd)));
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t h = 0; h < s.heads; ++h)
        for (int64_t r = 0; r < s.seq; ++r) {
          const int64_t off = b * s.seq * width + h * s.hd;
          attention_row_online(q.data() + off + r * width, k.data() + off, v.data() + off, width, s.seq, s.hd, scale,
                               twin.data());
          for (int64_t d = 0; d < s.hd; ++d) {
            const float g = got[off + r * width + d];
            ASSERT_NEAR(g, twin[d], 2e-6f) << b << "," << h << "," << r << "," << d;
            ASSERT_NEAR(g, two_pass[off + r * width + d], 2e-6f) << b << "," << h << "," << r << "," << d;
          }
        }
  }
}

}  // namespace
}  // namespace cm
