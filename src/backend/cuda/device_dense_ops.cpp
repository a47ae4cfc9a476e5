#include "backend/cuda/device_dense_ops.hpp"

#include <algorithm>

#include "backend/cuda/library_check.hpp"
#include "common/error.hpp"
#include "linalg_aux_cuda.hpp"

namespace cm {
namespace {

cublasOperation_t op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

// A leading dimension: at least 1, as the libraries require even for empty matrices.
int ld(int64_t v) { return std::max(1, blas_dim(v)); }

template <class T>
T* slot_memory(std::vector<DeviceBuffer<T>>& slots, int slot, int64_t count) {
  CM_ASSERT(slot >= 0 && count >= 0);
  if (static_cast<size_t>(slot) >= slots.size()) slots.resize(static_cast<size_t>(slot) + 1);
  return slots[static_cast<size_t>(slot)].get(static_cast<size_t>(std::max<int64_t>(count, 1)));
}

}  // namespace

float* DeviceDenseOps::floats(int slot, int64_t count) { return slot_memory(floats_, slot, count); }
double* DeviceDenseOps::doubles(int slot, int64_t count) { return slot_memory(doubles_, slot, count); }

const float* DeviceDenseOps::input(const float* host, int64_t count) {
  if (inputs_used_ == inputs_.size()) inputs_.emplace_back();
  return ctx_.upload(inputs_[inputs_used_++], host, static_cast<size_t>(std::max<int64_t>(count, 1)));
}

float* DeviceDenseOps::output(float* host, int64_t count) {
  return ctx_.upload(output_, host, static_cast<size_t>(std::max<int64_t>(count, 1)));
}

void DeviceDenseOps::finish_output(const float* data, float* host, int64_t count) {
  ctx_.copy_out(host, data, static_cast<size_t>(count) * sizeof(float));
}

void DeviceDenseOps::upload(const double* host, double* dst, int64_t count) {
  ctx_.copy_in(dst, host, static_cast<size_t>(count) * sizeof(double));
}

void DeviceDenseOps::download(const double* src, double* host, int64_t count) {
  ctx_.copy_out(host, src, static_cast<size_t>(count) * sizeof(double));
}

void DeviceDenseOps::copy(const double* src, double* dst, int64_t count) {
  if (count > 0 && src != dst)
    CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(count) * sizeof(double), cudaMemcpyDeviceToDevice,
                               ctx_.stream()));
}

void DeviceDenseOps::copy_block(const double* src, int64_t lds, double* dst, int64_t ldd, int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return;
  CUDA_CHECK(cudaMemcpy2DAsync(dst, static_cast<size_t>(ldd) * sizeof(double), src,
                               static_cast<size_t>(lds) * sizeof(double), static_cast<size_t>(rows) * sizeof(double),
                               static_cast<size_t>(cols), cudaMemcpyDeviceToDevice, ctx_.stream()));
}

void DeviceDenseOps::widen(const float* src, int64_t lds, double* dst, int64_t ldd, int64_t rows, int64_t cols) {
  gpu::widen_block(src, lds, dst, ldd, rows, cols, ctx_.stream());
}

void DeviceDenseOps::narrow(const double* src, int64_t lds, float* dst, int64_t ldd, int64_t rows, int64_t cols) {
  gpu::narrow_block(src, lds, dst, ldd, rows, cols, ctx_.stream());
}

void DeviceDenseOps::fill_zero(double* dst, int64_t count) {
  if (count > 0) CUDA_CHECK(cudaMemsetAsync(dst, 0, static_cast<size_t>(count) * sizeof(double), ctx_.stream()));
}

void DeviceDenseOps::sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  CUBLAS_CHECK(cublasSgemm(ctx_.blas(), op(trans_a), op(trans_b), blas_dim(m), blas_dim(n), blas_dim(k), &alpha, a,
                           ld(lda), b, ld(ldb), &beta, c, ld(ldc)));
}

void DeviceDenseOps::dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                           int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  CUBLAS_CHECK(cublasDgemm(ctx_.blas(), op(trans_a), op(trans_b), blas_dim(m), blas_dim(n), blas_dim(k), &alpha, a,
                           ld(lda), b, ld(ldb), &beta, c, ld(ldc)));
}

