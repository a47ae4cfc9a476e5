#pragma once
// The linear algebra of the heavy steps, behind one interface so that a device runs them too: the feature
// Gram matrices, CAT's conflict Gram matrices, removal bases and projections, and RegMean's product and solve. The CPU
// implementation (methods/cpu_linalg.cpp, CBLAS and LAPACKE) is the reference and the default; the CUDA
// one (backend/cuda/cuda_linalg.cpp, cuBLAS and cuSOLVER) runs the same algorithms on a GPU. Host memory
// in and out; matrices are row-major and packed, in float64.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "methods/block_eigen.hpp"
#include "methods/method.hpp"

namespace cm {

// Seconds spent on CAT's linear steps, added up when the caller asks for them.
struct ConflictTimes {
  double gram = 0;     // forming G_k (dense solver)
  double bases = 0;    // eigendecompositions or block solves
  double project = 0;  // the projections of the task vectors
};

// One CAT linear unit: the original task vectors T_i [out, in] and the Gram matrices S_i [in, in] of the
// unit's input site, one per task.
struct ConflictProblem {
  std::string where;  // the unit's tensor name, for errors
  int64_t out = 0, in = 0;
  const TaskVectors* tasks = nullptr;
  std::vector<const double*> grams;  // S_i, symmetric
  double lambda = 0;
  ConflictTimes* times = nullptr;  // when set, top_eigvecs adds its step times here
  size_t num_tasks() const { return grams.size(); }
};

// A removal basis B_k: `cols` orthonormal vectors of length out, stored as rows, largest eigenvalue first.
struct Basis {
  int64_t cols = 0;
  std::vector<double> rows;  // [cols, out]
};

// The removal-basis solver rule (docs/DESIGN.md "Removal bases"): Dense forms G_k and decomposes it
// completely; Block applies G_k to blocks of vectors (block_eigen.hpp). Block when out > dense_max_out and
// c <= block_max_c, else Dense; a task whose block solve does not converge is redone Dense.
struct LinalgOptions {
  int64_t dense_max_out = 2048;
  int block_max_c = 64;
  BlockEigenOptions block;
};
enum class BasisSolver { Dense, Block };
BasisSolver choose_basis_solver(int64_t out, int c, const LinalgOptions& options);

class Linalg {
 public:
  virtual ~Linalg() = default;
  virtual const char* name() const = 0;

  // gram[dim, dim] += rows^T rows in float64 for rows[n, dim] (float32): the feature Gram S = X^T X of a
  // linear site, kept full and symmetric.
  virtual void add_gram(const float* rows, int64_t n, int64_t dim, double* gram) = 0;

  // G_k = sum_{i != k} T_i (S_k - lambda S_i) T_i^T, symmetrised, [out, out].
  virtual std::vector<double> conflict_gram(const ConflictProblem& p, size_t k) = 0;

  // B_k for every task k (index k): the unit eigenvectors of G_k for its at most c largest eigenvalues
  // that are > 0. Throws cm::Error naming p.where when an eigensolver fails.
  virtual std::vector<Basis> top_eigvecs(const ConflictProblem& p, int c) = 0;

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

// B_k from the `count` largest eigenpairs of G_k, given ascending: values[j] with its unit vector at
// vectors + j * out. The vectors of the (at most) c largest values that are > 0, largest first.
Basis positive_top_basis(const double* values, const double* vectors, int64_t count, int64_t out, int c);

std::unique_ptr<Linalg> make_cpu_linalg(const LinalgOptions& options);

// The CPU implementation with default options, for methods whose context names none. It keeps no state
// between calls, so any thread may use it.
Linalg& cpu_linalg();

}  // namespace cm
