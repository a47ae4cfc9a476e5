#include "methods/host_dense_ops.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include "common/error.hpp"

namespace cm {
namespace {

// CBLAS and LAPACKE take 32-bit sizes in this build.
int dim(int64_t v) {
  CM_ASSERT(v >= 0 && v <= INT_MAX);
  return static_cast<int>(v);
}

// A leading dimension: at least 1, as the libraries require even for empty matrices.
int ld(int64_t v) { return std::max(1, dim(v)); }

CBLAS_TRANSPOSE op(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

template <class T>
T* slot_memory(std::vector<std::vector<T>>& slots, int slot, int64_t count) {
  CM_ASSERT(slot >= 0 && count >= 0);
  if (static_cast<size_t>(slot) >= slots.size()) slots.resize(static_cast<size_t>(slot) + 1);
  std::vector<T>& s = slots[static_cast<size_t>(slot)];
  const size_t want = static_cast<size_t>(std::max<int64_t>(count, 1));
  if (s.size() < want) s.assign(want, T(0));
  return s.data();
}

}  // namespace

float* HostDenseOps::floats(int slot, int64_t count) { return slot_memory(floats_, slot, count); }

int64_t HostDenseOps::slot_bytes() const {
  int64_t bytes = 0;
  for (const auto& s : floats_) bytes += static_cast<int64_t>(s.capacity() * sizeof(float));
  for (const auto& s : doubles_) bytes += static_cast<int64_t>(s.capacity() * sizeof(double));
  return bytes;
}

void HostDenseOps::release_slots() {
  floats_ = {};
  doubles_ = {};
}
double* HostDenseOps::doubles(int slot, int64_t count) { return slot_memory(doubles_, slot, count); }

void HostDenseOps::copy(const double* src, double* dst, int64_t count) {
  if (count > 0 && src != dst) std::memmove(dst, src, static_cast<size_t>(count) * sizeof(double));
}

void HostDenseOps::copy_block(const double* src, int64_t lds, double* dst, int64_t ldd, int64_t rows, int64_t cols) {
  for (int64_t j = 0; j < cols; ++j) std::copy(src + j * lds, src + j * lds + rows, dst + j * ldd);
}

void HostDenseOps::widen(const float* src, int64_t lds, double* dst, int64_t ldd, int64_t rows, int64_t cols) {
  for (int64_t j = 0; j < cols; ++j) std::copy(src + j * lds, src + j * lds + rows, dst + j * ldd);
}

void HostDenseOps::narrow(const double* src, int64_t lds, float* dst, int64_t ldd, int64_t rows, int64_t cols) {
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t i = 0; i < rows; ++i) dst[j * ldd + i] = static_cast<float>(src[j * lds + i]);
}

void HostDenseOps::fill_zero(double* dst, int64_t count) { std::fill(dst, dst + count, 0.0); }

void HostDenseOps::sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                         int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasColMajor, op(trans_a), op(trans_b), dim(m), dim(n), dim(k), alpha, a, ld(lda), b, ld(ldb), beta, c,
              ld(ldc));
}

void HostDenseOps::dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                         int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasColMajor, op(trans_a), op(trans_b), dim(m), dim(n), dim(k), alpha, a, ld(lda), b, ld(ldb), beta, c,
              ld(ldc));
}

void HostDenseOps::ssyrk(bool trans, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, float beta,
                         float* c, int64_t ldc) {
  if (n == 0) return;
  cblas_ssyrk(CblasColMajor, CblasLower, op(trans), dim(n), dim(k), alpha, a, ld(lda), beta, c, ld(ldc));
}

void HostDenseOps::dsyrk(bool trans, int64_t n, int64_t k, double alpha, const double* a, int64_t lda, double beta,
                         double* c, int64_t ldc) {
  if (n == 0) return;
  cblas_dsyrk(CblasColMajor, CblasLower, op(trans), dim(n), dim(k), alpha, a, ld(lda), beta, c, ld(ldc));
}

// dlauum computes L^T L in place: on a copy of l's lower triangle in c, then scaled.
void HostDenseOps::lower_gram(int64_t n, double alpha, const double* l, int64_t ldl, double* c, int64_t ldc) {
  if (n == 0) return;
  for (int64_t j = 0; j < n; ++j) std::copy(l + j * ldl + j, l + j * ldl + n, c + j * ldc + j);
  const lapack_int info = LAPACKE_dlauum(LAPACK_COL_MAJOR, 'L', dim(n), c, ld(ldc));
  CM_ASSERT(info == 0);
  if (alpha != 1.0)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t i = j; i < n; ++i) c[j * ldc + i] *= alpha;
}

