#include "methods/block_eigen.hpp"

#include <lapacke.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "common/error.hpp"
#include "philox.hpp"

namespace cm {
namespace {

// Scratch slots of the solver (double slots of DenseOps).
enum Slot { kBasis = kBlockEigenFirstSlot, kImage, kCoef, kKept };

// A new direction whose squared norm, out of 1, falls below this after orthogonalisation is numerically
// inside the basis already: it is dropped instead of being amplified into noise.
constexpr double kDrop = 1e-12;

int lp(int64_t v) {
  CM_ASSERT(v >= 0 && v <= INT_MAX);
  return static_cast<int>(v);
}

// Eigenpairs of the symmetric m x m column-major a (host): values ascending, a's columns the vectors.
void host_eigh(int64_t m, std::vector<double>& a, std::vector<double>& w) {
  w.resize(static_cast<size_t>(m));
  if (m == 0) return;
  const lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', lp(m), a.data(), lp(m), w.data());
  CM_ASSERT(info == 0);
}

// Unit start vectors: entries uniform in [-0.5, 0.5) from Philox at counter (row, column), key seed.
std::vector<double> start_block(int64_t n, int64_t b, uint32_t seed) {
  std::vector<double> v(static_cast<size_t>(n * b));
  for (int64_t j = 0; j < b; ++j)
    for (int64_t i = 0; i < n; ++i) {
      const Philox4 r = philox4x32_10(
          Philox4{{static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32), static_cast<uint32_t>(j), 0x5eedu}}, seed,
          0);
      v[j * n + i] = static_cast<double>(r.v[0]) * 0x1p-32 - 0.5;
    }
  return v;
}

class Solver {
 public:
  Solver(DenseOps& ops, SymmetricOperator& op, int c, const BlockEigenOptions& o)
      : ops_(ops), op_(op), o_(o), n_(op.dim()), c_(c), b_(std::min<int64_t>(c + std::max(o.extra, 0), n_)) {
    mmax_ = std::min<int64_t>(n_, std::max<int64_t>(o.basis_blocks, 2) * b_);
    v_ = ops_.doubles(kBasis, n_ * (mmax_ + b_));
    w_ = ops_.doubles(kImage, n_ * b_);
    coef_ = ops_.doubles(kCoef, (mmax_ + b_) * b_);
    kept_ = ops_.doubles(kKept, n_ * (b_ + b_));
    h_.assign(static_cast<size_t>(mmax_ * mmax_), 0.0);
  }

  BlockEigenResult run() {
    BlockEigenResult r;
    const std::vector<double> start = start_block(n_, b_, o_.seed);
    ops_.upload(start.data(), w_, n_ * b_);
    int64_t pending = orthonormalize(b_, nullptr);  // the first block, at V[:, 0:pending]
    const double budget = o_.apply_budget * static_cast<double>(n_);
    std::vector<double> y, theta;
    for (r.iterations = 1; pending > 0; ++r.iterations) {
      // W = G C for the pending block C = V[:, m:m+p]; its coefficients against the whole basis fill H's next
      // block column (two passes; in exact arithmetic only the last two blocks are nonzero).
      const int64_t p = pending, mp = m_ + p;
      op_.apply(v_ + m_ * n_, w_, p);
      applies_ += p;
      std::vector<double> coef(static_cast<size_t>(mp * p), 0.0), pass(static_cast<size_t>(mp * p));
      for (int twice = 0; twice < 2; ++twice) {
        ops_.dgemm(true, false, mp, p, n_, 1.0, v_, n_, w_, n_, 0.0, coef_, mp);
        ops_.dgemm(false, false, n_, p, mp, -1.0, v_, n_, coef_, mp, 1.0, w_, n_);
        ops_.download(coef_, pass.data(), mp * p);
        for (size_t i = 0; i < pass.size(); ++i) coef[i] += pass[i];
      }
      for (int64_t j = 0; j < p; ++j) {
        for (int64_t i = 0; i < m_; ++i) h(i, m_ + j) = h(m_ + j, i) = coef[j * mp + i];
        // The pending block's projection onto itself, symmetrised.
        for (int64_t i = 0; i < p; ++i) h(m_ + i, m_ + j) = 0.5 * (coef[j * mp + m_ + i] + coef[i * mp + m_ + j]);
      }
      m_ = mp;

      // Ritz pairs of the basis so far.
      y.assign(static_cast<size_t>(m_ * m_), 0.0);
      for (int64_t j = 0; j < m_; ++j)
        for (int64_t i = 0; i < m_; ++i) y[j * m_ + i] = h(i, j);
      host_eigh(m_, y, theta);
      r.lowest = theta.front();
      r.highest = theta.back();
      const int64_t wanted = std::min<int64_t>(c_, m_);

      // The next block: W's new directions, W = V_next B.
      std::vector<double> couple;
      const int64_t next = m_ == n_ ? 0 : orthonormalize(p, &couple);
      bool done = next == 0;  // the basis spans an invariant subspace (or all of it): Ritz pairs are exact
      if (!done) {
        // ||G u - theta u|| = ||B y_last|| for the Ritz vector u = V y, y_last the last p entries of y.
        const double limit = o_.tol * std::max(std::fabs(theta.front()), std::fabs(theta.back()));
        done = true;
        for (int64_t l = m_ - wanted; l < m_ && done; ++l) {
          double sq = 0;
          for (int64_t a = 0; a < next; ++a) {
            double x = 0;
            for (int64_t q = 0; q < p; ++q) x += couple[q * next + a] * y[l * m_ + (m_ - p + q)];
            sq += x * x;
          }
          done = std::sqrt(sq) <= limit;
        }
      }
      if (done) {
        ops_.upload(y.data() + (m_ - wanted) * m_, coef_, m_ * wanted);
        ops_.dgemm(false, false, n_, wanted, m_, 1.0, v_, n_, coef_, m_, 0.0, kept_, n_);
        r.vectors.resize(static_cast<size_t>(wanted * n_));
        ops_.download(kept_, r.vectors.data(), wanted * n_);
        r.values.assign(theta.begin() + (m_ - wanted), theta.end());
        r.converged = true;
        break;
      }
      if (static_cast<double>(applies_) > budget) break;
      if (m_ + next > mmax_) restart(y, theta, next);
      pending = next;
    }
    r.applies = applies_;
    return r;
  }

