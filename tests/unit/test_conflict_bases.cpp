// CAT's removal bases from exemplar rows (methods/conflict_bases.hpp) against an independent dense oracle that
// forms S_i = X_i^T X_i and G_k = sum_{i != k} T_i (S_k - lambda S_i) T_i^T in float64 and decomposes G_k
// completely, as METHODS.md writes it: both forms, both eigensolver regimes, repeated and missing exemplar
// rows, rows equivalent to a kept S, and the CPU Linalg's worker threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "common/parallel.hpp"
#include "eigen_testing.hpp"
#include "features/feature_store.hpp"
#include "methods/host_dense_ops.hpp"
#include "methods/lapack.hpp"
#include "methods/linalg.hpp"

namespace cm {
namespace {

// A random CAT linear unit: K task vectors [out, in] with decaying singular values (fine-tuning deltas are
// far from white noise) and `rows` random feature rows per task with a few strong directions.
struct Unit {
  int64_t out, in;
  std::vector<std::vector<float>> t, x;
  std::vector<int64_t> n;
  double lambda;
  Unit(int K, int64_t out_, int64_t in_, int64_t rows, double lambda_, uint32_t seed)
      : out(out_), in(in_), lambda(lambda_) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int k = 0; k < K; ++k) {
      std::vector<float> tk(static_cast<size_t>(out * in));
      for (int64_t r = 0; r < out; ++r)
        for (int64_t c = 0; c < in; ++c) tk[r * in + c] = normal(rng) / (1.0f + 0.05f * static_cast<float>(r + c));
      t.push_back(tk);
      std::vector<float> xk(static_cast<size_t>(rows * in));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < in; ++c) xk[r * in + c] = normal(rng) * (c < 4 ? 3.0f : 1.0f);
      x.push_back(xk);
      n.push_back(rows);
    }
  }
  ConflictProblem problem() const {
    ConflictProblem p;
    p.where = "unit";
    p.out = out;
    p.in = in;
    p.lambda = lambda;
    for (size_t k = 0; k < t.size(); ++k) {
      p.tasks.push_back(t[k].data());
      p.rows.push_back({x[k].data(), n[k]});
    }
    return p;
  }
};

// The oracle: G_k (row-major, float64 throughout) and its full eigendecomposition.
struct Oracle {
  std::vector<double> values;   // ascending
  std::vector<double> vectors;  // row j: eigenvector of values[j]
};

Oracle oracle(const Unit& u, size_t k) {
  const int64_t out = u.out, in = u.in;
  std::vector<std::vector<double>> s(u.t.size(), std::vector<double>(static_cast<size_t>(in * in), 0.0));
  for (size_t i = 0; i < u.t.size(); ++i)
    for (int64_t r = 0; r < u.n[i]; ++r)
      for (int64_t a = 0; a < in; ++a)
        for (int64_t b = 0; b < in; ++b)
          s[i][a * in + b] += static_cast<double>(u.x[i][r * in + a]) * u.x[i][r * in + b];
  std::vector<double> g(static_cast<size_t>(out * out), 0.0), m(static_cast<size_t>(in * in)), ti, prod(out * in);
  for (size_t i = 0; i < u.t.size(); ++i) {
    if (i == k) continue;
    for (int64_t j = 0; j < in * in; ++j) m[j] = s[k][j] - u.lambda * s[i][j];
    ti.assign(u.t[i].begin(), u.t[i].end());
    dgemm(false, false, out, in, in, 1.0, ti.data(), m.data(), 0.0, prod.data());
    dgemm(false, true, out, out, in, 1.0, prod.data(), ti.data(), 1.0, g.data());
  }
  for (int64_t r = 0; r < out; ++r)
    for (int64_t c = r + 1; c < out; ++c) g[r * out + c] = g[c * out + r] = 0.5 * (g[r * out + c] + g[c * out + r]);
  Oracle o;
  o.values.resize(static_cast<size_t>(out));
  EXPECT_TRUE(symmetric_eigen(out, g.data(), o.values.data()));
  o.vectors = g;
  return o;
}

using testing::projector_distance;

