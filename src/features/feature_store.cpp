#include "features/feature_store.hpp"

#include <algorithm>
#include <utility>

#include "common/error.hpp"
#include "methods/linalg.hpp"

namespace cm {
namespace {

void add_sqsum(std::vector<double>& sqsum, const float* rows, int64_t n, int64_t dim) {
  for (int64_t r = 0; r < n; ++r) {
    const float* x = rows + r * dim;
    for (int64_t j = 0; j < dim; ++j) sqsum[j] += static_cast<double>(x[j]) * x[j];
  }
}

}  // namespace

FeatureStore::FeatureStore(std::vector<std::string> sites, Linalg* linalg)
    : only_(std::move(sites)), linalg_(linalg) {}

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
    (linalg_ ? *linalg_ : cpu_linalg()).add_gram(rows, n, dim, s.gram.data());
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
