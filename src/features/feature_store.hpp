#pragma once
// What the forward pass records for the methods. The forward hands each site's rows to a FeatureSink;
// FeatureStore, the sink of a merge, keeps only the sufficient statistics the methods use:
//   LinearInput site: S = X^T X (float64 sum over rows) and the row count n;
//   NormInput site:   sum over rows of xhat^2 per dimension (float64) and n.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "arch/model_spec.hpp"

namespace cm {

class Linalg;  // methods/linalg.hpp

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
  std::vector<double> gram;   // [dim, dim] row-major, full symmetric (LinearInput)
  std::vector<double> sqsum;  // [dim] (NormInput)
};

// Statistics of one task's exemplars through that task's feature model.
class FeatureStore : public FeatureSink {
 public:
  FeatureStore() = default;
  // Records only these sites; an empty list records every site. Gram matrices are accumulated by `linalg`
  // (the backend's device; nullptr: the CPU).
  explicit FeatureStore(std::vector<std::string> sites, Linalg* linalg = nullptr);
  bool wants(const std::string& site) const override;
  void record(const std::string& site, SiteKind kind, const float* rows, int64_t n, int64_t dim) override;
  // Throws (internal error) when the site was never recorded.
  const SiteStats& at(const std::string& site) const;
  const std::map<std::string, SiteStats>& sites() const { return stats_; }

 private:
  std::vector<std::string> only_;
  Linalg* linalg_ = nullptr;
  std::map<std::string, SiteStats> stats_;
};

}  // namespace cm
