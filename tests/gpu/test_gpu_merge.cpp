// TIES, DARE and PCB element steps on the GPU against the CPU code of the methods.
#include <cmath>

#include "common/hash.hpp"
#include "gpu_testing.hpp"
#include "merge_cuda.hpp"
#include "methods/method_common.hpp"
#include "philox.hpp"

namespace cm {
namespace {

using testing::near_ulps;
using testing::random_floats;

class GpuMerge : public testing::GpuTest {
 protected:
  // K task vectors with exact zeros, ties of magnitude and mixed signs, stacked [K][n] for the device.
  void SetUp() override {
    testing::GpuTest::SetUp();
    if (IsSkipped()) return;
    base = random_floats(n, 10);
    for (int k = 0; k < K; ++k) {
      tasks.push_back(random_floats(n, 20 + k, -0.01f, 0.01f));
      for (int64_t i = k; i < n; i += 7) tasks[k][i] = 0.0f;
      for (int64_t i = 3; i < n; i += 11) tasks[k][i] = (k % 2 ? -0.005f : 0.005f);
      stacked.insert(stacked.end(), tasks[k].begin(), tasks[k].end());
    }
  }
  static constexpr int K = 5;
  static constexpr int64_t n = 100003;
  std::vector<float> base, stacked;
  TaskVectors tasks;
};

TEST_F(GpuMerge, TiesMatchesTheCpuDirection) {
  // Cuts inside the stretch (ties kept below a flat index), at its ends and beyond; a block of a tensor from
  // flat index 1000 on; both elected signs of zero sums and both combinations.
  const std::vector<TiesTaskTrim> trims = {{0.002f, 51000}, {0.005f, 1000}, kTiesKeepAll, {0.009f, 1 << 30}, {0.0f, 0}};
  const TiesTaskTrim* dtrims = device(trims);
  for (const float majority : {1.0f, -1.0f})
    for (const TiesDisjoint disjoint : {TiesDisjoint::Mean, TiesDisjoint::Sum}) {
      float* out = device_zeros<float>(n);
      gpu::ties_merge(device(base), device(stacked), dtrims, K, n, 1000, majority, disjoint, 0.3f, out, stream());
      const auto got = host(out, n);
      std::vector<float> want(base.size());
      ties_direction(tasks, trims, 1000, majority, disjoint, want.size(), want.data());
      apply_final_scale(base.data(), 0.3f, want.data(), want.data(), want.size());
      for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(near_ulps(got[i], want[i], 1)) << i;  // FMA may round once less
    }
}

TEST_F(GpuMerge, DareMasksEqualTheCpuMasks) {
  const uint64_t hash = fnv1a64("vision_model.encoder.layers.3.mlp.fc1.weight");
  float* t = device(stacked);
  gpu::dare_drop(t, K, n, hash, 1234u, 777, 0.9, stream());
  const auto got = host(t, stacked.size());
  for (int k = 0; k < K; ++k)
    for (int64_t i = 0; i < n; ++i) {
      const float want = dare_value(tasks[k][i], dare_keep(hash, static_cast<uint32_t>(k), 1234u, 777 + i, 0.9),
                                    static_cast<float>(1.0 - 0.9));
      ASSERT_EQ(got[k * n + i], want) << k << "," << i;
    }
}

TEST_F(GpuMerge, PcbMatchesPcbTau) {
  std::vector<PcbTaskStats> st(K);
  for (int k = 0; k < K; ++k) st[k] = PcbTaskStats{1e-4f, 0.009f, 1e-4f, 0.009f, 0.2f + 0.1f * k, -0.5f, 2.0f + k};
  float* out = device_zeros<float>(n);
  PcbTaskStats* dst = device_zeros<PcbTaskStats>(K);
  ctx().copy_in(dst, st.data(), st.size() * sizeof(PcbTaskStats));
  gpu::pcb_merge(device(base), device(stacked), dst, K, n, 1.0f, out, stream());
  const auto got = host(out, n);
  std::vector<float> t(K);
  for (int64_t i = 0; i < n; ++i) {
    for (int k = 0; k < K; ++k) t[k] = tasks[k][i];
    // expf and tanhf differ by an ulp or two between libm and the device.
    ASSERT_NEAR(got[i], base[i] + pcb_tau(t.data(), K, st.data()), 1e-6f) << i;
  }
}

}  // namespace
}  // namespace cm
