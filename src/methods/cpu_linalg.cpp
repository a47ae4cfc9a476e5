// The CPU Linalg: CBLAS and LAPACKE in float64 (methods/lapack.hpp), the reference for every device.
#include <cblas.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "methods/conflict_timer.hpp"
#include "methods/host_conflict_ops.hpp"
#include "methods/lapack.hpp"
#include "methods/linalg.hpp"

namespace cm {
namespace {

using Wide = std::vector<std::vector<double>>;  // task vectors widened to float64

// Feature rows are widened to double a block at a time, so a large batch never needs a full float64 copy.
constexpr int64_t kBlockRows = 1024;

// Up to this order a basis problem (G_k, the block solver's small products, LAPACK's tridiagonal steps) runs
// as fast on one BLAS thread as on several, and many times faster when other processes share the cores:
// OpenBLAS threads spin waiting for each other (zoo CAT merge beside a 2-thread job: bases 5.8 s on 2
// threads, 0.55 s on 1).
constexpr int64_t kOneThreadBasisOrder = 512;

// Runs its scope on one OpenBLAS thread and restores the previous count.
class OneBlasThread {
 public:
  OneBlasThread() : before_(openblas_get_num_threads()) { openblas_set_num_threads(1); }
  ~OneBlasThread() { openblas_set_num_threads(before_); }
  OneBlasThread(const OneBlasThread&) = delete;
  OneBlasThread& operator=(const OneBlasThread&) = delete;

 private:
  int before_;
};

// OpenBLAS takes blasint (32-bit in this build) sizes.
blasint blas(int64_t v) {
  CM_ASSERT(v >= 0 && v <= std::numeric_limits<blasint>::max());
  return static_cast<blasint>(v);
}

Wide widen(const ConflictProblem& p) {
  CM_ASSERT(p.tasks != nullptr && p.tasks->size() == p.num_tasks());
  Wide t(p.num_tasks());
  for (size_t i = 0; i < t.size(); ++i) {
    CM_ASSERT(static_cast<int64_t>((*p.tasks)[i].size()) == p.out * p.in);
    t[i].assign((*p.tasks)[i].begin(), (*p.tasks)[i].end());
  }
  return t;
}

class CpuLinalg : public Linalg {
 public:
  explicit CpuLinalg(const LinalgOptions& options) : o_(options) {}
  const char* name() const override { return "cpu"; }

  void add_gram(const float* rows, int64_t n, int64_t dim, double* gram) override {
    std::vector<double> x(static_cast<size_t>(std::min(n, kBlockRows) * dim));
    for (int64_t r0 = 0; r0 < n; r0 += kBlockRows) {
      const int64_t nb = std::min(kBlockRows, n - r0);
      std::copy(rows + r0 * dim, rows + (r0 + nb) * dim, x.begin());
      // dsyrk updates the upper triangle only (half the work of a full dgemm).
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, blas(dim), blas(nb), 1.0, x.data(), blas(dim), 1.0, gram,
                  blas(dim));
    }
    // Readers get the full symmetric matrix: mirror the upper triangle after every update.
    for (int64_t i = 0; i < dim; ++i)
      for (int64_t j = i + 1; j < dim; ++j) gram[j * dim + i] = gram[i * dim + j];
  }

  std::vector<double> conflict_gram(const ConflictProblem& p, size_t k) override { return gram(widen(p), p, k); }

  std::vector<Basis> top_eigvecs(const ConflictProblem& p, int c) override {
    std::vector<Basis> bases(p.num_tasks());
    if (c <= 0) return bases;
    const Wide t = widen(p);
    const bool block = choose_basis_solver(p.out, c, o_) == BasisSolver::Block;
    std::optional<OneBlasThread> one_thread;
    if (p.out <= kOneThreadBasisOrder) one_thread.emplace();
    for (size_t k = 0; k < bases.size(); ++k) bases[k] = block ? block_basis(t, p, k, c) : dense_basis(t, p, k, c);
    return bases;
  }

