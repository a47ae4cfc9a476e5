#include "convert_cuda.hpp"
#include "cuda_check.hpp"
#include "device_util.cuh"
#include "dtype_convert.hpp"

namespace cm::gpu {
namespace {

__global__ void to_bf16_kernel(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) out[i] = float_to_bf16(in[i]);
}
__global__ void from_bf16_kernel(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) out[i] = bf16_to_float(in[i]);
}
__global__ void to_f16_kernel(const float* in, uint16_t* out, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) out[i] = float_to_f16(in[i]);
}
__global__ void from_f16_kernel(const uint16_t* in, float* out, int64_t n) {
  for (int64_t i = thread_index(); i < n; i += thread_stride()) out[i] = f16_to_float(in[i]);
}

template <class Kernel, class In, class Out>
void launch(Kernel kernel, const In* in, Out* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  kernel<<<grid_for(n), kThreads, 0, stream>>>(in, out, n);
  CUDA_LAUNCH_CHECK();
}

}  // namespace

void to_bf16(const float* in, uint16_t* out, int64_t n, cudaStream_t s) { launch(to_bf16_kernel, in, out, n, s); }
void from_bf16(const uint16_t* in, float* out, int64_t n, cudaStream_t s) { launch(from_bf16_kernel, in, out, n, s); }
void to_f16(const float* in, uint16_t* out, int64_t n, cudaStream_t s) { launch(to_f16_kernel, in, out, n, s); }
void from_f16(const uint16_t* in, float* out, int64_t n, cudaStream_t s) { launch(from_f16_kernel, in, out, n, s); }

}  // namespace cm::gpu
