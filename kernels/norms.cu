// One block per row: the moments are reduced in double, then every element goes through the CPU's own
// per-element functions (layernorm.hpp, rmsnorm.hpp).
#include "cuda_check.hpp"
#include "device_util.cuh"
#include "layernorm.hpp"
#include "norms_cuda.hpp"
#include "rmsnorm.hpp"

namespace cm::gpu {
namespace {

// y may alias x: every read of a row precedes the barrier of the last reduction, every write follows it.
__global__ void layer_norm_kernel(const float* x, const float* g, const float* b, float eps, float* y, float* xhat,
                                  int64_t d) {
  __shared__ double red[32];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * d;
  double s = 0.0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) s += xr[j];
  const double mean = block_sum(s, red) / static_cast<double>(d);
  double ss = 0.0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const double c = xr[j] - mean;
    ss += c * c;
  }
  const double rstd = layer_norm_rstd(block_sum(ss, red), d, eps);
  float* yr = y + row * d;
  float* xh = xhat ? xhat + row * d : nullptr;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
    yr[j] = layer_norm_value(xr[j], mean, rstd, g[j], b[j], xh ? xh + j : nullptr);
}

__global__ void rms_norm_kernel(const float* x, const float* g, float eps, float* y, float* xhat, int64_t d) {
  __shared__ double red[32];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * d;
  double ss = 0.0;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) ss += static_cast<double>(xr[j]) * xr[j];
  const double rstd = rms_rstd(block_sum(ss, red), d, eps);
  float* yr = y + row * d;
  float* xh = xhat ? xhat + row * d : nullptr;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x)
    yr[j] = rms_norm_value(xr[j], rstd, g[j], xh ? xh + j : nullptr);
}

}  // namespace

void layer_norm(const float* x, const float* g, const float* b, float eps, float* y, float* xhat, int64_t rows,
                int64_t d, cudaStream_t stream) {
  if (rows == 0) return;
  layer_norm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, g, b, eps, y, xhat, d);
  CUDA_LAUNCH_CHECK();
}

void rms_norm(const float* x, const float* g, float eps, float* y, float* xhat, int64_t rows, int64_t d,
              cudaStream_t stream) {
  if (rows == 0) return;
  rms_norm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, g, eps, y, xhat, d);
  CUDA_LAUNCH_CHECK();
}

}  // namespace cm::gpu