  void project(const std::vector<Basis>& bases, int64_t out, int64_t in, TaskVectors& tasks) override {
    const size_t K = tasks.size();
    CM_ASSERT(bases.size() == K);
    std::vector<double> t, coef;
    for (size_t i = 0; i < K; ++i) {
      t.assign(tasks[i].begin(), tasks[i].end());
      for (size_t k = 0; k < K; ++k) {  // ascending k
        const int64_t c = bases[k].cols;
        if (k == i || c == 0) continue;
        coef.assign(static_cast<size_t>(c * in), 0.0);
        cm::dgemm(false, false, c, in, out, 1.0, bases[k].rows.data(), t.data(), 0.0, coef.data());  // B_k^T T_i
        cm::dgemm(true, false, out, in, c, -1.0, bases[k].rows.data(), coef.data(), 1.0, t.data());  // T_i -= B_k (..)
        for (double& x : t) x = static_cast<float>(x);
      }
      for (size_t j = 0; j < t.size(); ++j) tasks[i][j] = static_cast<float>(t[j]);
    }
  }

  void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
             const double* b, double beta, double* c) override {
    cm::dgemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c);
  }

  bool solve_spd(int64_t n, double* a, int64_t nrhs, double* b) override { return cm::solve_spd(n, a, nrhs, b); }

 private:
  static std::vector<double> gram(const Wide& t, const ConflictProblem& p, size_t k) {
    const int64_t out = p.out, in = p.in;
    const double* s_k = p.grams[k];
    std::vector<double> g(static_cast<size_t>(out * out), 0.0), m(static_cast<size_t>(in * in)),
        prod(static_cast<size_t>(out * in));
    for (size_t i = 0; i < t.size(); ++i) {
      if (i == k) continue;
      const double* s_i = p.grams[i];
      for (int64_t j = 0; j < in * in; ++j) m[j] = s_k[j] - p.lambda * s_i[j];
      cm::dgemm(false, false, out, in, in, 1.0, t[i].data(), m.data(), 0.0, prod.data());  // T_i (S_k - lambda S_i)
      cm::dgemm(false, true, out, out, in, 1.0, prod.data(), t[i].data(), 1.0, g.data());  // ... T_i^T
    }
    // G_k is symmetric in exact arithmetic; make it so in floating point before the symmetric solver.
    for (int64_t r = 0; r < out; ++r)
      for (int64_t c = r + 1; c < out; ++c) g[r * out + c] = g[c * out + r] = 0.5 * (g[r * out + c] + g[c * out + r]);
    return g;
  }

  Basis dense_basis(const Wide& t, const ConflictProblem& p, size_t k, int c) const {
    StepTimer timer(p.times);
    std::vector<double> g = gram(t, p, k), w(static_cast<size_t>(p.out));
    timer.lap(&ConflictTimes::gram);
    if (!symmetric_eigen(p.out, g.data(), w.data()))
      fail(p.where, "cat: the eigensolver did not converge for task " + std::to_string(k + 1));
    timer.lap(&ConflictTimes::bases);
    return positive_top_basis(w.data(), g.data(), p.out, p.out, c);
  }

  Basis block_basis(const Wide& t, const ConflictProblem& p, size_t k, int c) const {
    StepTimer timer(p.times);
    HostConflictOps ops(t, p, k);
    const BlockEigenResult r = block_top_eigen(ops, static_cast<int>(std::min<int64_t>(c, p.out)), o_.block);
    timer.lap(&ConflictTimes::bases);
    if (!r.converged) return dense_basis(t, p, k, c);
    return positive_top_basis(r.values.data(), r.vectors.data(), static_cast<int64_t>(r.values.size()), p.out, c);
  }

  LinalgOptions o_;
};

}  // namespace

std::unique_ptr<Linalg> make_cpu_linalg(const LinalgOptions& options) { return std::make_unique<CpuLinalg>(options); }

}  // namespace cm
