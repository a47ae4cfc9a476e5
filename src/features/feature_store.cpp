#include "features/feature_store.hpp"

#include <cblas.h>

#include <algorithm>
#include <utility>

#include "common/error.hpp"

namespace cm {
namespace {

// Rows are widened to double a block at a time, so a large batch never needs a full float64 copy.
constexpr int64_t kBlockRows = 1024;

void add_gram(std::vector<double>& gram, const float* rows, int64_t n, int64_t dim) {
  std::vector<double> x(static_cast<size_t>(std::min(n, kBlockRows) * dim));
  for (int64_t r0 = 0; r0 < n; r0 += kBlockRows) {
    const int64_t nb = std::min(kBlockRows, n - r0);
    std::copy(rows + r0 * dim, rows + (r0 + nb) * dim, x.begin());
    // dsyrk updates the upper triangle only (half the work of a full dgemm).
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<blasint>(dim), static_cast<blasint>(nb), 1.0,
                x.data(), static_cast<blasint>(dim), 1.0, gram.data(), static_cast<blasint>(dim));
  }
  // Readers get the full symmetric matrix: mirror the upper triangle after every update.
  for (int64_t i = 0; i < dim; ++i) {
    for (int64_t j = i + 1; j < dim; ++j) gram[j * dim + i] = gram[i * dim + j];
  }
}

void add_sqsum(std::vector<double>& sqsum, const float* rows, int64_t n, int64_t dim) {
  for (int64_t r = 0; r < n; ++r) {
    const float* x = rows + r * dim;
    for (int64_t j = 0; j < dim; ++j) sqsum[j] += static_cast<double>(x[j]) * x[j];
  }
}

}  // namespace

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
    if (kind == SiteKind::LinearInput) {
      s.gram.assign(static_cast<size_t>(dim * dim), 0.0);
    } else {
      s.sqsum.assign(static_cast<size_t>(dim), 0.0);
    }
  }
  CM_ASSERT(s.kind == kind && s.dim == dim);
  if (kind == SiteKind::LinearInput) {
    add_gram(s.gram, rows, n, dim);
  } else {
    add_sqsum(s.sqsum, rows, n, dim);
  }
  s.rows += n;
}

const SiteStats& FeatureStore::at(const std::string& site) const {
  const auto it = stats_.find(site);
  if (it == stats_.end()) fail("feature store", "internal error: site '" + site + "' was never recorded");
  return it->second;
}

}  // namespace cm
