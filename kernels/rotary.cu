#include "cuda_check.hpp"
#include "device_util.cuh"
#include "rotary.hpp"
#include "rotary_cuda.hpp"

namespace cm::gpu {
namespace {

__global__ void rotary_kernel(float* x, int64_t pairs, int64_t seq, int64_t heads, int64_t hd, const float* inv_freq) {
  const int64_t half = hd / 2;
  for (int64_t p = thread_index(); p < pairs; p += thread_stride()) {
    const int64_t i = p % half, head = (p / half) % heads, row = p / (half * heads);
    float* xh = x + row * heads * hd + head * hd;
    const float a = rope_angle(row % seq, inv_freq[i]);
    rope_pair(xh + i, xh + i + half, cosf(a), sinf(a));
  }
}

}  // namespace

void rotary(float* x, int64_t rows, int64_t seq, int64_t heads, int64_t head_dim, const float* inv_freq,
            cudaStream_t stream) {
  const int64_t pairs = rows * heads * (head_dim / 2);
  if (pairs == 0) return;
  rotary_kernel<<<grid_for(pairs), kThreads, 0, stream>>>(x, pairs, seq, heads, head_dim, inv_freq);
  CUDA_LAUNCH_CHECK();
}

}  // namespace cm::gpu
