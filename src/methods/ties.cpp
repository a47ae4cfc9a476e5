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
  std::vector<float> magnitudes;
  const ValueSource source = [&](const ValueEmitter& emit) {
    scope([&](const TaskVectors& tasks) {
      for (int k = 0; k < K; ++k) {
        magnitudes.resize(tasks[k].size());
        for (size_t i = 0; i < magnitudes.size(); ++i) magnitudes[i] = std::fabs(tasks[k][i]);
        emit(k, magnitudes.data(), magnitudes.size());
      }
    });
  };
  ExactSelect select(K, reducer);
  select.scan(source);
  std::vector<float> thresholds(K, -std::numeric_limits<float>::infinity());
  std::vector<OrderQuery> queries;
  std::vector<int> task_of;
  for (int k = 0; k < K; ++k) {
    const uint64_t d = select.count(k);
    if (d == 0) continue;
    const double position = static_cast<double>(d) - std::floor(static_cast<double>(d) * density) - 1;
    if (position < 0) continue;
    queries.push_back({k, clamp_position(position, d)});
    task_of.push_back(k);
  }
  const std::vector<float> values = select.select(queries, source);
  for (size_t q = 0; q < values.size(); ++q) thresholds[task_of[q]] = values[q];
  return thresholds;
}

class Ties : public Method {
 public:
  Ties(Params& params, const MergeContext& ctx)
      : ctx_(ctx),
        density_(number_in(params, "density", 0.2, kOpenUnit)),
        scope_(read_scope(params)),
        alpha_(static_cast<float>(params.number("alpha", 0.3))) {}

  void prepare(UnitStream& stream) override {
    if (scope_ != StatScope::Model) return;
    CM_ASSERT(ctx_.reducer != nullptr);
    thresholds_ = trim_thresholds(model_scope(stream), ctx_.num_tasks, density_, *ctx_.reducer);
  }

  bool elementwise() const override { return scope_ == StatScope::Model; }

  void merge(const MergeUnit&, const std::vector<float>& base, TaskVectors& tasks, float* merged) override {
    if (scope_ == StatScope::Model) {
      CM_ASSERT(thresholds_.size() == tasks.size());  // prepare() ran
      return ties_combine(base, tasks, thresholds_, alpha_, merged);
    }
    LocalReducer local;  // a unit's statistics are its own, whatever the number of ranks
    ties_combine(base, tasks, trim_thresholds(unit_scope(tasks), ctx_.num_tasks, density_, local), alpha_, merged);
  }

 private:
  MergeContext ctx_;
  double density_;
  StatScope scope_;
  float alpha_;
  std::vector<float> thresholds_;
};

}  // namespace

std::unique_ptr<Method> make_ties(Params& params, const MergeContext& ctx) {
  return std::make_unique<Ties>(params, ctx);
}

}  // namespace cm