void HostDenseOps::trmm_lower_trans(int64_t m, int64_t n, double alpha, const double* l, int64_t ldl, double* b,
                                    int64_t ldb) {
  if (m == 0 || n == 0) return;
  cblas_dtrmm(CblasColMajor, CblasLeft, CblasLower, CblasTrans, CblasNonUnit, dim(m), dim(n), alpha, l, ld(ldl), b,
              ld(ldb));
}

void HostDenseOps::symm(int64_t n, int64_t cols, const double* a, int64_t lda, const double* b, int64_t ldb,
                        double* c, int64_t ldc) {
  if (n == 0 || cols == 0) return;
  cblas_dsymm(CblasColMajor, CblasLeft, CblasLower, dim(n), dim(cols), 1.0, a, ld(lda), b, ld(ldb), 0.0, c, ld(ldc));
}

void HostDenseOps::ssymm(int64_t n, int64_t cols, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                         int64_t ldc) {
  if (n == 0 || cols == 0) return;
  // One column (the Lanczos probe) as a matrix-vector product: ssymm would pack all of a for it.
  if (cols == 1) return cblas_ssymv(CblasColMajor, CblasLower, dim(n), 1.0f, a, ld(lda), b, 1, 0.0f, c, 1);
  cblas_ssymm(CblasColMajor, CblasLeft, CblasLower, dim(n), dim(cols), 1.0f, a, ld(lda), b, ld(ldb), 0.0f, c, ld(ldc));
}

void HostDenseOps::axpy(int64_t count, double alpha, const double* x, double* y) {
  for (int64_t i = 0; i < count; ++i) y[i] += alpha * x[i];
}

void HostDenseOps::scale_columns(double* a, int64_t lda, int64_t rows, int64_t cols, const double* scales) {
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t i = 0; i < rows; ++i) a[j * lda + i] *= scales[j];
}

void HostDenseOps::column_norms(const double* a, int64_t lda, int64_t rows, int64_t cols, double* norms) {
  for (int64_t j = 0; j < cols; ++j) norms[j] = rows > 0 ? cblas_dnrm2(dim(rows), a + j * lda, 1) : 0.0;
}

void HostDenseOps::shift_negate(double* a, int64_t lda, int64_t n, double sigma) {
  for (int64_t j = 0; j < n; ++j) {
    double* col = a + j * lda;
    col[j] = sigma - col[j];
    for (int64_t i = j + 1; i < n; ++i) col[i] = -col[i];
  }
}

void HostDenseOps::scale_diagonal(double* a, int64_t lda, int64_t n, double factor) {
  for (int64_t j = 0; j < n; ++j) a[j * lda + j] *= factor;
}

void HostDenseOps::zero_upper(double* a, int64_t lda, int64_t n) {
  for (int64_t j = 1; j < n; ++j) std::fill(a + j * lda, a + j * lda + j, 0.0);
}

bool HostDenseOps::potrf(int64_t n, double* a, int64_t lda) {
  if (n == 0) return true;
  const lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', dim(n), a, ld(lda));
  CM_ASSERT(info >= 0);
  return info == 0;
}

void HostDenseOps::potrs(int64_t n, int64_t nrhs, const double* l, int64_t lda, double* b, int64_t ldb) {
  if (n == 0 || nrhs == 0) return;
  // The _work form: plain LAPACKE scans l for NaNs on every call, as long as the solve itself for a few columns.
  const lapack_int info = LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, 'L', dim(n), dim(nrhs), l, ld(lda), b, ld(ldb));
  CM_ASSERT(info == 0);
}

bool HostDenseOps::eigh(int64_t m, double* a, int64_t lda, double* w) {
  if (m == 0) return true;
  const lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', dim(m), a, ld(lda), w);
  CM_ASSERT(info >= 0);
  return info == 0;
}

// MRRR (dsyevr) for the index range [n - count + 1, n]: the tridiagonal reduction, then only the wanted pairs.
bool HostDenseOps::top_eigh(int64_t n, double* a, int64_t lda, int64_t count, double* w, double* v, int64_t ldv) {
  CM_ASSERT(count >= 0 && count <= n);
  if (count == 0) return true;
  std::vector<double> values(static_cast<size_t>(n));
  std::vector<lapack_int> support(static_cast<size_t>(2 * n));
  lapack_int found = 0;
  const lapack_int info =
      LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'V', 'I', 'L', dim(n), a, ld(lda), 0.0, 0.0, dim(n - count + 1), dim(n), 0.0,
                     &found, values.data(), v, ld(ldv), support.data());
  CM_ASSERT(info >= 0);
  if (info != 0 || found != count) return false;
  std::copy(values.begin(), values.begin() + count, w);
  return true;
}

OneBlasThread::OneBlasThread() : before_(openblas_get_num_threads()) { openblas_set_num_threads(1); }
OneBlasThread::~OneBlasThread() { openblas_set_num_threads(before_); }

}  // namespace cm
