#include "activations.hpp"
#include "activations_cuda.hpp"
#include "cuda_check.hpp"
#include "device_util.cuh"

namespace cm::gpu {
namespace {

__global__ void gelu_kernel(float* x, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) x[i] = cm::gelu(x[i]);
}

__global__ void quick_gelu_kernel(float* x, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) x[i] = cm::quick_gelu(x[i]);
}

__global__ void silu_gate_kernel(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) out[i] = cm::silu_gate(gate[i], up[i]);
}

}  // namespace

void gelu(float* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  gelu_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, n);
  CUDA_LAUNCH_CHECK();
}

void quick_gelu(float* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  quick_gelu_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, n);
  CUDA_LAUNCH_CHECK();
}

void silu_gate(const float* gate, const float* up, float* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  silu_gate_kernel<<<grid_for(n), kThreads, 0, stream>>>(gate, up, out, n);
  CUDA_LAUNCH_CHECK();
}

}  // namespace cm::gpu
