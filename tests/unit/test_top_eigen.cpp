// top_positive_eigen (methods/top_eigen.hpp) on matrices with known spectra: every path (direct,
// shift-invert, negative definite, fallback) against the full LAPACK decomposition, and its Lanczos probe.
#include <gtest/gtest.h>

#include <cmath>

#include "methods/host_dense_ops.hpp"
#include "eigen_testing.hpp"
#include "methods/top_eigen.hpp"

namespace cm {
namespace {

using testing::KnownSpectrum;

// CAT's shape of spectrum: a bulk of negative values down to -50, a few positive ones 2e-3 apart.
std::vector<double> cat_like(int64_t n) {
  std::vector<double> ev(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ev[i] = -50.0 * static_cast<double>(i) / static_cast<double>(n);
  ev[0] = 3.0, ev[1] = 2.0, ev[2] = 1.998, ev[3] = 1.0;
  return ev;
}

// |<got column j, eigenvector of ev index idx[j]>| == 1 for every j.
void expect_vectors(const KnownSpectrum& k, const TopEigen& e, HostDenseOps&, const std::vector<int64_t>& idx) {
  for (size_t j = 0; j < idx.size(); ++j) {
    double dot = 0;
    for (int64_t i = 0; i < k.n; ++i) dot += e.vectors[static_cast<int64_t>(j) * k.n + i] * k.vector(idx[j])[i];
    EXPECT_NEAR(std::fabs(dot), 1.0, 1e-7) << j;
  }
}

TEST(TopEigen, EveryPathFindsTheSamePairs) {
  const KnownSpectrum k(cat_like(300), 3);
  TopEigenOptions shift;
  shift.dense_max = 0;
  for (const auto& [options, path] : {std::pair<TopEigenOptions, EigenPath>{TopEigenOptions{}, EigenPath::Direct},
                                      {shift, EigenPath::ShiftInvert}}) {
    HostDenseOps ops;
    std::vector<double> a = k.matrix;
    const TopEigen e = top_positive_eigen(ops, k.n, a.data(), k.n, 3, options);
    ASSERT_TRUE(e.solved);
    EXPECT_EQ(e.path, path);
    ASSERT_EQ(e.values.size(), 3u);
    EXPECT_NEAR(e.values[0], 1.998, 1e-9);
    EXPECT_NEAR(e.values[1], 2.0, 1e-9);
    EXPECT_NEAR(e.values[2], 3.0, 1e-9);
    expect_vectors(k, e, ops, {2, 1, 0});
  }
}

TEST(TopEigen, LanczosProbeBoundsTheSpectrumFromInside) {
  const KnownSpectrum k(cat_like(300), 4);
  HostDenseOps ops;
  struct Op : SymmetricOperator {
    HostDenseOps& ops;
    const KnownSpectrum& k;
    Op(HostDenseOps& o, const KnownSpectrum& kk) : ops(o), k(kk) {}
    int64_t dim() const override { return k.n; }
    void apply(const double* v, double* gv, int64_t cols) override {
      ops.symm(k.n, cols, k.matrix.data(), k.n, v, k.n, gv, k.n);
    }
  } op(ops, k);
  const SpectrumEstimate e = lanczos_estimate(ops, op, 48);
  EXPECT_LE(e.highest, 3.0 + 1e-9);
  EXPECT_GE(e.lowest, -50.0 * 299.0 / 300.0 - 1e-9);
  EXPECT_NEAR(e.highest, 3.0, 1e-3);  // an isolated top eigenvalue is found in 48 steps
  EXPECT_LT(e.lowest, -45.0);
  EXPECT_LT(e.residual, 1e-2);
  // The whole space: exact.
  const SpectrumEstimate all = lanczos_estimate(ops, op, 300);
  EXPECT_NEAR(all.highest, 3.0, 1e-9);
}

TEST(TopEigen, OnlyPositivePairsAreKept) {
  std::vector<double> ev(200);
  for (size_t i = 0; i < ev.size(); ++i) ev[i] = -1.0 - static_cast<double>(i);
  ev[7] = 0.5;  // one positive eigenvalue; c = 3 asks for more
  const KnownSpectrum k(ev, 5);
  for (const int64_t dense_max : {int64_t{1024}, int64_t{0}}) {
    TopEigenOptions o;
    o.dense_max = dense_max;
    HostDenseOps ops;
    std::vector<double> a = k.matrix;
    const TopEigen e = top_positive_eigen(ops, k.n, a.data(), k.n, 3, o);
    ASSERT_EQ(e.values.size(), 1u) << dense_max;
    EXPECT_NEAR(e.values[0], 0.5, 1e-9);
    expect_vectors(k, e, ops, {7});
  }
}

TEST(TopEigen, NegativeDefiniteIsProvedByOneFactorisation) {
  std::vector<double> ev(250);
  for (size_t i = 0; i < ev.size(); ++i) ev[i] = -0.1 - 0.001 * static_cast<double>(i);
  const KnownSpectrum k(ev, 6);
  TopEigenOptions o;
  o.dense_max = 0;
  o.probe_steps = 4;
  HostDenseOps ops;
  std::vector<double> a = k.matrix;
  const TopEigen e = top_positive_eigen(ops, k.n, a.data(), k.n, 3, o);
  EXPECT_EQ(e.path, EigenPath::Negative);
  EXPECT_TRUE(e.values.empty());
}

TEST(TopEigen, FallsBackToTheDirectSolve) {
  const KnownSpectrum k(cat_like(200), 8);
  TopEigenOptions o;
  o.dense_max = 0;
  o.shift_tries = 0;
  HostDenseOps ops;
  std::vector<double> a = k.matrix;
  const TopEigen e = top_positive_eigen(ops, k.n, a.data(), k.n, 3, o);
  EXPECT_EQ(e.path, EigenPath::Fallback);
  ASSERT_EQ(e.values.size(), 3u);
  EXPECT_NEAR(e.values[2], 3.0, 1e-9);
  expect_vectors(k, e, ops, {2, 1, 0});
}

}  // namespace
}  // namespace cm
