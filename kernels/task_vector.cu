#include "cuda_check.hpp"
#include "device_util.cuh"
#include "task_vector.hpp"
#include "task_vector_cuda.hpp"

namespace cm::gpu {
namespace {

__global__ void task_vector_kernel(const float* expert, const float* base, float* out, int64_t n,
                                   unsigned long long* first_bad) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) {
    const float t = task_delta(expert[i], base[i]);
    out[i] = t;
    if (!finite_value(t)) atomicMin(first_bad, static_cast<unsigned long long>(i));
  }
}

}  // namespace

int64_t task_vector(const float* expert, const float* base, float* out, int64_t n, unsigned long long* flag,
                    cudaStream_t stream) {
  CUDA_CHECK(cudaMemsetAsync(flag, 0xff, sizeof *flag, stream));  // no bad entry: the largest index
  if (n > 0) {
    task_vector_kernel<<<grid_for(n), kThreads, 0, stream>>>(expert, base, out, n, flag);
    CUDA_LAUNCH_CHECK();
  }
  unsigned long long first = 0;
  CUDA_CHECK(cudaMemcpyAsync(&first, flag, sizeof first, cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return first == ~0ull ? -1 : static_cast<int64_t>(first);
}

}  // namespace cm::gpu
