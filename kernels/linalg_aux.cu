#include "cuda_check.hpp"
#include "device_util.cuh"
#include "linalg_aux_cuda.hpp"

namespace cm::gpu {
namespace {

// Element i of a rows x cols column-major block: row i % rows, column i / rows.
__global__ void widen_block_kernel(const float* src, int64_t lds, double* dst, int64_t ldd, int64_t rows,
                                   int64_t cols) {
  for (int64_t i = thread_index(); i < rows * cols; i += thread_stride()) {
    const int64_t r = i % rows, c = i / rows;
    dst[c * ldd + r] = src[c * lds + r];
  }
}
__global__ void narrow_block_kernel(const double* src, int64_t lds, float* dst, int64_t ldd, int64_t rows,
                                    int64_t cols) {
  for (int64_t i = thread_index(); i < rows * cols; i += thread_stride()) {
    const int64_t r = i % rows, c = i / rows;
    dst[c * ldd + r] = static_cast<float>(src[c * lds + r]);
  }
}
__global__ void shift_negate_kernel(double* a, int64_t lda, int64_t n, double sigma) {
  for (int64_t i = thread_index(); i < n * n; i += thread_stride()) {
    const int64_t r = i % n, c = i / n;
    if (r > c) a[c * lda + r] = -a[c * lda + r];
    if (r == c) a[c * lda + r] = sigma - a[c * lda + r];
  }
}
__global__ void scale_diagonal_kernel(double* a, int64_t lda, int64_t n, double factor) {
  for (int64_t j = thread_index(); j < n; j += thread_stride()) a[j * lda + j] *= factor;
}
__global__ void zero_upper_kernel(double* a, int64_t lda, int64_t n) {
  for (int64_t i = thread_index(); i < n * n; i += thread_stride()) {
    const int64_t r = i % n, c = i / n;
    if (r < c) a[c * lda + r] = 0.0;
  }
}
__global__ void scale_columns_kernel(double* a, int64_t lda, int64_t rows, int64_t cols, const double* scales) {
  for (int64_t i = thread_index(); i < rows * cols; i += thread_stride()) {
    const int64_t r = i % rows, c = i / rows;
    a[c * lda + r] *= scales[c];
  }
}

}  // namespace

void widen_block(const float* src, int64_t lds, double* dst, int64_t ldd, int64_t rows, int64_t cols,
                 cudaStream_t stream) {
  if (rows * cols == 0) return;
  widen_block_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(src, lds, dst, ldd, rows, cols);
  CUDA_LAUNCH_CHECK();
}

void narrow_block(const double* src, int64_t lds, float* dst, int64_t ldd, int64_t rows, int64_t cols,
                  cudaStream_t stream) {
  if (rows * cols == 0) return;
  narrow_block_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(src, lds, dst, ldd, rows, cols);
  CUDA_LAUNCH_CHECK();
}

void shift_negate(double* a, int64_t lda, int64_t n, double sigma, cudaStream_t stream) {
  if (n == 0) return;
  shift_negate_kernel<<<grid_for(n * n), kThreads, 0, stream>>>(a, lda, n, sigma);
  CUDA_LAUNCH_CHECK();
}

void scale_diagonal(double* a, int64_t lda, int64_t n, double factor, cudaStream_t stream) {
  if (n == 0) return;
  scale_diagonal_kernel<<<grid_for(n), kThreads, 0, stream>>>(a, lda, n, factor);
  CUDA_LAUNCH_CHECK();
}

void zero_upper(double* a, int64_t lda, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  zero_upper_kernel<<<grid_for(n * n), kThreads, 0, stream>>>(a, lda, n);
  CUDA_LAUNCH_CHECK();
}

void scale_columns(double* a, int64_t lda, int64_t rows, int64_t cols, const double* scales, cudaStream_t stream) {
  if (rows * cols == 0) return;
  scale_columns_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(a, lda, rows, cols, scales);
  CUDA_LAUNCH_CHECK();
}

}  // namespace cm::gpu
