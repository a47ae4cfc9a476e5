// Rotary embedding, storage-type conversions, task vectors and the Linalg's element steps on the GPU
// against their CPU twins.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "convert_cuda.hpp"
#include "dtype_convert.hpp"
#include "gpu_testing.hpp"
#include "rotary.hpp"
#include "rotary_cuda.hpp"
#include "task_vector.hpp"
#include "task_vector_cuda.hpp"

namespace cm {
namespace {

using testing::random_floats;

class GpuElementwise : public testing::GpuTest {};

// A llama3-like table: base 500000 and rope_scaling's smoothing of the long wavelengths (factor 8,
// low_freq_factor 1, high_freq_factor 4, 8192 original positions), in double and rounded once, as the host
// computes it for both sides.
std::vector<float> llama3_inv_freq(int64_t hd) {
  const double pi = 3.14159265358979323846, factor = 8.0, low = 1.0, high = 4.0, original = 8192.0;
  std::vector<float> f(static_cast<size_t>(hd / 2));
  for (int64_t i = 0; i < hd / 2; ++i) {
    const double inv = 1.0 / std::pow(500000.0, static_cast<double>(2 * i) / static_cast<double>(hd));
    const double wavelen = 2.0 * pi / inv;
    double scaled = inv;
    if (wavelen > original / low) {
      scaled = inv / factor;
    } else if (wavelen >= original / high) {
      const double smooth = (original / wavelen - low) / (high - low);
      scaled = (1.0 - smooth) * inv / factor + smooth * inv;
    }
    f[static_cast<size_t>(i)] = static_cast<float>(scaled);
  }
  return f;
}

TEST_F(GpuElementwise, RotaryMatchesCpuHeads) {
  // Positions into the thousands, where a float angle of pos * inv_freq is large and cos, sin must agree on it.
  const int64_t seq = 4100, batch = 2, heads = 4, hd = 128, rows = batch * seq;
  const auto x = random_floats(rows * heads * hd, 1);
  const auto inv_freq = llama3_inv_freq(hd);
  float* dx = device(x);
  gpu::rotary(dx, rows, seq, heads, hd, device(inv_freq), stream());
  const auto got = host(dx, x.size());
  std::vector<float> want = x;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h) rope_head(want.data() + (r * heads + h) * hd, hd, r % seq, inv_freq.data());
  // The same float angles; device cosf and sinf are within 2 ulp of glibc's.
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-6f) << i;
}

TEST_F(GpuElementwise, SixteenBitConversionsAreBitExact) {
  std::vector<float> f = random_floats(100000, 2, -70000.0f, 70000.0f);
  const std::vector<float> special = {0.0f,
                                      -0.0f,
                                      std::numeric_limits<float>::infinity(),
                                      std::numeric_limits<float>::quiet_NaN(),
                                      std::numeric_limits<float>::denorm_min(),
                                      65504.0f,
                                      65520.0f,
                                      1e-8f,
                                      -6.1e-5f,
                                      3.3895314e38f};
  f.insert(f.end(), special.begin(), special.end());
  std::vector<uint16_t> all16(65536);
  for (size_t i = 0; i < all16.size(); ++i) all16[i] = static_cast<uint16_t>(i);
  const int64_t n = static_cast<int64_t>(f.size());
  uint16_t* bf = device_zeros<uint16_t>(f.size());
  uint16_t* hf = device_zeros<uint16_t>(f.size());
  gpu::to_bf16(device(f), bf, n, stream());
  gpu::to_f16(device(f), hf, n, stream());
  const auto bf_got = host(bf, f.size()), hf_got = host(hf, f.size());
  for (size_t i = 0; i < f.size(); ++i) {
    ASSERT_EQ(bf_got[i], float_to_bf16(f[i])) << f[i];
    ASSERT_EQ(hf_got[i], float_to_f16(f[i])) << f[i];
  }
  float* back_bf = device_zeros<float>(all16.size());
  float* back_hf = device_zeros<float>(all16.size());
  gpu::from_bf16(device(all16), back_bf, 65536, stream());
  gpu::from_f16(device(all16), back_hf, 65536, stream());
  const auto a = host(back_bf, all16.size()), b = host(back_hf, all16.size());
  for (size_t i = 0; i < all16.size(); ++i) {
    const float wa = bf16_to_float(all16[i]), wb = f16_to_float(all16[i]);
    ASSERT_EQ(std::memcmp(&a[i], &wa, 4), 0) << i;
    ASSERT_EQ(std::memcmp(&b[i], &wb, 4), 0) << i;
  }
}

TEST_F(GpuElementwise, TaskVectorsAndTheirFirstBadEntry) {
  const auto base = random_floats(50000, 3), expert = random_floats(50000, 4);
  float* out = device_zeros<float>(base.size());
  unsigned long long* flag = device_zeros<unsigned long long>(1);
  EXPECT_EQ(gpu::task_vector(device(expert), device(base), out, 50000, flag, stream()), -1);
  const auto got = host(out, base.size());
  for (size_t i = 0; i < base.size(); ++i) ASSERT_EQ(got[i], task_delta(expert[i], base[i]));
  std::vector<float> bad = expert;
  bad[40000] = std::numeric_limits<float>::infinity();
  bad[31337] = std::numeric_limits<float>::quiet_NaN();
  bad[49999] = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(gpu::task_vector(device(bad), device(base), out, 50000, flag, stream()), 31337);
  EXPECT_FALSE(finite_value(task_delta(bad[31337], base[31337])));
}

}  // namespace
}  // namespace cm
