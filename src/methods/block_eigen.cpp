#include "methods/block_eigen.hpp"

#include <algorithm>
#include <cmath>

#include "common/error.hpp"
#include "philox.hpp"

namespace cm {
namespace {

// Scratch slots of the solver.
enum Slot { kQ, kAQ, kZ, kW, kH, kS, kC, kY };

// A new direction whose squared norm, out of 1, falls below this after orthogonalisation is numerically
// inside the search space already: it is dropped instead of being amplified into noise.
constexpr double kDrop = 1e-12;

// Unit start vectors: entries uniform in [-0.5, 0.5) from Philox at counter (row, column), key seed.
std::vector<double> start_block(int64_t n, int64_t b, uint32_t seed) {
  std::vector<double> v(static_cast<size_t>(n * b));
  for (int64_t j = 0; j < b; ++j) {
    double norm = 0;
    for (int64_t i = 0; i < n; ++i) {
      const Philox4 r = philox4x32_10(
          Philox4{{static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32), static_cast<uint32_t>(j), 0x5eedu}}, seed,
          0);
      const double x = static_cast<double>(r.v[0]) * 0x1p-32 - 0.5;
      v[j * n + i] = x;
      norm += x * x;
    }
    for (int64_t i = 0; i < n; ++i) v[j * n + i] /= std::sqrt(norm);
  }
  return v;
}

class Solver {
 public:
  Solver(BlockOps& ops, int c, const BlockEigenOptions& o)
      : ops_(ops), o_(o), n_(ops.dim()), c_(c), b_(std::min<int64_t>(c + std::max(o.extra, 0), n_)) {
    mmax_ = std::min<int64_t>(n_, std::max<int64_t>(o.basis_blocks, 2) * b_);
    q_ = ops_.scratch(kQ, n_ * mmax_);
    aq_ = ops_.scratch(kAQ, n_ * mmax_);
    z_ = ops_.scratch(kZ, n_ * mmax_);
    w_ = ops_.scratch(kW, n_ * b_);
    h_ = ops_.scratch(kH, mmax_ * mmax_);
    s_ = ops_.scratch(kS, b_ * b_);
    coef_ = ops_.scratch(kC, mmax_ * b_);
    y_ = ops_.scratch(kY, mmax_ * mmax_);
  }

  BlockEigenResult run() {
    BlockEigenResult r;
    const std::vector<double> start = start_block(n_, b_, o_.seed);
    ops_.upload(start.data(), w_, n_ * b_);
    if (append(b_) == 0) return r;
    std::vector<double> theta(static_cast<size_t>(mmax_)), rr(static_cast<size_t>(b_ * b_)), scales(b_);
    const double budget = o_.apply_budget * static_cast<double>(n_);
    for (r.iterations = 1;; ++r.iterations) {
      // Rayleigh-Ritz: H = Q^T G Q, whose eigenvectors Y give the Ritz vectors Q Y (ascending values).
      ops_.gemm(true, false, m_, m_, n_, 1.0, q_, n_, aq_, n_, 0.0, h_, mmax_);
      if (!ops_.eigh(m_, h_, mmax_, theta.data())) break;
      const int64_t nr = std::min(b_, m_), wanted = std::min<int64_t>(c_, nr);
      const double* ytop = h_ + (m_ - nr) * mmax_;

      // Residuals of the top nr Ritz pairs, Z = AQ Y - Q Y diag(theta), and their norms.
      ops_.copy(ytop, y_, nr * mmax_);
      ops_.scale_columns(y_, mmax_, m_, nr, theta.data() + (m_ - nr));
      ops_.gemm(false, false, n_, nr, m_, 1.0, aq_, n_, ytop, mmax_, 0.0, z_, n_);
      ops_.gemm(false, false, n_, nr, m_, -1.0, q_, n_, y_, mmax_, 1.0, z_, n_);
      ops_.gemm(true, false, nr, nr, n_, 1.0, z_, n_, z_, n_, 0.0, s_, b_);
      ops_.download(s_, rr.data(), b_ * nr);
      const double limit = o_.tol * std::max(std::fabs(theta[0]), std::fabs(theta[m_ - 1]));
      bool done = m_ == n_;  // the whole space: the Ritz pairs are the eigenpairs
      if (!done) {
        done = true;
        for (int64_t j = nr - wanted; j < nr; ++j) done = done && std::sqrt(std::max(rr[j * b_ + j], 0.0)) <= limit;
      }
      if (done) {
        ops_.gemm(false, false, n_, wanted, m_, 1.0, q_, n_, ytop + (nr - wanted) * mmax_, mmax_, 0.0, w_, n_);
        r.vectors.resize(static_cast<size_t>(wanted * n_));
        ops_.download(w_, r.vectors.data(), wanted * n_);
        r.values.assign(theta.begin() + (m_ - wanted), theta.begin() + m_);
        r.converged = true;
        break;
      }
      if (static_cast<double>(applies_) > budget) break;

      // New directions: the unconverged residuals, largest Ritz value first, scaled to unit norm.
      int64_t cols = 0;
      for (int64_t j = nr - 1; j >= 0; --j) {
        const double norm = std::sqrt(std::max(rr[j * b_ + j], 0.0));
        if (norm <= limit || norm == 0) continue;
        ops_.copy(z_ + j * n_, w_ + cols * n_, n_);
        scales[cols++] = 1.0 / norm;
      }
      ops_.scale_columns(w_, n_, n_, cols, scales.data());

      if (append(cols) == 0) break;  // no direction left that the space does not hold
    }
    r.applies = applies_;
    return r;
  }

