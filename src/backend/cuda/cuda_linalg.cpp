#include "backend/cuda/cuda_linalg.hpp"

#include <algorithm>
#include <string>

#include "backend/cuda/device_conflict_ops.hpp"
#include "backend/cuda/library_check.hpp"
#include "common/error.hpp"
#include "linalg_aux_cuda.hpp"

namespace cm {

void CudaLinalg::lap(StepTimer& timer, double ConflictTimes::*field, const ConflictProblem& p) {
  if (!p.times) return;
  ctx_.sync();
  timer.lap(field);
}

// rows [n, dim] row-major is X^T column-major: S = X^T X is DSYRK (N) of that view, lower triangle, mirrored
// on the GPU so that the download is the full symmetric matrix, then added to the host's running sum.
void CudaLinalg::add_gram(const float* rows, int64_t n, int64_t dim, double* gram) {
  if (n == 0) return;
  const size_t count = static_cast<size_t>(n * dim);
  const float* df = ctx_.upload(f_, rows, count);
  double* x = a_.get(count);
  gpu::widen(df, x, static_cast<int64_t>(count), ctx_.stream());
  double* s = g_.get(static_cast<size_t>(dim * dim));
  const double one = 1.0, zero = 0.0;
  CUBLAS_CHECK(cublasDsyrk(ctx_.blas(), CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, blas_dim(dim), blas_dim(n), &one, x,
                           blas_dim(dim), &zero, s, blas_dim(dim)));
  gpu::mirror_lower(s, dim, ctx_.stream());
  std::vector<double> add(static_cast<size_t>(dim * dim));
  ctx_.copy_out(add.data(), s, add.size() * sizeof(double));
  for (size_t i = 0; i < add.size(); ++i) gram[i] += add[i];
}

void CudaLinalg::upload_problem(const ConflictProblem& p) {
  const size_t K = p.num_tasks(), tn = static_cast<size_t>(p.out * p.in), sn = static_cast<size_t>(p.in * p.in);
  CM_ASSERT(p.tasks != nullptr && p.tasks->size() == K);
  double* t = t_.get(K * tn);
  double* s = s_.get(K * sn);
  float* f = f_.get(tn);
  for (size_t i = 0; i < K; ++i) {
    CM_ASSERT((*p.tasks)[i].size() == tn);
    ctx_.copy_in(f, (*p.tasks)[i].data(), tn * sizeof(float));
    gpu::widen(f, t + i * tn, static_cast<int64_t>(tn), ctx_.stream());
    ctx_.copy_in(s + i * sn, p.grams[i], sn * sizeof(double));
  }
}

// Column-major views: T_i is T_i^T [in, out] (ld in). G_k = sum_{i != k} T_i M_i T_i^T, M_i = S_k - lambda S_i,
// as sum_i 0.5 (T_i P_i^T + P_i T_i^T) with P_i = T_i M_i: DSYR2K writes that symmetric part directly, which is
// what the CPU's explicit symmetrisation computes.
double* CudaLinalg::form_gram(const ConflictProblem& p, size_t k) {
  const int out = blas_dim(p.out), in = blas_dim(p.in);
  const int64_t tn = p.out * p.in, sn = p.in * p.in;
  double* g = g_.get(static_cast<size_t>(p.out * p.out));
  double* m = m_.get(static_cast<size_t>(sn));
  double* prod = p_.get(static_cast<size_t>(tn));
  const double* t = t_.data();
  const double* s = s_.data();
  const double one = 1.0, zero = 0.0, half = 0.5, neg_lambda = -p.lambda;
  const cublasHandle_t h = ctx_.blas();
  bool first = true;
  for (size_t i = 0; i < p.num_tasks(); ++i) {
    if (i == k) continue;
    const double* ti = t + i * tn;
    CUBLAS_CHECK(
        cublasDgeam(h, CUBLAS_OP_N, CUBLAS_OP_N, in, in, &one, s + k * sn, in, &neg_lambda, s + i * sn, in, m, in));
    CUBLAS_CHECK(cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, in, out, in, &one, m, in, ti, in, &zero, prod, in));
    CUBLAS_CHECK(cublasDsyr2k(h, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, out, in, &half, ti, in, prod, in,
                              first ? &zero : &one, g, out));
    first = false;
  }
  if (first) CUDA_CHECK(cudaMemsetAsync(g, 0, static_cast<size_t>(p.out * p.out) * sizeof(double), ctx_.stream()));
  return g;
}

std::vector<double> CudaLinalg::conflict_gram(const ConflictProblem& p, size_t k) {
  upload_problem(p);
  double* g = form_gram(p, k);
  gpu::mirror_lower(g, p.out, ctx_.stream());
  std::vector<double> full(static_cast<size_t>(p.out * p.out));  // symmetric: column-major = row-major
  ctx_.copy_out(full.data(), g, full.size() * sizeof(double));
  return full;
}

