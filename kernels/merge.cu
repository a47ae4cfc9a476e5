#include "common/error.hpp"
#include "cuda_check.hpp"
#include "device_util.cuh"
#include "merge_cuda.hpp"
#include "philox.hpp"

namespace cm::gpu {
namespace {

__global__ void ties_kernel(const float* base, const float* tasks, const TiesTaskTrim* trims, int K, int64_t n,
                            int64_t offset, float majority, TiesDisjoint disjoint, float alpha, float* out) {
  float kept[kMaxMergeTasks];
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    for (int k = 0; k < K; ++k) kept[k] = ties_trim(tasks[k * n + i], trims[k], offset + i);
    out[i] = base[i] + alpha * ties_combine(kept, K, majority, disjoint);
  }
}

__global__ void dare_kernel(float* tasks, int K, int64_t n, uint64_t name_hash, uint32_t seed, int64_t offset, double p,
                            float one_minus_p) {
  for (int64_t e = thread_index(); e < static_cast<int64_t>(K) * n; e += thread_stride()) {
    const uint32_t k = static_cast<uint32_t>(e / n);
    const uint64_t index = static_cast<uint64_t>(offset + e % n);
    tasks[e] = dare_value(tasks[e], dare_keep(name_hash, k, seed, index, p), one_minus_p);
  }
}

__global__ void pcb_kernel(const float* base, const float* tasks, const PcbTaskStats* stats, int K, int64_t n,
                           float alpha, float* out) {
  float t[kMaxMergeTasks];
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    for (int k = 0; k < K; ++k) t[k] = tasks[k * n + i];
    out[i] = base[i] + alpha * pcb_tau(t, K, stats);
  }
}

}  // namespace

void ties_merge(const float* base, const float* tasks, const TiesTaskTrim* trims, int K, int64_t n, int64_t offset,
                float majority, TiesDisjoint disjoint, float alpha, float* out, cudaStream_t stream) {
  CM_ASSERT(K >= 1 && K <= kMaxMergeTasks);
  if (n == 0) return;
  ties_kernel<<<grid_for(n), kThreads, 0, stream>>>(base, tasks, trims, K, n, offset, majority, disjoint, alpha, out);
  CUDA_LAUNCH_CHECK();
}

void dare_drop(float* tasks, int K, int64_t n, uint64_t name_hash, uint32_t seed, int64_t offset, double p,
               cudaStream_t stream) {
  if (K == 0 || n == 0) return;
  dare_kernel<<<grid_for(K * n), kThreads, 0, stream>>>(tasks, K, n, name_hash, seed, offset, p,
                                                        static_cast<float>(1.0 - p));
  CUDA_LAUNCH_CHECK();
}

void pcb_merge(const float* base, const float* tasks, const PcbTaskStats* stats, int K, int64_t n, float alpha,
               float* out, cudaStream_t stream) {
  CM_ASSERT(K >= 1 && K <= kMaxMergeTasks);
  if (n == 0) return;
  pcb_kernel<<<grid_for(n), kThreads, 0, stream>>>(base, tasks, stats, K, n, alpha, out);
  CUDA_LAUNCH_CHECK();
}

}  // namespace cm::gpu