 private:
  double& h(int64_t i, int64_t j) { return h_[static_cast<size_t>(j * mmax_ + i)]; }

  // SVQB: the `cols` columns of W become orthonormal (W^T W = Y diag(s) Y^T, W <- W Y diag(s)^-1/2, dropping the
  // directions with s below kDrop of the largest) and go to V[:, m:m+kept]; couple (host, kept x cols,
  // column-major) gets B with W_before = V_new B. Returns how many were kept.
  int64_t orthonormalize(int64_t cols, std::vector<double>* couple) {
    ops_.dgemm(true, false, cols, cols, n_, 1.0, w_, n_, w_, n_, 0.0, coef_, cols);
    std::vector<double> s(static_cast<size_t>(cols * cols)), sv;
    ops_.download(coef_, s.data(), cols * cols);
    host_eigh(cols, s, sv);
    const double largest = std::max(sv.back(), 0.0);
    int64_t first = 0;
    while (first < cols && !(sv[first] > kDrop * std::max(largest, 1.0))) ++first;
    const int64_t kept = cols - first;
    if (kept == 0) return 0;
    std::vector<double> rot(static_cast<size_t>(cols * kept));
    for (int64_t j = 0; j < kept; ++j)
      for (int64_t i = 0; i < cols; ++i) rot[j * cols + i] = s[(first + j) * cols + i] / std::sqrt(sv[first + j]);
    ops_.upload(rot.data(), coef_, cols * kept);
    ops_.dgemm(false, false, n_, kept, cols, 1.0, w_, n_, coef_, cols, 0.0, v_ + m_ * n_, n_);
    if (couple) {
      couple->assign(static_cast<size_t>(kept * cols), 0.0);
      for (int64_t q = 0; q < cols; ++q)
        for (int64_t a = 0; a < kept; ++a)
          (*couple)[q * kept + a] = std::sqrt(sv[first + a]) * s[(first + a) * cols + q];
    }
    return kept;
  }

  // Restart from the b best Ritz vectors (y's last columns) and the pending block at V[:, m:m+next].
  void restart(const std::vector<double>& y, const std::vector<double>& theta, int64_t next) {
    const int64_t keep = std::min<int64_t>(b_, m_);
    ops_.upload(y.data() + (m_ - keep) * m_, coef_, m_ * keep);
    ops_.dgemm(false, false, n_, keep, m_, 1.0, v_, n_, coef_, m_, 0.0, kept_, n_);
    ops_.copy(v_ + m_ * n_, kept_ + keep * n_, next * n_);
    ops_.copy(kept_, v_, (keep + next) * n_);
    std::fill(h_.begin(), h_.end(), 0.0);
    for (int64_t j = 0; j < keep; ++j) h(j, j) = theta[m_ - keep + j];
    m_ = keep;
  }

  DenseOps& ops_;
  SymmetricOperator& op_;
  BlockEigenOptions o_;
  int64_t n_, c_, b_, mmax_ = 0, m_ = 0, applies_ = 0;
  double *v_, *w_, *coef_, *kept_;
  std::vector<double> h_;  // H, mmax x mmax column-major, host
};

}  // namespace

BlockEigenResult block_top_eigen(DenseOps& ops, SymmetricOperator& op, int c, const BlockEigenOptions& options) {
  CM_ASSERT(c >= 1 && c <= op.dim());
  return Solver(ops, op, c, options).run();
}

}  // namespace cm