 private:
  // Orthonormalises the `cols` unit columns of W against Q and each other (two passes of classical
  // Gram-Schmidt against Q, then SVQB within the block: W <- W V diag(w)^-1/2 from W^T W = V diag(w) V^T),
  // makes room for them by a thick restart if the space is full, appends them to Q and their images under G
  // to AQ. H must hold the eigenvectors of the last Rayleigh-Ritz step. Returns how many columns were
  // appended.
  int64_t append(int64_t cols) {
    std::vector<double> w(static_cast<size_t>(b_)), scales(static_cast<size_t>(b_));
    for (int pass = 0; pass < 2 && cols > 0; ++pass) {
      if (m_ > 0) {
        ops_.gemm(true, false, m_, cols, n_, 1.0, q_, n_, w_, n_, 0.0, coef_, mmax_);
        ops_.gemm(false, false, n_, cols, m_, -1.0, q_, n_, coef_, mmax_, 1.0, w_, n_);
      }
      ops_.gemm(true, false, cols, cols, n_, 1.0, w_, n_, w_, n_, 0.0, s_, b_);
      if (!ops_.eigh(cols, s_, b_, w.data())) return 0;
      int64_t first = 0;
      while (first < cols && w[first] <= kDrop) ++first;
      const int64_t keep = cols - first;
      for (int64_t j = 0; j < keep; ++j) scales[j] = 1.0 / std::sqrt(w[first + j]);
      ops_.gemm(false, false, n_, keep, cols, 1.0, w_, n_, s_ + first * b_, b_, 0.0, z_, n_);
      ops_.scale_columns(z_, n_, n_, keep, scales.data());
      ops_.copy(z_, w_, n_ * keep);
      cols = keep;
    }
    if (cols == 0) return 0;
    if (m_ + cols > mmax_) restart(mmax_ - cols);
    ops_.copy(w_, q_ + m_ * n_, n_ * cols);
    ops_.apply(q_ + m_ * n_, aq_ + m_ * n_, cols);
    applies_ += cols;
    m_ += cols;
    return cols;
  }

  // Thick restart to `keep` columns: the Ritz vectors of the largest values, and a block of the smallest.
  // Those span the far end of the spectrum, so the next steps need not find it again to filter it out; their
  // images under G come from AQ without applying G. W stays orthogonal: the new Q lies inside the old one.
  void restart(int64_t keep) {
    const int64_t low = std::max<int64_t>(0, std::min(b_, keep - b_)), top = keep - low;
    ops_.copy(h_, y_, low * mmax_);
    ops_.copy(h_ + (m_ - top) * mmax_, y_ + low * mmax_, top * mmax_);
    ops_.gemm(false, false, n_, keep, m_, 1.0, q_, n_, y_, mmax_, 0.0, z_, n_);
    ops_.copy(z_, q_, n_ * keep);
    ops_.gemm(false, false, n_, keep, m_, 1.0, aq_, n_, y_, mmax_, 0.0, z_, n_);
    ops_.copy(z_, aq_, n_ * keep);
    m_ = keep;
  }

  BlockOps& ops_;
  BlockEigenOptions o_;
  int64_t n_, c_, b_, mmax_ = 0, m_ = 0, applies_ = 0;
  double *q_, *aq_, *z_, *w_, *h_, *s_, *coef_, *y_;
};

}  // namespace

BlockEigenResult block_top_eigen(BlockOps& ops, int c, const BlockEigenOptions& options) {
  CM_ASSERT(c >= 1 && c <= ops.dim());
  return Solver(ops, c, options).run();
}

}  // namespace cm
