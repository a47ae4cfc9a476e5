#pragma once
// The block eigensolver behind CAT's removal bases for large out-dimensions (docs/DESIGN.md "Removal
// bases"): the c largest eigenpairs of a symmetric operator G that is only ever applied to blocks of
// vectors, never formed. Block Davidson with the identity as preconditioner (its search space is block
// Lanczos's Krylov space), with full re-orthogonalisation, a Rayleigh-Ritz step on the projected matrix
// every iteration and a thick restart that keeps the best Ritz vectors. The steps run on BlockOps, whose
// memory is host memory on the CPU and device memory on a GPU, so both run this very algorithm.
#include <cstdint>
#include <vector>

namespace cm {

// Column-major float64 matrices of dim() rows in the memory of one implementation.
class BlockOps {
 public:
  virtual ~BlockOps() = default;
  // n, the operator's dimension.
  virtual int64_t dim() const = 0;
  // Storage for `count` values: slot s is the same memory on every call (regrown, contents then lost,
  // when a call asks for more) for as long as the ops live.
  virtual double* scratch(int slot, int64_t count) = 0;
  // gv = G v for `cols` columns (both n x cols, leading dimension n).
  virtual void apply(const double* v, double* gv, int64_t cols) = 0;
  // c = alpha op(a) op(b) + beta c with op(a) m x k and op(b) k x n.
  virtual void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                    int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) = 0;
  // Eigendecomposition of the symmetric m x m matrix a (its lower triangle is read): eigenvalues ascending
  // into w (host memory), the unit eigenvector of w[j] into column j of a. False if it does not converge.
  virtual bool eigh(int64_t m, double* a, int64_t lda, double* w) = 0;
  // Column j of the rows x cols matrix a times scales[j] (host memory).
  virtual void scale_columns(double* a, int64_t lda, int64_t rows, int64_t cols, const double* scales) = 0;
  virtual void copy(const double* src, double* dst, int64_t count) = 0;
  virtual void upload(const double* host, double* dst, int64_t count) = 0;
  virtual void download(const double* src, double* host, int64_t count) = 0;
};

struct BlockEigenOptions {
  // A pair is converged when ||G u - theta u|| <= tol * max |theta|. By Davis-Kahan the projector onto the c
  // vectors is then within tol * sqrt(c) / gap of the exact one, gap = (lambda_c - lambda_{c+1}) / max |lambda|:
  // 1e-9 keeps it far below METHODS.md's 1e-4 at gap 1e-3.
  double tol = 1e-9;
  // The solver gives up once G has been applied to more than apply_budget * n columns. Krylov-type methods
  // need about n * sqrt(gap) columns... where the wanted eigenvalues are close together compared with the
  // spread of the whole spectrum (CAT with a large lambda), whereas the dense solver's cost does not depend on
  // the spectrum; past this budget the dense solver is the cheaper way.
  double apply_budget = 0.25;
  int extra = 5;          // block size: c + extra (the extra vectors speed up the c-th pair)
  int basis_blocks = 12;  // search space: at most this many blocks
  uint32_t seed = 0;      // of the start block
};

struct BlockEigenResult {
  bool converged = false;
  int iterations = 0;
  int64_t applies = 0;          // columns G was applied to
  std::vector<double> values;   // the c largest Ritz values, ascending
  std::vector<double> vectors;  // their unit Ritz vectors, vector j at j * n
};

// Requires 1 <= c <= ops.dim(). The start block is a fixed function of (options.seed, row, column), so
// every implementation starts from the same vectors.
BlockEigenResult block_top_eigen(BlockOps& ops, int c, const BlockEigenOptions& options);

}  // namespace cm
