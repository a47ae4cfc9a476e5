// CAT's removal bases: the block eigensolver (the CPU run of the algorithm the GPU runs too) against the
// dense solution on random conflict problems, the solver rule, and the dense fallback.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "features/feature_store.hpp"
#include "methods/host_conflict_ops.hpp"
#include "methods/lapack.hpp"
#include "methods/linalg.hpp"

namespace cm {
namespace {

// A random CAT linear unit: K task vectors [out, in] with decaying singular values (fine-tuning deltas are
// far from white noise) and Gram matrices of `rows` random feature rows with a few strong directions.
struct RandomProblem {
  TaskVectors tasks;
  std::vector<std::vector<double>> grams;
  ConflictProblem p;

  RandomProblem(int K, int64_t out, int64_t in, int64_t rows, double lambda, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int k = 0; k < K; ++k) {
      std::vector<float> t(static_cast<size_t>(out * in));
      for (int64_t r = 0; r < out; ++r)
        for (int64_t c = 0; c < in; ++c) t[r * in + c] = normal(rng) / (1.0f + 0.05f * static_cast<float>(r + c));
      tasks.push_back(t);
      std::vector<float> x(static_cast<size_t>(rows * in));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < in; ++c) x[r * in + c] = normal(rng) * (c < 4 ? 3.0f : 1.0f);
      FeatureStore f;
      f.record("s", SiteKind::LinearInput, x.data(), rows, in);
      grams.push_back(f.at("s").gram);
    }
    p.where = "unit";
    p.out = out;
    p.in = in;
    p.tasks = &tasks;
    for (const auto& g : grams) p.grams.push_back(g.data());
    p.lambda = lambda;
  }
};

// Spectral norm of B1 B1^T - B2 B2^T (both [cols, n] rows).
double projector_distance(const Basis& a, const Basis& b, int64_t n) {
  std::vector<double> d(static_cast<size_t>(n * n), 0.0), w(static_cast<size_t>(n));
  const auto add = [&](const Basis& x, double sign) {
    for (int64_t j = 0; j < x.cols; ++j)
      for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < n; ++c) d[r * n + c] += sign * x.rows[j * n + r] * x.rows[j * n + c];
  };
  add(a, 1.0);
  add(b, -1.0);
  EXPECT_TRUE(symmetric_eigen(n, d.data(), w.data()));
  return std::max(std::fabs(w.front()), std::fabs(w.back()));
}

LinalgOptions block_everywhere() {
  LinalgOptions o;
  o.dense_max_out = 0;
  return o;
}

TEST(BlockEigen, ProjectorMatchesDenseWhereTheGapAllows) {
  // METHODS.md: any solver whose projector matches the dense one to 1e-4 (spectral norm) when the c-th and
  // (c+1)-th eigenvalues are more than 1e-3 apart, relative to the largest eigenvalue magnitude. lambda = 5
  // spreads the spectrum far below the wanted eigenvalues (the hard case): those solves get the budget they
  // need here, where the Linalg would hand them to the dense solver.
  const std::unique_ptr<Linalg> dense = make_cpu_linalg(LinalgOptions{});
  int compared = 0;
  for (uint32_t seed = 1; seed <= 6; ++seed) {
    for (const double lambda : {0.3, 1.0, 5.0}) {
      const int c = 1 + static_cast<int>(seed % 5);
      RandomProblem rp(3 + static_cast<int>(seed % 3), 150 + 10 * seed, 50 + 5 * seed, 40, lambda, seed);
      const std::vector<Basis> want = dense->top_eigvecs(rp.p, c);
      std::vector<std::vector<double>> wide;
      for (const auto& t : rp.tasks) wide.emplace_back(t.begin(), t.end());
      for (size_t k = 0; k < want.size(); ++k) {
        std::vector<double> g = dense->conflict_gram(rp.p, k), w(static_cast<size_t>(rp.p.out));
        ASSERT_TRUE(symmetric_eigen(rp.p.out, g.data(), w.data()));
        const double scale = std::max(std::fabs(w.front()), std::fabs(w.back()));
        const size_t cth = w.size() - static_cast<size_t>(c);
        if (w[cth] - w[cth - 1] <= 1e-3 * scale) continue;
        SCOPED_TRACE("seed " + std::to_string(seed) + " lambda " + std::to_string(lambda) + " task " +
                     std::to_string(k));
        HostConflictOps ops(wide, rp.p, k);
        BlockEigenOptions o;
        o.apply_budget = 8;
        const BlockEigenResult r = block_top_eigen(ops, c, o);
        ASSERT_TRUE(r.converged);
        const Basis got = positive_top_basis(r.values.data(), r.vectors.data(), c, rp.p.out, c);
        ASSERT_EQ(got.cols, want[k].cols);
        EXPECT_LE(projector_distance(got, want[k], rp.p.out), 1e-4);
        ++compared;
      }
    }
  }
  EXPECT_GE(compared, 40);
}

