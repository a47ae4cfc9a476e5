#pragma once
// The c largest eigenpairs of a dense symmetric matrix, those whose eigenvalues are > 0 (or, `any_sign`, all c of
// them when the largest is > 0: CAT's released variant), in the memory of a DenseOps:
// the last step of every CAT removal basis (methods/conflict_bases.hpp). Up to order dense_max, a direct solve
// of the top c (MRRR: dsyevr, or cuSOLVER's syevdx). Above, CAT's spectra (a wide negative part from
// lambda S_i, a few small positive eigenvalues close together) make Krylov methods on the matrix itself slow,
// so the solve works on (sigma I - A)^-1 instead, with sigma just above the largest eigenvalue:
//   1. probe: a short Lanczos run (one vector, full reorthogonalisation) on a float32 copy of A, whose
//      largest Ritz value theta
//      and its residual r estimate the top of the spectrum and whose extreme Ritz values its spread s;
//   2. sigma = theta + max(r, shift_gap * s), moved 4 times farther up while the Cholesky factorisation of
//      sigma I - A fails (sigma below the largest eigenvalue); sigma = 0 first when theta + r < 0, where
//      success proves every eigenvalue negative (no basis at all);
//   3. the block solver (methods/block_eigen.hpp) on v -> (sigma I - A)^-1 v, two triangular solves, whose
//      largest eigenvalues mu = 1 / (sigma - lambda) now stand far apart from the rest; lambda = sigma - 1 / mu.
// Anything that fails (no factorisation within shift_tries, no convergence) falls back to the direct solve.
#include <cstdint>
#include <vector>

#include "methods/block_eigen.hpp"
#include "methods/dense_ops.hpp"

namespace cm {

constexpr int kTopEigenFirstSlot = 16;  // DenseOps double slots [16, 24)

struct TopEigenOptions {
  int64_t dense_max = 512;   // direct solve up to this order (where it and shift-invert take the same time)
  int probe_steps = 24;      // Lanczos steps of the probe
  // Least distance of sigma above the probe's estimate, relative to its spread. Small, because the positive
  // eigenvalues can be a few thousandths of the spread (ViT-L/14 attention inputs: 0.2-1.4 against 600): at
  // 0.01 their mu crowded together and 12 of 1152 solves ran out of budget; a sigma too low costs one more
  // factorisation instead.
  double shift_gap = 0.001;
  int shift_tries = 4;       // factorisations tried
  BlockEigenOptions block;   // of the shift-invert solve
};

enum class EigenPath { Direct, ShiftInvert, Fallback, Negative };

struct TopEigen {
  bool solved = true;          // false: the direct solver did not converge (nothing else is set)
  std::vector<double> values;  // the (at most c) largest eigenvalues that are > 0 (any_sign: all), ascending
  double* vectors = nullptr;   // their unit eigenvectors, n x values.size() in the ops' memory (column j: values[j])
  EigenPath path = EigenPath::Direct;
  int factorisations = 0;  // Cholesky factorisations of sigma I - A tried (shift-invert)
  int64_t applies = 0;     // columns the shift-invert operator was applied to
};

// a: the n x n symmetric matrix, lower triangle, in ops memory; destroyed. 1 <= c. any_sign: the c largest pairs
// whatever their sign, none only when every eigenvalue is <= 0.
TopEigen top_positive_eigen(DenseOps& ops, int64_t n, double* a, int64_t lda, int c, const TopEigenOptions& options,
                            bool any_sign = false);

// What the probe found: the extreme Ritz values of `steps` Lanczos steps on the operator, and the residual
// norm of the largest one.
struct SpectrumEstimate {
  double lowest = 0, highest = 0, residual = 0;
};
SpectrumEstimate lanczos_estimate(DenseOps& ops, SymmetricOperator& op, int steps);

}  // namespace cm