void DeviceDenseOps::ssyrk(bool trans, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, float beta,
                           float* c, int64_t ldc) {
  if (n == 0) return;
  CUBLAS_CHECK(cublasSsyrk(ctx_.blas(), CUBLAS_FILL_MODE_LOWER, op(trans), blas_dim(n), blas_dim(k), &alpha, a,
                           ld(lda), &beta, c, ld(ldc)));
}

void DeviceDenseOps::dsyrk(bool trans, int64_t n, int64_t k, double alpha, const double* a, int64_t lda, double beta,
                           double* c, int64_t ldc) {
  if (n == 0) return;
  CUBLAS_CHECK(cublasDsyrk(ctx_.blas(), CUBLAS_FILL_MODE_LOWER, op(trans), blas_dim(n), blas_dim(k), &alpha, a,
                           ld(lda), &beta, c, ld(ldc)));
}

// cuSOLVER has no lauum: DSYRK of the triangle as a full matrix (its strict upper triangle zeroed in a copy),
// three times lauum's flops, which a GPU does not notice at these sizes.
void DeviceDenseOps::lower_gram(int64_t n, double alpha, const double* l, int64_t ldl, double* c, int64_t ldc) {
  if (n == 0) return;
  double* t = triangle_.get(static_cast<size_t>(n * n));
  copy_block(l, ldl, t, n, n, n);
  gpu::zero_upper(t, n, n, ctx_.stream());
  dsyrk(true, n, n, alpha, t, n, 0.0, c, ldc);
}

void DeviceDenseOps::trmm_lower_trans(int64_t m, int64_t n, double alpha, const double* l, int64_t ldl, double* b,
                                      int64_t ldb) {
  if (m == 0 || n == 0) return;
  // cuBLAS's TRMM writes to a third matrix; b is staged there and copied back.
  double* out = triangle_.get(static_cast<size_t>(m * n));
  CUBLAS_CHECK(cublasDtrmm(ctx_.blas(), CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, CUBLAS_DIAG_NON_UNIT,
                           blas_dim(m), blas_dim(n), &alpha, l, ld(ldl), b, ld(ldb), out, blas_dim(m)));
  copy_block(out, m, b, ldb, m, n);
}

void DeviceDenseOps::symm(int64_t n, int64_t cols, const double* a, int64_t lda, const double* b, int64_t ldb,
                          double* c, int64_t ldc) {
  if (n == 0 || cols == 0) return;
  const double one = 1.0, zero = 0.0;
  CUBLAS_CHECK(cublasDsymm(ctx_.blas(), CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, blas_dim(n), blas_dim(cols), &one, a,
                           ld(lda), b, ld(ldb), &zero, c, ld(ldc)));
}

void DeviceDenseOps::ssymm(int64_t n, int64_t cols, const float* a, int64_t lda, const float* b, int64_t ldb,
                           float* c, int64_t ldc) {
  if (n == 0 || cols == 0) return;
  const float one = 1.0f, zero = 0.0f;
  CUBLAS_CHECK(cublasSsymm(ctx_.blas(), CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, blas_dim(n), blas_dim(cols), &one, a,
                           ld(lda), b, ld(ldb), &zero, c, ld(ldc)));
}

void DeviceDenseOps::axpy(int64_t count, double alpha, const double* x, double* y) {
  if (count > 0) CUBLAS_CHECK(cublasDaxpy(ctx_.blas(), blas_dim(count), &alpha, x, 1, y, 1));
}

void DeviceDenseOps::scale_columns(double* a, int64_t lda, int64_t rows, int64_t cols, const double* scales) {
  if (rows == 0 || cols == 0) return;
  const double* d = ctx_.upload(scales_, scales, static_cast<size_t>(cols));
  gpu::scale_columns(a, lda, rows, cols, d, ctx_.stream());
}

void DeviceDenseOps::column_norms(const double* a, int64_t lda, int64_t rows, int64_t cols, double* norms) {
  double* d = values_.get(static_cast<size_t>(std::max<int64_t>(cols, 1)));
  CUBLAS_CHECK(cublasSetPointerMode(ctx_.blas(), CUBLAS_POINTER_MODE_DEVICE));
  for (int64_t j = 0; j < cols; ++j) CUBLAS_CHECK(cublasDnrm2(ctx_.blas(), blas_dim(rows), a + j * lda, 1, d + j));
  CUBLAS_CHECK(cublasSetPointerMode(ctx_.blas(), CUBLAS_POINTER_MODE_HOST));
  ctx_.copy_out(norms, d, static_cast<size_t>(cols) * sizeof(double));
}

