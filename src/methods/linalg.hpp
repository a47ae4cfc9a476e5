#pragma once
// The linear algebra of the heavy steps, behind one interface so that a device runs them too: CAT's removal
// bases (methods/conflict_bases.hpp) and projections, and RegMean's product and solve. The CPU
// implementation (methods/cpu_linalg.cpp, CBLAS and LAPACKE) is the reference and the default; the CUDA one
// (backend/cuda/cuda_linalg.cpp, cuBLAS and cuSOLVER) runs the same algorithms on a GPU. Host memory in and
// out; matrices in these calls are row-major and packed.
#include <cstdint>
#include <memory>
#include <vector>

#include "methods/conflict_bases.hpp"
#include "methods/method.hpp"

namespace cm {

struct LinalgOptions {
  ConflictOptions conflict;
};

class Linalg {
 public:
  virtual ~Linalg() = default;
  virtual const char* name() const = 0;

  // B_k for every task k (index k): the unit eigenvectors of G_k for its at most c largest eigenvalues that
  // are > 0. Adds its times and counts to stats when given. Throws cm::Error naming p.where when an
  // eigensolver fails.
  virtual std::vector<Basis> top_eigvecs(const ConflictProblem& p, int c, ConflictStats* stats) = 0;

  // For each i: T_i <- (I - B_k B_k^T) T_i for every k != i in ascending k, each result stored as float32
  // before the next projection (T_i is a float32 tensor). tasks: [K][out * in].
  virtual void project(const std::vector<Basis>& bases, int64_t out, int64_t in, TaskVectors& tasks) = 0;

  // c[m, n] = alpha * op(a) * op(b) + beta * c, op(x) = x or x^T; op(a) is [m, k], op(b) is [k, n].
  virtual void dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                     const double* b, double beta, double* c) = 0;

  // Solves a x = b for the symmetric positive definite a[n, n] for the nrhs right-hand sides given as the
  // rows of b[nrhs, n]; the rows of b become the solutions. False when a is not positive definite (b is then
  // unchanged). a is clobbered either way.
  virtual bool solve_spd(int64_t n, double* a, int64_t nrhs, double* b) = 0;
};

std::unique_ptr<Linalg> make_cpu_linalg(const LinalgOptions& options);

// The CPU implementation with default options, for methods whose context names none. Any thread may use it.
Linalg& cpu_linalg();

}  // namespace cm