TEST(BlockEigen, EasySpectraConvergeWithinTheBudget) {
  // A small lambda leaves the wanted eigenvalues well apart: the default budget (n / 4 columns) suffices and
  // the Linalg's bases are the block solver's, equal to the dense ones up to sign.
  RandomProblem rp(4, 400, 100, 60, 0.3, 21);
  std::vector<std::vector<double>> wide;
  for (const auto& t : rp.tasks) wide.emplace_back(t.begin(), t.end());
  for (size_t k = 0; k < rp.tasks.size(); ++k) {
    HostConflictOps ops(wide, rp.p, k);
    const BlockEigenResult r = block_top_eigen(ops, 3, BlockEigenOptions{});
    EXPECT_TRUE(r.converged) << k;
    EXPECT_LE(r.applies, 100) << k;
  }
  const std::vector<Basis> block = make_cpu_linalg(block_everywhere())->top_eigvecs(rp.p, 3);
  const std::vector<Basis> dense = cpu_linalg().top_eigvecs(rp.p, 3);
  for (size_t k = 0; k < dense.size(); ++k) EXPECT_LE(projector_distance(block[k], dense[k], rp.p.out), 1e-6);
}

// G = Q diag(lambda) Q^T for a random orthogonal Q: a known spectrum, applied as a dense product.
class MatrixOps : public HostBlockOps {
 public:
  MatrixOps(const std::vector<double>& eigenvalues, uint32_t seed)
      : HostBlockOps(static_cast<int64_t>(eigenvalues.size())), n_(static_cast<int64_t>(eigenvalues.size())) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> normal;
    std::vector<double> a(static_cast<size_t>(n_ * n_)), w(static_cast<size_t>(n_));
    for (int64_t i = 0; i < n_; ++i)
      for (int64_t j = 0; j <= i; ++j) a[i * n_ + j] = a[j * n_ + i] = normal(rng);
    EXPECT_TRUE(symmetric_eigen(n_, a.data(), w.data()));  // rows of a: an orthonormal basis
    q_ = a;
    g_.assign(static_cast<size_t>(n_ * n_), 0.0);
    for (int64_t j = 0; j < n_; ++j)
      for (int64_t r = 0; r < n_; ++r)
        for (int64_t c = 0; c < n_; ++c) g_[r * n_ + c] += eigenvalues[j] * q_[j * n_ + r] * q_[j * n_ + c];
  }
  void apply(const double* v, double* gv, int64_t cols) override {
    ++calls;
    gemm(false, false, n_, cols, n_, 1.0, g_.data(), n_, v, n_, 0.0, gv, n_);
  }
  // Row j of Q: the unit eigenvector of eigenvalue j.
  const double* vector(int64_t j) const { return q_.data() + j * n_; }
  int calls = 0;

 private:
  int64_t n_;
  std::vector<double> q_, g_;
};

