// CAT's norm/shift masks and the exact-selection histograms on the GPU against their CPU twins.
#include <algorithm>
#include <limits>

#include "gpu_testing.hpp"
#include "histogram_cuda.hpp"
#include "merge_math.hpp"
#include "methods/cat_masks.hpp"
#include "methods/select.hpp"
#include "select_cuda.hpp"

namespace cm {
namespace {

using testing::random_floats;

class GpuSelect : public testing::GpuTest {};

TEST_F(GpuSelect, MasksMatchTheCpuWithTies) {
  const int K = 4, c = 5;
  const int64_t d = 3000;
  TaskVectors tasks;
  std::vector<float> stacked;
  std::vector<std::vector<double>> xsq(K);
  std::vector<double> xsq_stacked;
  for (int k = 0; k < K; ++k) {
    std::vector<float> t = random_floats(d, 30 + k);
    for (int64_t z = 0; z < d; z += 3) t[z] = 0.5f;  // many equal scores: ties go to the lower index
    tasks.push_back(t);
    stacked.insert(stacked.end(), t.begin(), t.end());
    const auto x = random_floats(d, 40 + k, 0.0f, 4.0f);
    xsq[k].assign(x.begin(), x.end());
    for (int64_t z = 0; z < d; z += 3) xsq[k][z] = 2.0;
    xsq_stacked.insert(xsq_stacked.end(), xsq[k].begin(), xsq[k].end());
  }
  for (const bool norm : {true, false}) {
    SCOPED_TRACE(norm ? "norm_scale" : "shift");
    std::vector<const double*> xp;
    for (int k = 0; norm && k < K; ++k) xp.push_back(xsq[k].data());
    const auto want = cat_entry_masks(tasks, xp, 1.0, c);
    float* dt = device(stacked);
    int64_t* masks = device_zeros<int64_t>(K * c);
    int* counts = device_zeros<int>(K);
    gpu::cat_masks(dt, norm ? device(xsq_stacked) : nullptr, K, d, 1.0, c, device_zeros<double>(K * d), masks, counts,
                   stream());
    const auto m = host(masks, K * c);
    const auto n = host(counts, K);
    for (int k = 0; k < K; ++k) {
      ASSERT_EQ(static_cast<size_t>(n[k]), want[k].size()) << k;
      for (int j = 0; j < n[k]; ++j) EXPECT_EQ(m[k * c + j], want[k][j]) << k << "," << j;
    }
    gpu::apply_masks(dt, K, d, c, masks, counts, stream());
    TaskVectors applied = tasks;
    apply_entry_masks(want, applied);
    const auto got = host(dt, stacked.size());
    for (int k = 0; k < K; ++k)
      for (int64_t z = 0; z < d; ++z) ASSERT_EQ(got[k * d + z], applied[k][z]) << k << "," << z;
  }
}

TEST_F(GpuSelect, HistogramsSelectLikeNthElement) {
  std::vector<float> v = random_floats(1 << 20, 50, -2.0f, 2.0f);
  for (size_t i = 0; i < v.size(); i += 5) v[i] = 0.0f;  // one bin takes a fifth of the values
  for (size_t i = 1; i < v.size(); i += 97) v[i] = -0.0f;
  v[77] = std::numeric_limits<float>::infinity();
  unsigned long long* hist = device_zeros<unsigned long long>(kSelectBins);
  unsigned int* min_max = device_zeros<unsigned int>(2);
  gpu::histogram_start(hist, min_max, stream());
  float* dv = device(v);
  const int64_t half = static_cast<int64_t>(v.size() / 2);  // in two chunks, as a stream of units comes
  gpu::histogram_top(dv, half, hist, min_max, stream());
  gpu::histogram_top(dv + half, static_cast<int64_t>(v.size()) - half, hist, min_max, stream());
  const auto top_ull = host(hist, kSelectBins);
  const std::vector<uint64_t> top(top_ull.begin(), top_ull.end());  // the device counts in unsigned long long
  const auto mm = host(min_max, 2);
  std::vector<uint64_t> want(kSelectBins, 0);
  for (float x : v) ++want[key_top_bin(order_key(x))];
  ASSERT_EQ(top, want);
  EXPECT_EQ(order_key_value(mm[0]), *std::min_element(v.begin(), v.end()));
  EXPECT_EQ(order_key_value(mm[1]), std::numeric_limits<float>::infinity());

  for (const uint64_t position : {uint64_t{0}, uint64_t{12345}, v.size() / 2, v.size() - 1}) {
    uint32_t bin = 0;
    uint64_t rest = 0;
    histogram_locate(top.data(), position, &bin, &rest);
    gpu::histogram_start(hist, min_max, stream());
    gpu::histogram_low(dv, static_cast<int64_t>(v.size()), bin, hist, stream());
    const auto low_ull = host(hist, kSelectBins);
    const std::vector<uint64_t> low(low_ull.begin(), low_ull.end());
    uint32_t low_bin = 0;
    uint64_t unused = 0;
    histogram_locate(low.data(), rest, &low_bin, &unused);
    std::vector<float> sorted = v;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(position), sorted.end());
    EXPECT_EQ(order_key_value((bin << 16) | low_bin), sorted[position]) << position;
  }
}

}  // namespace
}  // namespace cm
