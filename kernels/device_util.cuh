#pragma once
// Launch sizes and block-wide reductions shared by the kernels (device code only). Reductions go lane tree
// first, then one value per warp through shared memory, in a fixed order: results do not vary run to run.
#include <cstdint>

namespace cm::gpu {

constexpr int kThreads = 256;  // threads per block of the element-wise kernels

// Blocks for a grid-stride loop over n elements: enough to fill any GPU, never more than the work needs.
inline unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

// Grid-stride loops: for (int64_t i = thread_index(); i < n; i += thread_stride()).
__device__ __forceinline__ int64_t thread_index() {
  return blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
}
__device__ __forceinline__ int64_t thread_stride() { return gridDim.x * static_cast<int64_t>(blockDim.x); }

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum of v over every thread of the block (blockDim.x a multiple of 32); every thread gets it.
// shared: 32 values of scratch.
template <class T>
__device__ T block_sum(T v, T* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_sum(v);
  __syncthreads();  // a previous call may still be reading shared
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x / 32) ? shared[lane] : T(0);
  return warp_sum(v);
}

}  // namespace cm::gpu