// The oracle's basis: the eigenvectors of the at most c largest eigenvalues that are > 0.
Basis oracle_basis(const Oracle& o, int64_t out, int c) {
  Basis b;
  for (int64_t j = out - 1; j >= 0 && b.cols < c && o.values[j] > 0; --j, ++b.cols)
    b.rows.insert(b.rows.end(), o.vectors.begin() + j * out, o.vectors.begin() + (j + 1) * out);
  return b;
}

// METHODS.md's clause: the projector within 1e-4 of the dense one where the c-th and (c+1)-th eigenvalues are
// more than 1e-3 apart relative to the largest eigenvalue magnitude. Returns whether the gap allowed the check.
bool expect_matches_oracle(const Unit& u, size_t k, const Basis& got, int c) {
  const Oracle o = oracle(u, k);
  const Basis want = oracle_basis(o, u.out, c);
  const double scale = std::max(std::fabs(o.values.front()), std::fabs(o.values.back()));
  const size_t cth = o.values.size() - static_cast<size_t>(c);
  if (o.values[cth] - o.values[cth - 1] <= 1e-3 * scale) return false;
  EXPECT_EQ(got.cols, want.cols) << "task " << k;
  if (got.cols == want.cols) {
    EXPECT_LE(projector_distance(got, want, u.out), 1e-4) << "task " << k;
  }
  return true;
}

std::vector<Basis> bases(const Unit& u, int c, ConflictOptions o, ConflictStats* stats = nullptr) {
  const ConflictProblem p = u.problem();
  HostDenseOps ops;
  const ConflictBases solver(ops, p, o, stats);
  std::vector<Basis> out;
  for (size_t k = 0; k < p.num_tasks(); ++k) out.push_back(solver.basis(ops, k, c, stats));
  return out;
}

ConflictOptions pinned(ConflictOptions::Pin pin, int64_t dense_max = 1024) {
  ConflictOptions o;
  o.pin = pin;
  o.eigen.dense_max = dense_max;
  return o;
}

TEST(ConflictBases, BothFormsAndBothEigensolversMatchTheDenseOracle) {
  // out > 2 (K - 1) n: the reduced form is exact there, and so is the formed one.
  int compared = 0;
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    for (const double lambda : {0.3, 1.0, 5.0}) {
      const int c = 1 + static_cast<int>(seed % 4);
      const Unit u(3 + static_cast<int>(seed % 3), 150 + 10 * seed, 50 + 5 * seed, 12, lambda, seed);
      for (const auto pin : {ConflictOptions::Pin::Formed, ConflictOptions::Pin::Reduced})
        for (const int64_t dense_max : {int64_t{1024}, int64_t{0}}) {
          const std::vector<Basis> got = bases(u, c, pinned(pin, dense_max));
          for (size_t k = 0; k < got.size(); ++k) {
            SCOPED_TRACE("seed " + std::to_string(seed) + " lambda " + std::to_string(lambda) + " pin " +
                         std::to_string(static_cast<int>(pin)) + " dense_max " + std::to_string(dense_max));
            compared += expect_matches_oracle(u, k, got[k], c);
          }
        }
    }
  }
  EXPECT_GE(compared, 100);
}

TEST(ConflictBases, MoreRowsThanOutputsGoFormed) {
  const Unit u(4, 40, 30, 20, 5.0, 11);  // 2 (K - 1) n = 120 > out = 40
  ConflictStats stats;
  const std::vector<Basis> got = bases(u, 3, ConflictOptions{}, &stats);
  EXPECT_EQ(stats.formed, 4);
  EXPECT_EQ(stats.reduced, 0);
  int compared = 0;
  for (size_t k = 0; k < got.size(); ++k) compared += expect_matches_oracle(u, k, got[k], 3);
  EXPECT_GE(compared, 3);
}

TEST(ConflictBases, FewRowsGoReduced) {
  const Unit u(3, 300, 40, 8, 5.0, 12);  // 2 (K - 1) n = 32 << out
  ConflictStats stats;
  const std::vector<Basis> got = bases(u, 3, ConflictOptions{}, &stats);
  EXPECT_EQ(stats.reduced, 3);
  for (size_t k = 0; k < got.size(); ++k) expect_matches_oracle(u, k, got[k], 3);
}

