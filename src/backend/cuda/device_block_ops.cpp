#include "backend/cuda/device_block_ops.hpp"

#include "backend/cuda/library_check.hpp"
#include "common/error.hpp"

namespace cm {

double* DeviceBlockOps::scratch(int slot, int64_t count) {
  CM_ASSERT(slot >= 0 && count >= 0);
  if (static_cast<size_t>(slot) >= slots_.size()) slots_.resize(static_cast<size_t>(slot) + 1);
  return slots_[static_cast<size_t>(slot)].get(static_cast<size_t>(count > 0 ? count : 1));
}

void DeviceBlockOps::gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                          int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  CUBLAS_CHECK(cublasDgemm(ctx_.blas(), trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                           blas_dim(m), blas_dim(n), blas_dim(k), &alpha, a, blas_dim(lda), b, blas_dim(ldb), &beta, c,
                           blas_dim(ldc)));
}

bool DeviceBlockOps::eigh(int64_t m, double* a, int64_t lda, double* w) {
  if (m == 0) return true;
  double* dw = w_.get(static_cast<size_t>(m));
  int lwork = 0;
  CUSOLVER_CHECK(cusolverDnDsyevd_bufferSize(ctx_.solver(), CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER,
                                             blas_dim(m), a, blas_dim(lda), dw, &lwork));
  double* work = work_.get(static_cast<size_t>(lwork > 0 ? lwork : 1));
  int* info = info_.get(1);
  CUSOLVER_CHECK(cusolverDnDsyevd(ctx_.solver(), CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, blas_dim(m), a,
                                  blas_dim(lda), dw, work, lwork, info));
  int status = 0;
  ctx_.copy_out(&status, info, sizeof status);
  ctx_.copy_out(w, dw, static_cast<size_t>(m) * sizeof(double));
  CM_ASSERT(status >= 0);
  return status == 0;
}

void DeviceBlockOps::scale_columns(double* a, int64_t lda, int64_t rows, int64_t cols, const double* scales) {
  for (int64_t j = 0; j < cols; ++j) CUBLAS_CHECK(cublasDscal(ctx_.blas(), blas_dim(rows), &scales[j], a + j * lda, 1));
}

void DeviceBlockOps::copy(const double* src, double* dst, int64_t count) {
  if (count > 0)
    CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(count) * sizeof(double), cudaMemcpyDeviceToDevice,
                               ctx_.stream()));
}

void DeviceBlockOps::upload(const double* host, double* dst, int64_t count) {
  ctx_.copy_in(dst, host, static_cast<size_t>(count) * sizeof(double));
}

void DeviceBlockOps::download(const double* src, double* host, int64_t count) {
  ctx_.copy_out(host, src, static_cast<size_t>(count) * sizeof(double));
}

}  // namespace cm
