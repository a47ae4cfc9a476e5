// TIES-Merging (METHODS.md): trim each task vector to exactly its top `density` fraction by magnitude over the
// model or over each unit (ties to the lower flat index), elect signs (the scope's majority sign where a sum is 0),
// combine the agreeing values (disjoint mean or sum), scale by alpha. The trim's statistics: methods/ties_trim.hpp.
#include <memory>

#include "common/error.hpp"
#include "methods/method_common.hpp"
#include "methods/ties_trim.hpp"

namespace cm {
namespace {

class Ties : public ScopedStatisticsMethod {
 public:
  Ties(Params& params, const MergeContext& ctx)
      : ScopedStatisticsMethod(params, ctx),
        density_(number_in(params, "density", 0.2, kOpenUnit)),
        alpha_(static_cast<float>(params.number("alpha", 0.3))),
        disjoint_(read_disjoint(params)) {}

  std::optional<float> final_scale() const override { return alpha_; }
  void direction(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks, float* d) override {
    CM_ASSERT(!trim_.empty());  // prepare() or prepare_unit() ran
    ties_direction(tasks, trim_.of_unit(units_->of(unit)), unit.offset, trim_.majority, disjoint_, base.size(), d);
  }
  void merge(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks, float* merged) override {
    direction(unit, base, tasks, merged);
    apply_final_scale(base.data(), alpha_, merged, merged, base.size());
  }

 private:
  void compute_statistics(const Scope& scope, Reducer& reducer) override {
    CM_ASSERT(ctx_.model != nullptr);
    if (!units_) units_ = std::make_unique<UnitIndex>(*ctx_.model);
    trim_ = ties_trim_scope(scope, *units_, ctx_.num_tasks, density_, reducer);
  }

  double density_;
  float alpha_;
  TiesDisjoint disjoint_;
  std::unique_ptr<UnitIndex> units_;  // the scope order of the trim's ties, made on first use
  TiesTrim trim_;
};

}  // namespace

std::unique_ptr<Method> make_ties(Params& params, const MergeContext& ctx) {
  return std::make_unique<Ties>(params, ctx);
}

}  // namespace cm
