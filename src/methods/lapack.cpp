#include "methods/lapack.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "common/error.hpp"

namespace cm {

static lapack_int dim(int64_t n) {
  CM_ASSERT(n >= 0 && n <= INT_MAX);
  return static_cast<lapack_int>(n);
}

void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
           const double* b, double beta, double* c) {
  if (m == 0 || n == 0) return;
  const lapack_int lda = dim(trans_a ? m : k), ldb = dim(trans_b ? k : n);
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, dim(m),
              dim(n), dim(k), alpha, a, lda > 0 ? lda : 1, b, ldb > 0 ? ldb : 1, beta, c, dim(n));
}

// Both routines run column-major on the row-major buffers: a symmetric matrix is its own transpose
// (row-major lower triangle = column-major upper), and a column-major [n, r] matrix is a row-major
// [r, n] one, so eigenvectors and right-hand sides come out as rows without any transposing copy.
bool symmetric_eigen(int64_t n, double* a, double* w) {
  if (n == 0) return true;
  const lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'U', dim(n), a, dim(n), w);
  CM_ASSERT(info >= 0);
  return info == 0;
}

bool solve_spd(int64_t n, double* a, int64_t nrhs, double* b) {
  if (n == 0 || nrhs == 0) return true;
  std::vector<double> rhs(b, b + n * nrhs);
  const lapack_int info = LAPACKE_dposv(LAPACK_COL_MAJOR, 'U', dim(n), dim(nrhs), a, dim(n), rhs.data(), dim(n));
  CM_ASSERT(info >= 0);
  if (info > 0) return false;
  std::copy(rhs.begin(), rhs.end(), b);
  return true;
}

std::vector<float> gram_factor_rows(const double* s, int64_t n, int64_t* rank) {
  *rank = 0;
  if (n == 0) return {};
  std::vector<double> u(s, s + n * n);  // symmetric: row-major = column-major
  std::vector<lapack_int> piv(static_cast<size_t>(n));
  lapack_int r = 0;
  const lapack_int info = LAPACKE_dpstrf(LAPACK_COL_MAJOR, 'U', dim(n), u.data(), dim(n), piv.data(), &r, -1.0);
  CM_ASSERT(info >= 0);
  // P^T S P = U^T U with (S P) column j = S column piv[j]: R = U P^T puts U's column j at column piv[j].
  std::vector<float> rows(static_cast<size_t>(r * n), 0.0f);
  for (lapack_int i = 0; i < r; ++i)
    for (int64_t j = i; j < n; ++j) rows[i * n + (piv[j] - 1)] = static_cast<float>(u[j * n + i]);
  *rank = r;
  return rows;
}

}  // namespace cm
