#pragma once
// Test scaffolding for the eigensolvers and removal bases: symmetric matrices with a chosen spectrum, and
// the distance between the projectors of two bases.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "methods/conflict_bases.hpp"
#include "methods/lapack.hpp"

namespace cm::testing {

// Q diag(ev) Q^T for a random orthogonal Q (symmetric, so row-major = column-major), and Q's rows: row j is
// the unit eigenvector of ev[j].
struct KnownSpectrum {
  int64_t n;
  std::vector<double> matrix, vectors;
  KnownSpectrum(const std::vector<double>& ev, uint32_t seed) : n(static_cast<int64_t>(ev.size())) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> normal;
    std::vector<double> r(static_cast<size_t>(n * n)), w(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j <= i; ++j) r[i * n + j] = r[j * n + i] = normal(rng);
    EXPECT_TRUE(symmetric_eigen(n, r.data(), w.data()));  // rows of r: an orthonormal basis
    vectors = r;
    matrix.assign(static_cast<size_t>(n * n), 0.0);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t x = 0; x < n; ++x)
        for (int64_t y = 0; y < n; ++y) matrix[x * n + y] += ev[j] * vectors[j * n + x] * vectors[j * n + y];
  }
  const double* vector(int64_t j) const { return vectors.data() + j * n; }
};

// Spectral norm of B1 B1^T - B2 B2^T (both [cols, n] rows).
inline double projector_distance(const Basis& a, const Basis& b, int64_t n) {
  std::vector<double> d(static_cast<size_t>(n * n), 0.0), w(static_cast<size_t>(n));
  for (const auto& [x, sign] : {std::pair<const Basis*, double>{&a, 1.0}, {&b, -1.0}})
    for (int64_t j = 0; j < x->cols; ++j)
      for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < n; ++c) d[r * n + c] += sign * x->rows[j * n + r] * x->rows[j * n + c];
  EXPECT_TRUE(symmetric_eigen(n, d.data(), w.data()));
  return std::max(std::fabs(w.front()), std::fabs(w.back()));
}

}  // namespace cm::testing
