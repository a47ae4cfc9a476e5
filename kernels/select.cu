// Scores: one thread per entry z computes g_z of every task. Selection: one block per task takes c rounds;
// each round finds the best entry ranked after the previous pick (a strict total order, so no entry is
// picked twice), block-wide through lane shuffles and shared memory.
#include "common/error.hpp"
#include "cuda_check.hpp"
#include "device_util.cuh"
#include "merge_math.hpp"
#include "select_cuda.hpp"

namespace cm::gpu {
namespace {

__global__ void scores_kernel(const float* tasks, const double* xsq, int K, int64_t d, double lambda, double* g) {
  float t[kMaxMaskTasks];
  double x[kMaxMaskTasks];
  for (int64_t z = thread_index(); z < d; z += thread_stride()) {
    for (int i = 0; i < K; ++i) {
      t[i] = tasks[i * d + z];
      if (xsq) x[i] = xsq[i * d + z];
    }
    for (int k = 0; k < K; ++k) g[k * d + z] = cat_entry_score(t, xsq ? x : nullptr, K, k, lambda);
  }
}

// The better of two candidates (index -1: none).
__device__ void keep_better(double* g, int64_t* z, double og, int64_t oz) {
  if (oz >= 0 && (*z < 0 || ranks_before(og, oz, *g, *z))) {
    *g = og;
    *z = oz;
  }
}

__global__ void top_c_kernel(const double* scores, int64_t d, int c, int64_t* masks, int* counts) {
  __shared__ double sg[32];
  __shared__ int64_t sz[32];
  const int k = blockIdx.x, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const double* g = scores + k * d;
  double last_g = 0;
  int64_t last_z = -1;  // -1 before the first pick
  int found = 0;
  for (; found < c; ++found) {
    double bg = 0;
    int64_t bz = -1;
    for (int64_t z = threadIdx.x; z < d; z += blockDim.x)
      if (g[z] > 0 && (last_z < 0 || ranks_before(last_g, last_z, g[z], z))) keep_better(&bg, &bz, g[z], z);
    for (int o = 16; o > 0; o >>= 1)
      keep_better(&bg, &bz, __shfl_xor_sync(0xffffffffu, bg, o), __shfl_xor_sync(0xffffffffu, bz, o));
    __syncthreads();  // the previous round's reads of sg, sz are done
    if (lane == 0) {
      sg[warp] = bg;
      sz[warp] = bz;
    }
    __syncthreads();
    bg = 0;
    bz = -1;
    for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) keep_better(&bg, &bz, sg[w], sz[w]);
    if (bz < 0) break;  // fewer than c positive scores
    if (threadIdx.x == 0) masks[k * c + found] = bz;
    last_g = bg;
    last_z = bz;
  }
  if (threadIdx.x == 0) counts[k] = found;
}

__global__ void apply_masks_kernel(float* tasks, int K, int64_t d, int c, const int64_t* masks, const int* counts) {
  for (int64_t p = thread_index(); p < static_cast<int64_t>(K) * c; p += thread_stride()) {
    const int k = static_cast<int>(p / c), j = static_cast<int>(p % c);
    if (j >= counts[k]) continue;
    const int64_t z = masks[p];
    for (int i = 0; i < K; ++i)
      if (i != k) tasks[i * d + z] = 0.0f;
  }
}

}  // namespace

void cat_masks(const float* tasks, const double* xsq, int K, int64_t d, double lambda, int c, double* scores,
               int64_t* masks, int* counts, cudaStream_t stream) {
  CM_ASSERT(K >= 1 && K <= kMaxMaskTasks && c >= 0);
  if (d > 0) {
    scores_kernel<<<grid_for(d), kThreads, 0, stream>>>(tasks, xsq, K, d, lambda, scores);
    CUDA_LAUNCH_CHECK();
  }
  top_c_kernel<<<static_cast<unsigned>(K), kThreads, 0, stream>>>(scores, d, c, masks, counts);
  CUDA_LAUNCH_CHECK();
}

void apply_masks(float* tasks, int K, int64_t d, int c, const int64_t* masks, const int* counts, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(K) * c;
  if (n == 0) return;
  apply_masks_kernel<<<grid_for(n), kThreads, 0, stream>>>(tasks, K, d, c, masks, counts);
  CUDA_LAUNCH_CHECK();
}

}  // namespace cm::gpu
