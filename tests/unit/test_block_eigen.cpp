// The block eigensolver (the algorithm both backends run, methods/block_eigen.hpp) on operators with known
// spectra, on the host ops.
#include <gtest/gtest.h>

#include <cmath>

#include "methods/block_eigen.hpp"
#include "methods/host_dense_ops.hpp"
#include "eigen_testing.hpp"

namespace cm {
namespace {

// A known spectrum applied as a dense product.
class KnownOperator : public SymmetricOperator {
 public:
  KnownOperator(const std::vector<double>& eigenvalues, uint32_t seed) : g_(eigenvalues, seed) {}
  int64_t dim() const override { return g_.n; }
  void apply(const double* v, double* gv, int64_t cols) override {
    ops.dgemm(false, false, g_.n, cols, g_.n, 1.0, g_.matrix.data(), g_.n, v, g_.n, 0.0, gv, g_.n);
  }
  const double* vector(int64_t j) const { return g_.vector(j); }
  HostDenseOps ops;

 private:
  testing::KnownSpectrum g_;
};

TEST(BlockEigen, FindsTheTopOfAnIndefiniteSpectrum) {
  // A few positive eigenvalues, two of them 2e-3 apart, above a bulk of large negative ones (lambda = 5
  // makes CAT's G_k look like this).
  const int64_t n = 400;
  std::vector<double> ev(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ev[i] = -50.0 * static_cast<double>(i) / static_cast<double>(n);
  ev[0] = 3.0, ev[1] = 2.0, ev[2] = 1.998, ev[3] = 1.0;
  KnownOperator g(ev, 5);
  BlockEigenOptions o;
  o.apply_budget = 4;
  const BlockEigenResult r = block_top_eigen(g.ops, g, 3, o);
  ASSERT_TRUE(r.converged);
  ASSERT_EQ(r.values.size(), 3u);
  EXPECT_NEAR(r.values[2], 3.0, 1e-7);
  EXPECT_NEAR(r.values[1], 2.0, 1e-7);
  EXPECT_NEAR(r.values[0], 1.998, 1e-7);
  // Each Ritz vector is its eigenvector up to sign.
  for (int j = 0; j < 3; ++j) {
    double dot = 0;
    for (int64_t i = 0; i < n; ++i) dot += r.vectors[j * n + i] * g.vector(2 - j)[i];
    EXPECT_NEAR(std::fabs(dot), 1.0, 1e-6) << j;
  }
  // Ritz values lie inside the spectrum's range.
  EXPECT_LE(r.highest, 3.0 + 1e-9);
  EXPECT_GE(r.lowest, -50.0);
  // Same start block, same steps: a second run is identical.
  KnownOperator again(ev, 5);
  const BlockEigenResult r2 = block_top_eigen(again.ops, again, 3, o);
  EXPECT_EQ(r2.vectors, r.vectors);
  EXPECT_EQ(r2.iterations, r.iterations);
}

TEST(BlockEigen, SmallOperatorFillsTheWholeSpace) {
  const std::vector<double> ev = {5, 4, 3, 2, 1, 0, -1, -2, -3, -4};
  KnownOperator g(ev, 9);
  BlockEigenOptions o;
  o.apply_budget = 10;
  const BlockEigenResult r = block_top_eigen(g.ops, g, 3, o);
  ASSERT_TRUE(r.converged);
  EXPECT_NEAR(r.values[0], 3.0, 1e-12);
  EXPECT_NEAR(r.values[2], 5.0, 1e-12);
}

TEST(BlockEigen, GivesUpPastItsBudgetWithBoundsFromInside) {
  std::vector<double> ev(300);
  for (size_t i = 0; i < ev.size(); ++i) ev[i] = 1.0 - 1e-4 * static_cast<double>(i);
  KnownOperator g(ev, 2);
  const BlockEigenResult r = block_top_eigen(g.ops, g, 3, BlockEigenOptions{});
  EXPECT_FALSE(r.converged);
  EXPECT_TRUE(r.values.empty());
  EXPECT_LE(r.applies, 75 + 8);  // n / 4, and the last block
  EXPECT_LE(r.highest, 1.0 + 1e-12);
  EXPECT_GT(r.highest, r.lowest);
  EXPECT_GE(r.lowest, ev.back() - 1e-12);
}

}  // namespace
}  // namespace cm
