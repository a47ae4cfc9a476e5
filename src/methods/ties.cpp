// TIES-Merging (METHODS.md): trim each task vector to its top `density` fraction by magnitude (threshold
// by exact selection over the model or over each unit), elect signs, disjoint mean, scale by alpha.
#include <cmath>
#include <limits>

#include "common/error.hpp"
#include "methods/method_common.hpp"
#include "methods/select.hpp"

namespace cm {
namespace {

// Per task, the magnitude an entry must reach to be kept: sorted |T_k| at d - floor(d * density) - 1,
// or -infinity (keep all) where that position is negative.
std::vector<float> trim_thresholds(const Scope& scope, int K, double density, Reducer& reducer) {
  const auto kept_from = [density](uint64_t d) {
    return static_cast<int64_t>(static_cast<double>(d) - std::floor(static_cast<double>(d) * density) - 1);
  };
  std::vector<OrderQuery> queries;
  for (int k = 0; k < K; ++k) queries.push_back({k, kept_from});
  ExactSelect select(K, reducer, scope.workers);
  select.run(queries, magnitudes_of(scope, K));
  std::vector<float> thresholds(K);
  for (int k = 0; k < K; ++k) thresholds[k] = select.value(k).value_or(-std::numeric_limits<float>::infinity());
  return thresholds;
}

class Ties : public ScopedStatisticsMethod {
 public:
  Ties(Params& params, const MergeContext& ctx)
      : ScopedStatisticsMethod(params, ctx),
        density_(number_in(params, "density", 0.2, kOpenUnit)),
        alpha_(static_cast<float>(params.number("alpha", 0.3))) {}

  std::optional<float> final_scale() const override { return alpha_; }
  void direction(const MergeUnit&, const std::vector<float>& base, TaskVectors& tasks, float* d) override {
    CM_ASSERT(thresholds_.size() == tasks.size());  // prepare() or prepare_unit() ran
    ties_direction(tasks, thresholds_, base.size(), d);
  }
  void merge(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks, float* merged) override {
    direction(unit, base, tasks, merged);
    apply_final_scale(base.data(), alpha_, merged, merged, base.size());
  }

 private:
  void compute_statistics(const Scope& scope, Reducer& reducer) override {
    thresholds_ = trim_thresholds(scope, ctx_.num_tasks, density_, reducer);
  }

  double density_;
  float alpha_;
  std::vector<float> thresholds_;
};

}  // namespace

std::unique_ptr<Method> make_ties(Params& params, const MergeContext& ctx) {
  return std::make_unique<Ties>(params, ctx);
}

}  // namespace cm
