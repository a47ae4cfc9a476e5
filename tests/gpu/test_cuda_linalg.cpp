// The CUDA Linalg against the CPU one: feature Grams, G_k, dense and block removal bases, projections and
// RegMean's product and solve.
#include <algorithm>
#include <cmath>

#include "backend/backend.hpp"
#include "features/feature_store.hpp"
#include "gpu_testing.hpp"
#include "methods/lapack.hpp"
#include "methods/linalg.hpp"

namespace cm {
namespace {

using testing::random_floats;

double max_rel(const std::vector<double>& got, const std::vector<double>& want) {
  double scale = 0, err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::fabs(want[i]));
    err = std::max(err, std::fabs(got[i] - want[i]));
  }
  return err / std::max(scale, 1e-300);
}

// Spectral norm of B1 B1^T - B2 B2^T.
double projector_distance(const Basis& a, const Basis& b, int64_t n) {
  std::vector<double> d(static_cast<size_t>(n * n), 0.0), w(static_cast<size_t>(n));
  for (const auto& [x, sign] : {std::pair<const Basis*, double>{&a, 1.0}, {&b, -1.0}})
    for (int64_t j = 0; j < x->cols; ++j)
      for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < n; ++c) d[r * n + c] += sign * x->rows[j * n + r] * x->rows[j * n + c];
  EXPECT_TRUE(symmetric_eigen(n, d.data(), w.data()));
  return std::max(std::fabs(w.front()), std::fabs(w.back()));
}

class CudaLinalgOps : public testing::GpuTest {
 protected:
  void SetUp() override {
    testing::GpuTest::SetUp();
    if (IsSkipped()) return;
    backend = make_backend("cuda", 0, "test");
  }
  Linalg& gpu() { return backend->linalg(); }

  // K tasks [out, in] and Grams of `rows` feature rows, as a ConflictProblem.
  void make_problem(int K, int64_t out, int64_t in, int64_t rows, double lambda) {
    tasks.clear();
    grams.clear();
    for (int k = 0; k < K; ++k) {
      tasks.push_back(random_floats(out * in, 100 + k, -0.1f, 0.1f));
      const auto x = random_floats(rows * in, 200 + k);
      std::vector<double> g(in * in, 0.0);
      cpu_linalg().add_gram(x.data(), rows, in, g.data());
      grams.push_back(g);
    }
    p = ConflictProblem{};
    p.where = "unit";
    p.out = out;
    p.in = in;
    p.tasks = &tasks;
    for (const auto& g : grams) p.grams.push_back(g.data());
    p.lambda = lambda;
  }

  std::unique_ptr<Backend> backend;
  TaskVectors tasks;
  std::vector<std::vector<double>> grams;
  ConflictProblem p;
};

TEST_F(CudaLinalgOps, FeatureGramMatchesCpu) {
  const auto x = random_floats(514 * 300, 1);
  std::vector<double> got(300 * 300, 1.0), want(300 * 300, 1.0);  // both add onto what is there
  gpu().add_gram(x.data(), 514, 300, got.data());
  cpu_linalg().add_gram(x.data(), 514, 300, want.data());
  EXPECT_LE(max_rel(got, want), 1e-13);
}

TEST_F(CudaLinalgOps, ConflictGramAndDenseBasesMatchCpu) {
  make_problem(4, 300, 120, 80, 0.5);
  for (size_t k = 0; k < 4; ++k) EXPECT_LE(max_rel(gpu().conflict_gram(p, k), cpu_linalg().conflict_gram(p, k)), 1e-12);
  const auto got = gpu().top_eigvecs(p, 3), want = cpu_linalg().top_eigvecs(p, 3);
  for (size_t k = 0; k < want.size(); ++k) {
    ASSERT_EQ(got[k].cols, want[k].cols);
    EXPECT_LE(projector_distance(got[k], want[k], p.out), 1e-8) << k;
  }
}

TEST_F(CudaLinalgOps, BlockBasesMatchTheCpuBlockSolver) {
  // out above the dense limit: both run the block solver, from the same start block.
  make_problem(4, 2304, 256, 128, 0.3);
  ConflictTimes times;
  p.times = &times;
  const auto got = gpu().top_eigvecs(p, 3), want = cpu_linalg().top_eigvecs(p, 3);
  for (size_t k = 0; k < want.size(); ++k) {
    ASSERT_EQ(got[k].cols, want[k].cols);
    EXPECT_LE(projector_distance(got[k], want[k], p.out), 1e-6) << k;
  }
  EXPECT_GT(times.bases, 0.0);
}

TEST_F(CudaLinalgOps, ProjectionMatchesCpu) {
  make_problem(3, 200, 90, 60, 0.5);
  const auto bases = cpu_linalg().top_eigvecs(p, 4);
  TaskVectors got = tasks, want = tasks;
  gpu().project(bases, p.out, p.in, got);
  cpu_linalg().project(bases, p.out, p.in, want);
  for (size_t i = 0; i < want.size(); ++i)
    for (size_t j = 0; j < want[i].size(); ++j) ASSERT_NEAR(got[i][j], want[i][j], 1e-7f) << i << "," << j;
}

TEST_F(CudaLinalgOps, RegMeanStepsMatchCpu) {
  const int64_t m = 70, n = 90, k = 50;
  std::vector<double> a(m * k), b(k * n), c(m * n);
  for (size_t i = 0; i < a.size(); ++i) a[i] = std::sin(0.1 * static_cast<double>(i));
  for (size_t i = 0; i < b.size(); ++i) b[i] = std::cos(0.07 * static_cast<double>(i));
  for (size_t i = 0; i < c.size(); ++i) c[i] = 0.01 * static_cast<double>(i);
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      std::vector<double> got = c, want = c;
      gpu().dgemm(ta, tb, m, n, k, 0.5, a.data(), b.data(), 2.0, got.data());
      cpu_linalg().dgemm(ta, tb, m, n, k, 0.5, a.data(), b.data(), 2.0, want.data());
      EXPECT_LE(max_rel(got, want), 1e-14) << ta << tb;
    }
  const int64_t d = 60, nrhs = 7;
  std::vector<double> spd(d * d, 0.0), rhs(nrhs * d);
  const auto x = random_floats(100 * d, 3);
  cpu_linalg().add_gram(x.data(), 100, d, spd.data());
  for (size_t i = 0; i < rhs.size(); ++i) rhs[i] = std::sin(static_cast<double>(i));
  std::vector<double> a1 = spd, a2 = spd, got = rhs, want = rhs;
  ASSERT_TRUE(gpu().solve_spd(d, a1.data(), nrhs, got.data()));
  ASSERT_TRUE(cpu_linalg().solve_spd(d, a2.data(), nrhs, want.data()));
  EXPECT_LE(max_rel(got, want), 1e-10);
  std::vector<double> singular(d * d, 0.0), keep = rhs;  // rank 1: not positive definite
  for (int64_t r = 0; r < d; ++r)
    for (int64_t c2 = 0; c2 < d; ++c2) singular[r * d + c2] = -1.0;
  EXPECT_FALSE(gpu().solve_spd(d, singular.data(), nrhs, keep.data()));
  EXPECT_EQ(keep, rhs);
}

}  // namespace
}  // namespace cm
