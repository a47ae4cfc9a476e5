#include "methods/host_block_ops.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <climits>

#include "common/error.hpp"

namespace cm {
namespace {

lapack_int lp(int64_t n) {
  CM_ASSERT(n >= 0 && n <= INT_MAX);
  return static_cast<lapack_int>(n);
}

}  // namespace

double* HostBlockOps::scratch(int slot, int64_t count) {
  CM_ASSERT(slot >= 0 && count >= 0);
  if (static_cast<size_t>(slot) >= slots_.size()) slots_.resize(static_cast<size_t>(slot) + 1);
  std::vector<double>& s = slots_[static_cast<size_t>(slot)];
  if (s.size() < static_cast<size_t>(count)) s.assign(static_cast<size_t>(count), 0.0);
  return s.data();
}

void HostBlockOps::gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                        int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasColMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, lp(m), lp(n),
              lp(k), alpha, a, lp(lda), b, lp(ldb), beta, c, lp(ldc));
}

bool HostBlockOps::eigh(int64_t m, double* a, int64_t lda, double* w) {
  if (m == 0) return true;
  const lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', lp(m), a, lp(lda), w);
  CM_ASSERT(info >= 0);
  return info == 0;
}

void HostBlockOps::scale_columns(double* a, int64_t lda, int64_t rows, int64_t cols, const double* scales) {
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t i = 0; i < rows; ++i) a[j * lda + i] *= scales[j];
}

void HostBlockOps::copy(const double* src, double* dst, int64_t count) { std::copy(src, src + count, dst); }

}  // namespace cm
