#include "backend/cuda/cuda_linalg.hpp"

#include <algorithm>
#include <string>

#include "backend/cuda/library_check.hpp"
#include "common/error.hpp"
#include "methods/conflict_timer.hpp"

namespace cm {

std::vector<Basis> CudaLinalg::top_eigvecs(const ConflictProblem& p, int c, ConflictStats* stats) {
  std::vector<Basis> bases(p.num_tasks());
  if (c <= 0 || p.num_tasks() < 2) return bases;
  const ConflictBases solver(ops_, p, o_.conflict, stats);
  StepTimer timer(stats);
  for (size_t k = 0; k < bases.size(); ++k) bases[k] = solver.basis(ops_, k, c, stats);
  timer.lap(&ConflictStats::bases);  // basis() downloads its result: the GPU is done with the task
  return bases;
}

void CudaLinalg::project(const std::vector<Basis>& bases, int64_t out, int64_t in, TaskVectors& tasks) {
  for (size_t i = 0; i < tasks.size(); ++i) project_off_bases(ops_, bases, out, in, tasks[i], i);
}

// Row-major c = op(a) op(b) is column-major c^T = op(b)^T op(a)^T, and a row-major buffer is the column-major
// transpose: the operands swap, the transposition flags stay (as lapack.cpp's dgemm).
void CudaLinalg::dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                       const double* b, double beta, double* c) {
  if (m == 0 || n == 0) return;
  const double* da = ctx_.upload(a_, a, static_cast<size_t>(m * k));
  const double* db = ctx_.upload(b_, b, static_cast<size_t>(k * n));
  double* dc = c_.get(static_cast<size_t>(m * n));
  if (beta != 0.0) ctx_.copy_in(dc, c, static_cast<size_t>(m * n) * sizeof(double));
  const int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
  CUBLAS_CHECK(cublasDgemm(ctx_.blas(), trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
                           blas_dim(n), blas_dim(m), blas_dim(k), &alpha, db, blas_dim(std::max<int64_t>(ldb, 1)), da,
                           blas_dim(std::max<int64_t>(lda, 1)), &beta, dc, blas_dim(n)));
  ctx_.copy_out(c, dc, static_cast<size_t>(m * n) * sizeof(double));
}

// The rows of b [nrhs, n] are the columns of a column-major [n, nrhs]; a is symmetric.
bool CudaLinalg::solve_spd(int64_t n, double* a, int64_t nrhs, double* b) {
  if (n == 0 || nrhs == 0) return true;
  double* da = ctx_.upload(a_, a, static_cast<size_t>(n * n));
  double* db = ctx_.upload(b_, b, static_cast<size_t>(n * nrhs));
  int lwork = 0;
  CUSOLVER_CHECK(
      cusolverDnDpotrf_bufferSize(ctx_.solver(), CUBLAS_FILL_MODE_LOWER, blas_dim(n), da, blas_dim(n), &lwork));
  double* work = work_.get(static_cast<size_t>(std::max(lwork, 1)));
  int* info = info_.get(1);
  CUSOLVER_CHECK(
      cusolverDnDpotrf(ctx_.solver(), CUBLAS_FILL_MODE_LOWER, blas_dim(n), da, blas_dim(n), work, lwork, info));
  int status = 0;
  ctx_.copy_out(&status, info, sizeof status);
  CM_ASSERT(status >= 0);
  if (status > 0) return false;
  CUSOLVER_CHECK(cusolverDnDpotrs(ctx_.solver(), CUBLAS_FILL_MODE_LOWER, blas_dim(n), blas_dim(nrhs), da, blas_dim(n),
                                  db, blas_dim(n), info));
  ctx_.copy_out(&status, info, sizeof status);
  CM_ASSERT(status == 0);
  ctx_.copy_out(b, db, static_cast<size_t>(n * nrhs) * sizeof(double));
  return true;
}

}  // namespace cm
