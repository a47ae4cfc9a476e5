#pragma once
// What the forward pass records for the methods. The forward hands each site's rows to a FeatureSink;
// FeatureStore, the sink of a merge, keeps what the methods use, in the smaller of two equivalent forms:
//   LinearInput site: the rows X themselves (float32 [n, dim]) while n < dim, else S = X^T X (float64,
//                     [dim, dim]) and n. Both give S; the rows also give everything CAT needs (X_k T_i^T)
//                     at O(n dim) memory instead of O(dim^2).
//   NormInput site:   sum over rows of xhat^2 per dimension (float64) and n.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "arch/model_spec.hpp"

namespace cm {

class FeatureSink {
 public:
  virtual ~FeatureSink() = default;
  // Whether `site` should be recorded at all (a rank records only its own shard's sites).
  virtual bool wants(const std::string& site) const = 0;
  // rows: [n, dim] row-major float32.
  virtual void record(const std::string& site, SiteKind kind, const float* rows, int64_t n, int64_t dim) = 0;
};

struct SiteStats {
  SiteKind kind = SiteKind::LinearInput;
  int64_t dim = 0;
  int64_t rows = 0;
  std::vector<float> x;       // [rows, dim] row-major (LinearInput while rows < dim)
  std::vector<double> gram;   // [dim, dim] row-major, full symmetric (LinearInput once rows >= dim)
  std::vector<double> sqsum;  // [dim] (NormInput)
  bool has_rows() const { return kind == SiteKind::LinearInput && gram.empty(); }
  // S = X^T X (full symmetric, row-major), from whichever form is held.
  std::vector<double> gram_matrix() const;
};

// Statistics of one task's exemplars through that task's feature model.
class FeatureStore : public FeatureSink {
 public:
  FeatureStore() = default;
  // Records only these sites; an empty list records every site.
  explicit FeatureStore(std::vector<std::string> sites);
  bool wants(const std::string& site) const override;
  void record(const std::string& site, SiteKind kind, const float* rows, int64_t n, int64_t dim) override;
  // Throws (internal error) when the site was never recorded.
  const SiteStats& at(const std::string& site) const;
  const std::map<std::string, SiteStats>& sites() const { return stats_; }
  // A site's statistics as recorded before (a feature cache's entry), in place of any it holds.
  void insert(const std::string& site, SiteStats stats) { stats_[site] = std::move(stats); }
  // Bytes held by the statistics of every site.
  uint64_t bytes() const;

 private:
  std::vector<std::string> only_;
  std::map<std::string, SiteStats> stats_;
};

}  // namespace cm