TEST(ConflictBases, RepeatedExemplarRowsAndATaskWithoutRows) {
  Unit u(4, 200, 32, 6, 1.0, 13);
  for (size_t k = 0; k < u.x.size(); ++k)  // every task's first two rows equal (CLIP's class token in block 0)
    std::copy(u.x[k].begin(), u.x[k].begin() + u.in, u.x[k].begin() + u.in);
  u.n[2] = 0;  // task 3 recorded nothing
  for (const auto pin : {ConflictOptions::Pin::Formed, ConflictOptions::Pin::Reduced}) {
    ConflictStats stats;
    const std::vector<Basis> got = bases(u, 3, pinned(pin), &stats);
    EXPECT_EQ(got[2].cols, 0);  // no rows of its own: G_3 = -lambda B^T B has no positive eigenvalue
    for (size_t k = 0; k < got.size(); ++k) expect_matches_oracle(u, k, got[k], 3);
    if (pin == ConflictOptions::Pin::Reduced) {
      EXPECT_EQ(stats.reduced, 3);  // the ridge let every C factorise
    }
  }
}

TEST(ConflictBases, RowsEquivalentToAKeptGramMatrix) {
  // n >= in: the store keeps S, and CAT works from rows R with R^T R = S (pivoted Cholesky).
  Unit u(3, 60, 24, 40, 2.0, 14);
  std::vector<std::vector<float>> factors;
  Unit v = u;
  for (size_t k = 0; k < u.x.size(); ++k) {
    FeatureStore store;
    store.record("s", SiteKind::LinearInput, u.x[k].data(), u.n[k], u.in);
    const SiteStats& s = store.at("s");
    ASSERT_FALSE(s.has_rows());
    int64_t rank = 0;
    v.x[k] = gram_factor_rows(s.gram.data(), u.in, &rank);
    EXPECT_EQ(rank, u.in);
    v.n[k] = rank;
  }
  const std::vector<Basis> from_rows = bases(u, 3, ConflictOptions{});
  const std::vector<Basis> from_gram = bases(v, 3, ConflictOptions{});
  for (size_t k = 0; k < u.x.size(); ++k) {
    expect_matches_oracle(u, k, from_gram[k], 3);
    ASSERT_EQ(from_rows[k].cols, from_gram[k].cols);
    EXPECT_LE(projector_distance(from_rows[k], from_gram[k], u.out), 1e-4);
  }
}

TEST(ConflictBases, WorkerThreadsGiveTheSequentialBits) {
  // Each task's solve runs on one BLAS thread in a worker: the same steps as alone on one thread.
  const Unit u(6, 120, 48, 10, 5.0, 15);
  const ConflictProblem p = u.problem();
  std::vector<Basis> one;
  {
    const OneBlasThread single;
    one = bases(u, 3, ConflictOptions{});
  }
  set_cpu_threads(3);
  ConflictStats stats;
  const std::vector<Basis> many = make_cpu_linalg(LinalgOptions{})->top_eigvecs(p, 3, &stats);
  set_cpu_threads(0);
  ASSERT_EQ(many.size(), one.size());
  for (size_t k = 0; k < one.size(); ++k) EXPECT_EQ(many[k].rows, one[k].rows) << k;
  EXPECT_EQ(stats.formed + stats.reduced, 6);
  EXPECT_GT(stats.products + stats.bases, 0.0);
}

TEST(ConflictBases, FlopModelPrefersTheSmallerProblem) {
  const std::vector<int64_t> rows(8, 100);
  const TopEigenOptions o;
  // ViT-B/32: attention (out 768 < m = 1400) forms G_k; fc1 (out 3072) reduces.
  EXPECT_LT(conflict_task_flops(ConflictForm::Formed, 768, 768, rows, 0, 3, o),
            conflict_task_flops(ConflictForm::Reduced, 768, 768, rows, 0, 3, o));
  EXPECT_GT(conflict_task_flops(ConflictForm::Formed, 3072, 768, rows, 0, 3, o),
            conflict_task_flops(ConflictForm::Reduced, 3072, 768, rows, 0, 3, o));
  EXPECT_GT(conflict_unit_flops(3072, 768, rows, 3, o), conflict_unit_flops(768, 768, rows, 3, o));
}

}  // namespace
}  // namespace cm