void DeviceDenseOps::shift_negate(double* a, int64_t lda, int64_t n, double sigma) {
  gpu::shift_negate(a, lda, n, sigma, ctx_.stream());
}

void DeviceDenseOps::scale_diagonal(double* a, int64_t lda, int64_t n, double factor) {
  gpu::scale_diagonal(a, lda, n, factor, ctx_.stream());
}

void DeviceDenseOps::zero_upper(double* a, int64_t lda, int64_t n) { gpu::zero_upper(a, lda, n, ctx_.stream()); }

int DeviceDenseOps::info() const {
  int status = 0;
  ctx_.copy_out(&status, info_.data(), sizeof status);
  return status;
}

bool DeviceDenseOps::potrf(int64_t n, double* a, int64_t lda) {
  if (n == 0) return true;
  int lwork = 0;
  CUSOLVER_CHECK(
      cusolverDnDpotrf_bufferSize(ctx_.solver(), CUBLAS_FILL_MODE_LOWER, blas_dim(n), a, ld(lda), &lwork));
  double* work = work_.get(static_cast<size_t>(std::max(lwork, 1)));
  CUSOLVER_CHECK(cusolverDnDpotrf(ctx_.solver(), CUBLAS_FILL_MODE_LOWER, blas_dim(n), a, ld(lda), work, lwork,
                                  info_.get(1)));
  const int status = info();
  CM_ASSERT(status >= 0);
  return status == 0;
}

void DeviceDenseOps::potrs(int64_t n, int64_t nrhs, const double* l, int64_t lda, double* b, int64_t ldb) {
  if (n == 0 || nrhs == 0) return;
  CUSOLVER_CHECK(cusolverDnDpotrs(ctx_.solver(), CUBLAS_FILL_MODE_LOWER, blas_dim(n), blas_dim(nrhs), l, ld(lda), b,
                                  ld(ldb), info_.get(1)));
}

bool DeviceDenseOps::eigh(int64_t m, double* a, int64_t lda, double* w) {
  if (m == 0) return true;
  double* dw = values_.get(static_cast<size_t>(m));
  int lwork = 0;
  CUSOLVER_CHECK(cusolverDnDsyevd_bufferSize(ctx_.solver(), CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER,
                                             blas_dim(m), a, ld(lda), dw, &lwork));
  double* work = work_.get(static_cast<size_t>(std::max(lwork, 1)));
  CUSOLVER_CHECK(cusolverDnDsyevd(ctx_.solver(), CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, blas_dim(m), a,
                                  ld(lda), dw, work, lwork, info_.get(1)));
  const int status = info();
  ctx_.copy_out(w, dw, static_cast<size_t>(m) * sizeof(double));
  CM_ASSERT(status >= 0);
  return status == 0;
}

// syevdx for the index range [n - count + 1, n] (1-based): the eigenvectors overwrite a's first columns.
bool DeviceDenseOps::top_eigh(int64_t n, double* a, int64_t lda, int64_t count, double* w, double* v, int64_t ldv) {
  CM_ASSERT(count >= 0 && count <= n);
  if (count == 0) return true;
  double* dw = values_.get(static_cast<size_t>(n));
  const int il = blas_dim(n - count + 1), iu = blas_dim(n);
  int found = 0, lwork = 0;
  CUSOLVER_CHECK(cusolverDnDsyevdx_bufferSize(ctx_.solver(), CUSOLVER_EIG_MODE_VECTOR, CUSOLVER_EIG_RANGE_I,
                                              CUBLAS_FILL_MODE_LOWER, blas_dim(n), a, ld(lda), 0.0, 0.0, il, iu,
                                              &found, dw, &lwork));
  double* work = work_.get(static_cast<size_t>(std::max(lwork, 1)));
  CUSOLVER_CHECK(cusolverDnDsyevdx(ctx_.solver(), CUSOLVER_EIG_MODE_VECTOR, CUSOLVER_EIG_RANGE_I,
                                   CUBLAS_FILL_MODE_LOWER, blas_dim(n), a, ld(lda), 0.0, 0.0, il, iu, &found, dw, work,
                                   lwork, info_.get(1)));
  const int status = info();
  CM_ASSERT(status >= 0);
  if (status != 0 || found != count) return false;
  copy_block(a, lda, v, ldv, n, count);
  ctx_.copy_out(w, dw, static_cast<size_t>(count) * sizeof(double));
  return true;
}

}  // namespace cm
