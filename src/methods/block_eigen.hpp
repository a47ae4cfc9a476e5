#pragma once
// The block eigensolver of the large removal-basis problems (methods/top_eigen.hpp, docs/DESIGN.md
// "Removal bases"): the c largest eigenpairs of a symmetric operator G that is only ever applied to blocks of
// vectors. Block Lanczos with full reorthogonalisation (two classical Gram-Schmidt passes against every basis
// vector, SVQB within the block): the projected matrix H = V^T G V grows a block column per step from the
// reorthogonalisation coefficients, its eigenpairs are the Ritz pairs, and the residual of a Ritz pair is read
// off the last coupling block without forming it. When the basis is full it restarts from the c + extra best
// Ritz vectors and the pending block. The n-long vectors live in DenseOps memory (host on the CPU, device on
// a GPU), the small projected problems on the host, so both backends run this very algorithm.
#include <cstdint>
#include <vector>

#include "methods/dense_ops.hpp"

namespace cm {

// A symmetric operator on vectors of dim() values in the memory of some DenseOps.
class SymmetricOperator {
 public:
  virtual ~SymmetricOperator() = default;
  virtual int64_t dim() const = 0;
  // gv = G v for `cols` columns (both dim() x cols, leading dimension dim()).
  virtual void apply(const double* v, double* gv, int64_t cols) = 0;
};

// The double slots of DenseOps the solver uses: [kBlockEigenFirstSlot, kBlockEigenFirstSlot + 8).
constexpr int kBlockEigenFirstSlot = 0;

struct BlockEigenOptions {
  // A pair is converged when ||G u - theta u|| <= tol * max |theta|. By Davis-Kahan the projector onto the c
  // vectors is then within tol * sqrt(c) / gap of the exact one, gap = (lambda_c - lambda_{c+1}) / max |lambda|:
  // 1e-8 keeps it below 2e-5, a fifth of METHODS.md's 1e-4, at gap 1e-3.
  double tol = 1e-8;
  // The solver gives up once G has been applied to more than apply_budget * n columns: past that a direct
  // solve is the cheaper way (its cost does not depend on the spectrum).
  double apply_budget = 0.25;
  int extra = 5;          // block size: c + extra (the extra vectors speed up the c-th pair)
  int basis_blocks = 12;  // basis: at most this many blocks before a restart
  uint32_t seed = 0;      // of the start block
};

struct BlockEigenResult {
  bool converged = false;
  int iterations = 0;
  int64_t applies = 0;          // columns G was applied to
  std::vector<double> values;   // the c largest Ritz values, ascending (when converged)
  std::vector<double> vectors;  // their unit Ritz vectors, vector j at j * n (when converged)
  // The smallest and largest Ritz value of the last step, converged or not. Ritz values lie in the spectrum's
  // range, so G's smallest eigenvalue is <= lowest and its largest >= highest.
  double lowest = 0, highest = 0;
};

// Requires 1 <= c <= op.dim(). The start block is a fixed function of (options.seed, row, column), so
// every implementation starts from the same vectors.
BlockEigenResult block_top_eigen(DenseOps& ops, SymmetricOperator& op, int c, const BlockEigenOptions& options);

}  // namespace cm
