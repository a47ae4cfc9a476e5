#include "methods/top_eigen.hpp"

#include <lapacke.h>

#include <algorithm>
#include <cmath>

#include "common/error.hpp"
#include "philox.hpp"

namespace cm {
namespace {

enum Slot { kFactor = kTopEigenFirstSlot, kVectors, kLanczos, kLanczosCoef };
enum FloatSlot { kProbeMatrix = kTopEigenFirstSlot, kProbeIn, kProbeOut };

// v -> A v for the symmetric A (lower triangle), in float32 on a float32 copy of A: for the probe, whose
// estimates need no more, and whose products then move half the bytes.
class Float32Operator : public SymmetricOperator {
 public:
  Float32Operator(DenseOps& ops, int64_t n, const double* a, int64_t lda)
      : ops_(ops), n_(n), a_(ops.floats(kProbeMatrix, n * n)) {
    ops_.narrow(a, lda, a_, n, n, n);
  }
  int64_t dim() const override { return n_; }
  void apply(const double* v, double* gv, int64_t cols) override {
    float* x = ops_.floats(kProbeIn, n_ * cols);
    float* y = ops_.floats(kProbeOut, n_ * cols);
    ops_.narrow(v, n_, x, n_, n_, cols);
    ops_.ssymm(n_, cols, a_, n_, x, n_, y, n_);
    ops_.widen(y, n_, gv, n_, n_, cols);
  }

 private:
  DenseOps& ops_;
  int64_t n_;
  float* a_;
};

// v -> (L L^T)^-1 v for the Cholesky factor L of sigma I - A.
class ShiftInvertOperator : public SymmetricOperator {
 public:
  ShiftInvertOperator(DenseOps& ops, int64_t n, const double* l) : ops_(ops), n_(n), l_(l) {}
  int64_t dim() const override { return n_; }
  void apply(const double* v, double* gv, int64_t cols) override {
    ops_.copy(v, gv, n_ * cols);
    ops_.potrs(n_, cols, l_, n_, gv, n_);
  }

