#include "features/feature_store.hpp"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <utility>

#include "common/error.hpp"

namespace cm {
namespace {

void add_sqsum(std::vector<double>& sqsum, const float* rows, int64_t n, int64_t dim) {
  for (int64_t r = 0; r < n; ++r) {
    const float* x = rows + r * dim;
    for (int64_t j = 0; j < dim; ++j) sqsum[j] += static_cast<double>(x[j]) * x[j];
  }
}

int blas_int(int64_t v) {
  CM_ASSERT(v >= 0 && v <= INT_MAX);
  return static_cast<int>(v);
}

// Rows are widened to double a block at a time, so a large batch never needs a full float64 copy.
constexpr int64_t kBlockRows = 1024;

// gram[dim, dim] (upper triangle, row-major) += rows^T rows in float64.
void add_gram_upper(const float* rows, int64_t n, int64_t dim, double* gram) {
  std::vector<double> x(static_cast<size_t>(std::min(n, kBlockRows) * dim));
  for (int64_t r0 = 0; r0 < n; r0 += kBlockRows) {
    const int64_t nb = std::min(kBlockRows, n - r0);
    std::copy(rows + r0 * dim, rows + (r0 + nb) * dim, x.begin());
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, blas_int(dim), blas_int(nb), 1.0, x.data(), blas_int(dim), 1.0,
                gram, blas_int(dim));
  }
}

void mirror_upper(std::vector<double>& g, int64_t dim) {
  for (int64_t i = 0; i < dim; ++i)
    for (int64_t j = i + 1; j < dim; ++j) g[j * dim + i] = g[i * dim + j];
}

}  // namespace

std::vector<double> SiteStats::gram_matrix() const {
  CM_ASSERT(kind == SiteKind::LinearInput);
  if (!has_rows()) return gram;
  std::vector<double> g(static_cast<size_t>(dim * dim), 0.0);
  add_gram_upper(x.data(), rows, dim, g.data());
  mirror_upper(g, dim);
  return g;
}

FeatureStore::FeatureStore(std::vector<std::string> sites) : only_(std::move(sites)) {}

bool FeatureStore::wants(const std::string& site) const {
  return only_.empty() || std::find(only_.begin(), only_.end(), site) != only_.end();
}

void FeatureStore::record(const std::string& site, SiteKind kind, const float* rows, int64_t n, int64_t dim) {
  CM_ASSERT(n >= 0 && dim > 0);
  auto [it, fresh] = stats_.try_emplace(site);
  SiteStats& s = it->second;
  if (fresh) {
    s.kind = kind;
    s.dim = dim;
    if (kind == SiteKind::NormInput) s.sqsum.assign(static_cast<size_t>(dim), 0.0);
  }
  CM_ASSERT(s.kind == kind && s.dim == dim);
  if (kind == SiteKind::NormInput) {
    add_sqsum(s.sqsum, rows, n, dim);
  } else if (s.has_rows() && s.rows + n < dim) {
    s.x.insert(s.x.end(), rows, rows + n * dim);
  } else {
    // From here on S is the smaller form: fold the rows held so far into it.
    if (s.has_rows()) {
      s.gram.assign(static_cast<size_t>(dim * dim), 0.0);
      add_gram_upper(s.x.data(), s.rows, dim, s.gram.data());
      std::vector<float>().swap(s.x);
    }
    add_gram_upper(rows, n, dim, s.gram.data());
    mirror_upper(s.gram, dim);
  }
  s.rows += n;
}

const SiteStats& FeatureStore::at(const std::string& site) const {
  const auto it = stats_.find(site);
  if (it == stats_.end()) fail("feature store", "internal error: site '" + site + "' was never recorded");
  return it->second;
}

uint64_t FeatureStore::bytes() const {
  uint64_t total = 0;
  for (const auto& [name, s] : stats_)
    total += s.x.size() * sizeof(float) + (s.gram.size() + s.sqsum.size()) * sizeof(double);
  return total;
}

}  // namespace cm
