#include "cuda_check.hpp"
#include "device_util.cuh"
#include "linalg_aux_cuda.hpp"

namespace cm::gpu {
namespace {

__global__ void widen_kernel(const float* in, double* out, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) out[i] = in[i];
}
__global__ void narrow_kernel(const double* in, float* out, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) out[i] = static_cast<float>(in[i]);
}
__global__ void round_to_float_kernel(double* x, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) x[i] = static_cast<float>(x[i]);
}
// Element (r, c) with r < c (upper) takes (c, r) (lower), column-major.
__global__ void mirror_lower_kernel(double* a, int64_t n) {
  for (int64_t i = thread_index(); i < n * n; i += thread_stride()) {
    const int64_t r = i % n, c = i / n;
    if (r < c) a[i] = a[c + r * n];
  }
}

}  // namespace

void widen(const float* in, double* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  widen_kernel<<<grid_for(n), kThreads, 0, stream>>>(in, out, n);
  CUDA_LAUNCH_CHECK();
}

void narrow(const double* in, float* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  narrow_kernel<<<grid_for(n), kThreads, 0, stream>>>(in, out, n);
  CUDA_LAUNCH_CHECK();
}

void round_to_float(double* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  round_to_float_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, n);
  CUDA_LAUNCH_CHECK();
}

void mirror_lower(double* a, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  mirror_lower_kernel<<<grid_for(n * n), kThreads, 0, stream>>>(a, n);
  CUDA_LAUNCH_CHECK();
}

}  // namespace cm::gpu
