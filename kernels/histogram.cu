// Global-memory histograms of 65536 bins (too many to privatise in shared memory). Values that share a bin
// within a warp, common where a task vector holds many equal entries (zeros after DARE or TIES), are
// counted by one atomic of the warp's leader for them.
#include "cuda_check.hpp"
#include "device_util.cuh"
#include "histogram_cuda.hpp"
#include "merge_math.hpp"
#include "methods/select.hpp"

namespace cm::gpu {
namespace {

__device__ void count(unsigned long long* hist, uint32_t bin) {
  const unsigned peers = __match_any_sync(__activemask(), bin);
  if (static_cast<int>(threadIdx.x % 32) == __ffs(peers) - 1)
    atomicAdd(&hist[bin], static_cast<unsigned long long>(__popc(peers)));
}

__global__ void top_kernel(const float* values, int64_t n, unsigned long long* hist, unsigned int* min_max) {
  unsigned int lo = 0xffffffffu, hi = 0;
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    const uint32_t key = order_key(values[i]);
    count(hist, key_top_bin(key));
    lo = key < lo ? key : lo;
    hi = key > hi ? key : hi;
  }
  for (int o = 16; o > 0; o >>= 1) {
    lo = min(lo, __shfl_xor_sync(0xffffffffu, lo, o));
    hi = max(hi, __shfl_xor_sync(0xffffffffu, hi, o));
  }
  if (threadIdx.x % 32 == 0) {
    atomicMin(&min_max[0], lo);
    atomicMax(&min_max[1], hi);
  }
}

__global__ void low_kernel(const float* values, int64_t n, uint32_t top_bin, unsigned long long* hist) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    const uint32_t key = order_key(values[i]);
    if (key_top_bin(key) == top_bin) count(hist, key_low_bin(key));
  }
}

}  // namespace

void histogram_start(unsigned long long* hist, unsigned int* min_max, cudaStream_t stream) {
  CUDA_CHECK(cudaMemsetAsync(hist, 0, kSelectBins * sizeof *hist, stream));
  CUDA_CHECK(cudaMemsetAsync(min_max, 0xff, sizeof *min_max, stream));
  CUDA_CHECK(cudaMemsetAsync(min_max + 1, 0, sizeof *min_max, stream));
}

void histogram_top(const float* values, int64_t n, unsigned long long* hist, unsigned int* min_max,
                   cudaStream_t stream) {
  if (n == 0) return;
  top_kernel<<<grid_for(n), kThreads, 0, stream>>>(values, n, hist, min_max);
  CUDA_LAUNCH_CHECK();
}

void histogram_low(const float* values, int64_t n, uint32_t top_bin, unsigned long long* hist, cudaStream_t stream) {
  if (n == 0) return;
  low_kernel<<<grid_for(n), kThreads, 0, stream>>>(values, n, top_bin, hist);
  CUDA_LAUNCH_CHECK();
}

}  // namespace cm::gpu