 private:
  DenseOps& ops_;
  int64_t n_;
  const double* l_;
};

// Keeps the pairs with values > 0 of `count` ascending pairs whose vectors are the columns of v (n rows); any_sign:
// all of them when the last is > 0, else none.
TopEigen positive_part(const double* values, int64_t count, double* v, int64_t n, EigenPath path, bool any_sign) {
  TopEigen r;
  r.path = path;
  int64_t first = 0;
  if (any_sign) {
    first = count > 0 && values[count - 1] > 0 ? 0 : count;
  } else {
    while (first < count && !(values[first] > 0)) ++first;
  }
  r.values.assign(values + first, values + count);
  r.vectors = v + first * n;
  return r;
}

TopEigen direct(DenseOps& ops, int64_t n, double* a, int64_t lda, int64_t c, EigenPath path, bool any_sign) {
  std::vector<double> w(static_cast<size_t>(c));
  double* v = ops.doubles(kVectors, n * c);
  if (!ops.top_eigh(n, a, lda, c, w.data(), v, n)) {
    TopEigen failed;
    failed.solved = false;
    return failed;
  }
  return positive_part(w.data(), c, v, n, path, any_sign);
}

}  // namespace

// Lanczos with full reorthogonalisation (two classical Gram-Schmidt passes) from a fixed Philox start vector,
// so that every implementation takes the same steps; the Ritz values are the eigenvalues of the tridiagonal
// matrix of the recurrence's coefficients.
SpectrumEstimate lanczos_estimate(DenseOps& ops, SymmetricOperator& op, int steps) {
  const int64_t n = op.dim();
  const int64_t m = std::min<int64_t>(std::max(steps, 1), n);
  double* q = ops.doubles(kLanczos, n * (m + 1));
  double* coef = ops.doubles(kLanczosCoef, m + 1);
  std::vector<double> start(static_cast<size_t>(n)), alpha, beta, h(static_cast<size_t>(m + 1));
  double norm = 0;
  for (int64_t i = 0; i < n; ++i) {
    const Philox4 r = philox4x32_10(
        Philox4{{static_cast<uint32_t>(i), static_cast<uint32_t>(i >> 32), 0u, 0x1a2c05u}}, 0u, 0u);
    start[i] = static_cast<double>(r.v[0]) * 0x1p-32 - 0.5;
    norm += start[i] * start[i];
  }
  for (double& x : start) x /= std::sqrt(norm);
  ops.upload(start.data(), q, n);
  int64_t j = 0;
  for (; j < m; ++j) {
    double* w = q + (j + 1) * n;
    op.apply(q + j * n, w, 1);
    double a = 0;
    for (int pass = 0; pass < 2; ++pass) {
      ops.dgemm(true, false, j + 1, 1, n, 1.0, q, n, w, n, 0.0, coef, j + 1);
      ops.dgemm(false, false, n, 1, j + 1, -1.0, q, n, coef, j + 1, 1.0, w, n);
      ops.download(coef, h.data(), j + 1);
      a += h[j];
    }
    alpha.push_back(a);
    double b = 0;
    ops.column_norms(w, n, n, 1, &b);
    if (j + 1 == m || !(b > 1e-12 * std::fabs(a) + 1e-300)) {
      beta.push_back(b);
      ++j;
      break;
    }
    beta.push_back(b);
    const double inv = 1.0 / b;
    ops.scale_columns(w, n, n, 1, &inv);
  }
  // Eigenvalues and vectors of the j x j tridiagonal matrix (alpha, beta).
  std::vector<double> d = alpha, e(beta.begin(), beta.end() - 1), z(static_cast<size_t>(j * j));
  e.resize(static_cast<size_t>(std::max<int64_t>(j - 1, 0)));
  const lapack_int info = LAPACKE_dstev(LAPACK_COL_MAJOR, 'V', static_cast<lapack_int>(j), d.data(), e.data(),
                                        z.data(), static_cast<lapack_int>(j));
  CM_ASSERT(info == 0);
  SpectrumEstimate s;
  s.lowest = d.front();
  s.highest = d.back();
  s.residual = std::fabs(beta.back() * z[(j - 1) * j + (j - 1)]);  // |beta_j * last entry of the top vector|
  return s;
}

TopEigen top_positive_eigen(DenseOps& ops, int64_t n, double* a, int64_t lda, int c, const TopEigenOptions& o,
                            bool any_sign) {
  CM_ASSERT(c >= 1 && n >= 0);
  const int64_t want = std::min<int64_t>(c, n);
  if (want == 0) return TopEigen{};
  if (n <= o.dense_max) return direct(ops, n, a, lda, want, EigenPath::Direct, any_sign);

  Float32Operator matrix(ops, n, a, lda);
  const SpectrumEstimate probe = lanczos_estimate(ops, matrix, o.probe_steps);
  const double spread = std::max(probe.highest - probe.lowest, std::fabs(probe.highest)) + 1e-300;
  double step = std::max(probe.residual, o.shift_gap * spread);
  double sigma = probe.highest + probe.residual < 0 ? 0.0 : probe.highest + step;
  double* l = ops.doubles(kFactor, n * n);
  int factorisations = 0;
  int64_t applies = 0;
  for (int attempt = 0; attempt < o.shift_tries; ++attempt) {
    ops.copy_block(a, lda, l, n, n, n);
    ops.shift_negate(l, n, n, sigma);
    ++factorisations;
    if (ops.potrf(n, l, n)) {
      if (sigma == 0) {  // -A is positive definite
        TopEigen none;
        none.path = EigenPath::Negative;
        none.factorisations = factorisations;
        return none;
      }
      ShiftInvertOperator inverse(ops, n, l);
      const BlockEigenResult r = block_top_eigen(ops, inverse, static_cast<int>(want), o.block);
      applies += r.applies;
      if (!r.converged) break;
      const int64_t count = static_cast<int64_t>(r.values.size());
      std::vector<double> values(r.values.size());
      for (size_t i = 0; i < values.size(); ++i) values[i] = sigma - 1.0 / r.values[i];
      double* v = ops.doubles(kVectors, n * count);
      ops.upload(r.vectors.data(), v, n * count);
      TopEigen e = positive_part(values.data(), count, v, n, EigenPath::ShiftInvert, any_sign);
      e.factorisations = factorisations;
      e.applies = applies;
      return e;
    }
    if (sigma > 0) step *= 4;
    sigma = std::max(probe.highest, 0.0) + step;
  }
  TopEigen e = direct(ops, n, a, lda, want, EigenPath::Fallback, any_sign);
  e.factorisations = factorisations;
  e.applies = applies;
  return e;
}

}  // namespace cm
