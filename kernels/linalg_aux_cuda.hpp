#pragma once
// Element steps of DeviceDenseOps (linalg_aux.cu), the device twins of HostDenseOps' loops
// (methods/host_dense_ops.cpp): widening and narrowing a column-major block, the triangle and diagonal
// edits of the removal-basis solve, and per-column scaling. Device pointers, column-major, leading dimensions.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cm::gpu {

void widen_block(const float* src, int64_t lds, double* dst, int64_t ldd, int64_t rows, int64_t cols,
                 cudaStream_t stream);
void narrow_block(const double* src, int64_t lds, float* dst, int64_t ldd, int64_t rows, int64_t cols,
                  cudaStream_t stream);
// The lower triangle of the n x n a becomes sigma I - a.
void shift_negate(double* a, int64_t lda, int64_t n, double sigma, cudaStream_t stream);
void scale_diagonal(double* a, int64_t lda, int64_t n, double factor, cudaStream_t stream);
void zero_upper(double* a, int64_t lda, int64_t n, cudaStream_t stream);
// Column j of the rows x cols a times scales[j] (device memory).
void scale_columns(double* a, int64_t lda, int64_t rows, int64_t cols, const double* scales, cudaStream_t stream);

}  // namespace cm::gpu