TEST(BlockEigen, FindsTheTopOfAnIndefiniteSpectrum) {
  // A few positive eigenvalues, two of them 2e-3 apart, above a bulk of large negative ones (lambda = 5
  // makes CAT's G_k look like this).
  const int64_t n = 400;
  std::vector<double> ev(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ev[i] = -50.0 * static_cast<double>(i) / static_cast<double>(n);
  ev[0] = 3.0, ev[1] = 2.0, ev[2] = 1.998, ev[3] = 1.0;
  MatrixOps ops(ev, 5);
  BlockEigenOptions o;
  o.apply_budget = 4;
  const BlockEigenResult r = block_top_eigen(ops, 3, o);
  ASSERT_TRUE(r.converged);
  ASSERT_EQ(r.values.size(), 3u);
  EXPECT_NEAR(r.values[2], 3.0, 1e-7);
  EXPECT_NEAR(r.values[1], 2.0, 1e-7);
  EXPECT_NEAR(r.values[0], 1.998, 1e-7);
  // Each Ritz vector is its eigenvector up to sign.
  for (int j = 0; j < 3; ++j) {
    double dot = 0;
    for (int64_t i = 0; i < n; ++i) dot += r.vectors[j * n + i] * ops.vector(2 - j)[i];
    EXPECT_NEAR(std::fabs(dot), 1.0, 1e-6) << j;
  }
  // Same start block, same steps: a second run is identical.
  MatrixOps again(ev, 5);
  const BlockEigenResult r2 = block_top_eigen(again, 3, o);
  EXPECT_EQ(r2.vectors, r.vectors);
  EXPECT_EQ(r2.iterations, r.iterations);
}

TEST(BlockEigen, SmallOperatorFillsTheWholeSpace) {
  const std::vector<double> ev = {5, 4, 3, 2, 1, 0, -1, -2, -3, -4};
  MatrixOps ops(ev, 9);
  BlockEigenOptions o;
  o.apply_budget = 10;
  const BlockEigenResult r = block_top_eigen(ops, 3, o);
  ASSERT_TRUE(r.converged);
  EXPECT_NEAR(r.values[0], 3.0, 1e-12);
  EXPECT_NEAR(r.values[2], 5.0, 1e-12);
}

TEST(BlockEigen, GivesUpPastItsBudget) {
  std::vector<double> ev(300);
  for (size_t i = 0; i < ev.size(); ++i) ev[i] = 1.0 - 1e-4 * static_cast<double>(i);
  MatrixOps ops(ev, 2);
  const BlockEigenResult r = block_top_eigen(ops, 3, BlockEigenOptions{});
  EXPECT_FALSE(r.converged);
  EXPECT_LE(r.applies, 75 + 8);  // n / 4, and the last block
}

TEST(RemovalBases, SolverRule) {
  const LinalgOptions o;
  EXPECT_EQ(choose_basis_solver(2048, 3, o), BasisSolver::Dense);
  EXPECT_EQ(choose_basis_solver(2049, 3, o), BasisSolver::Block);
  EXPECT_EQ(choose_basis_solver(4096, 64, o), BasisSolver::Block);
  EXPECT_EQ(choose_basis_solver(4096, 65, o), BasisSolver::Dense);
}

TEST(RemovalBases, UnconvergedBlockSolveFallsBackToDense) {
  RandomProblem rp(3, 120, 40, 30, 5.0, 3);
  LinalgOptions o = block_everywhere();
  o.block.apply_budget = 0;
  const std::vector<Basis> got = make_cpu_linalg(o)->top_eigvecs(rp.p, 3);
  const std::vector<Basis> want = make_cpu_linalg(LinalgOptions{})->top_eigvecs(rp.p, 3);
  for (size_t k = 0; k < want.size(); ++k) EXPECT_EQ(got[k].rows, want[k].rows);
}

TEST(RemovalBases, NoPositiveEigenvalueNoBasis) {
  // lambda = 1000: every S_k - lambda S_i is negative definite, and so is G_k (out = 50 <= 2 * in: full rank).
  RandomProblem rp(3, 50, 30, 60, 1000.0, 4);
  for (const LinalgOptions& o : {LinalgOptions{}, block_everywhere()})
    for (const Basis& b : make_cpu_linalg(o)->top_eigvecs(rp.p, 3)) EXPECT_EQ(b.cols, 0);
}

TEST(RemovalBases, TimesAreReportedWhenAsked) {
  RandomProblem rp(2, 50, 20, 30, 0.5, 6);
  ConflictTimes times;
  rp.p.times = &times;
  cpu_linalg().top_eigvecs(rp.p, 2);
  EXPECT_GT(times.gram, 0.0);
  EXPECT_GT(times.bases, 0.0);
}

}  // namespace
}  // namespace cm