Basis CudaLinalg::dense_basis(const ConflictProblem& p, size_t k, int c) {
  StepTimer timer(p.times);
  double* g = form_gram(p, k);
  lap(timer, &ConflictTimes::gram, p);
  const int out = blas_dim(p.out);
  double* w = w_.get(static_cast<size_t>(p.out));
  int lwork = 0;
  CUSOLVER_CHECK(cusolverDnDsyevd_bufferSize(ctx_.solver(), CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, out, g,
                                             out, w, &lwork));
  double* work = work_.get(static_cast<size_t>(std::max(lwork, 1)));
  int* info = info_.get(1);
  CUSOLVER_CHECK(cusolverDnDsyevd(ctx_.solver(), CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, out, g, out, w, work,
                                  lwork, info));
  int status = 0;
  ctx_.copy_out(&status, info, sizeof status);
  if (status != 0) fail(p.where, "cat: the eigensolver did not converge for task " + std::to_string(k + 1));
  // Eigenvector j is column j, contiguous: the top ones are the last columns.
  const int64_t top = std::min<int64_t>(c, p.out);
  std::vector<double> values(static_cast<size_t>(top)), vectors(static_cast<size_t>(top * p.out));
  ctx_.copy_out(values.data(), w + (p.out - top), values.size() * sizeof(double));
  ctx_.copy_out(vectors.data(), g + (p.out - top) * p.out, vectors.size() * sizeof(double));
  lap(timer, &ConflictTimes::bases, p);
  return positive_top_basis(values.data(), vectors.data(), top, p.out, c);
}

std::vector<Basis> CudaLinalg::top_eigvecs(const ConflictProblem& p, int c) {
  std::vector<Basis> bases(p.num_tasks());
  if (c <= 0) return bases;
  upload_problem(p);
  if (choose_basis_solver(p.out, c, o_) == BasisSolver::Dense) {
    for (size_t k = 0; k < bases.size(); ++k) bases[k] = dense_basis(p, k, c);
    return bases;
  }
  DeviceConflictOps ops(ctx_, t_.data(), s_.data(), p.out, p.in, static_cast<int>(p.num_tasks()), p.lambda);
  for (size_t k = 0; k < bases.size(); ++k) {
    StepTimer timer(p.times);
    ops.set_task(static_cast<int>(k));
    const BlockEigenResult r = block_top_eigen(ops, static_cast<int>(std::min<int64_t>(c, p.out)), o_.block);
    lap(timer, &ConflictTimes::bases, p);
    bases[k] = r.converged ? positive_top_basis(r.values.data(), r.vectors.data(),
                                                static_cast<int64_t>(r.values.size()), p.out, c)
                           : dense_basis(p, k, c);
  }
  return bases;
}

// Column-major: T_i is T_i^T [in, out], B_k (rows [cols, out]) is [out, cols]. T_i^T <- T_i^T - (T_i^T B_k) B_k^T.
void CudaLinalg::project(const std::vector<Basis>& bases, int64_t out, int64_t in, TaskVectors& tasks) {
  const size_t K = tasks.size(), tn = static_cast<size_t>(out * in);
  CM_ASSERT(bases.size() == K);
  std::vector<size_t> offset(K + 1, 0);
  for (size_t k = 0; k < K; ++k) offset[k + 1] = offset[k] + bases[k].rows.size();
  double* b = b_.get(std::max<size_t>(offset[K], 1));
  for (size_t k = 0; k < K; ++k)
    ctx_.copy_in(b + offset[k], bases[k].rows.data(), bases[k].rows.size() * sizeof(double));
  double* t = t_.get(tn);
  float* f = f_.get(tn);
  int64_t max_cols = 0;
  for (const Basis& basis : bases) max_cols = std::max(max_cols, basis.cols);
  double* coef = c_.get(static_cast<size_t>(std::max<int64_t>(in * max_cols, 1)));
  const double one = 1.0, zero = 0.0, minus = -1.0;
  for (size_t i = 0; i < K; ++i) {
    CM_ASSERT(tasks[i].size() == tn);
    ctx_.copy_in(f, tasks[i].data(), tn * sizeof(float));
    gpu::widen(f, t, static_cast<int64_t>(tn), ctx_.stream());
    for (size_t k = 0; k < K; ++k) {  // ascending k
      const int c = blas_dim(bases[k].cols);
      if (k == i || c == 0) continue;
      CUBLAS_CHECK(cublasDgemm(ctx_.blas(), CUBLAS_OP_N, CUBLAS_OP_N, blas_dim(in), c, blas_dim(out), &one, t,
                               blas_dim(in), b + offset[k], blas_dim(out), &zero, coef, blas_dim(in)));
      CUBLAS_CHECK(cublasDgemm(ctx_.blas(), CUBLAS_OP_N, CUBLAS_OP_T, blas_dim(in), blas_dim(out), c, &minus, coef,
                               blas_dim(in), b + offset[k], blas_dim(out), &one, t, blas_dim(in)));
      gpu::round_to_float(t, static_cast<int64_t>(tn), ctx_.stream());  // T_i is float32 between projections
    }
    gpu::narrow(t, f, static_cast<int64_t>(tn), ctx_.stream());
    ctx_.copy_out(tasks[i].data(), f, tn * sizeof(float));
  }
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
