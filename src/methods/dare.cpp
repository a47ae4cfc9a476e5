// DARE (METHODS.md): drop each entry of T_k with probability p, rescale the rest by 1 / (1 - p), then task
// arithmetic or TIES steps 2-4. The mask is Philox4x32-10 keyed by (seed, expert, tensor name, flat index
// in the whole tensor), so it does not depend on backend, ranks, threads or how a tensor splits into units.
// TIES' step 2 takes the majority sign of its scope where a sum is 0; DARE has no scope option, and its TIES
// steps run over the whole model (TIES' default scope), so prepare() counts the signs of the whole model.
#include <algorithm>
#include <cstdint>

#include "common/error.hpp"
#include "common/hash.hpp"
#include "merge_math.hpp"
#include "methods/method_common.hpp"
#include "philox.hpp"

namespace cm {
namespace {

class Dare : public Method {
 public:
  Dare(Params& params, const MergeContext& ctx)
      : ctx_(ctx),
        p_(number_in(params, "p", 0.5, kHalfOpen)),
        seed_(uint32_param(params, "seed", 0)),
        ties_(params.choice("combine", {"task_arithmetic", "ties"}) == "ties") {
    if (ties_) {
      alphas_.assign(ctx.num_tasks, params.number("alpha", 0.3));
      disjoint_ = read_disjoint(params);
    } else {
      alphas_ = read_alphas(params, ctx.num_tasks, 0.3);
    }
  }

  bool elementwise(const TensorSpec&) const override { return true; }
  // combine: ties needs the model's majority sign: one pass over the dropped task vectors, reduced over ranks.
  void prepare(UnitStream& stream) override {
    if (!ties_) return;
    CM_ASSERT(ctx_.reducer != nullptr);
    std::vector<TaskVectors> dropped(static_cast<size_t>(std::max(stream.workers(), 1)));
    const std::vector<TiesTaskTrim> keep_all(static_cast<size_t>(ctx_.num_tasks), kTiesKeepAll);
    MajoritySign majority(stream.workers());
    stream.for_each(
        [&](int w, const MergeUnit& unit, const std::vector<float>& base, const TaskVectors& tasks) {
          TaskVectors& t = dropped[static_cast<size_t>(w)];
          t = tasks;
          drop(unit, t);
          majority.add(w, t, keep_all, unit.offset, base.size());
        },
        1);
    majority_ = majority.reduce(*ctx_.reducer);
  }
  // combine: ties ends in base + alpha * D; combine: task_arithmetic sums alpha_k T_k as task arithmetic does.
  std::optional<float> final_scale() const override {
    return ties_ ? std::optional<float>(static_cast<float>(alphas_[0])) : std::nullopt;
  }
  void direction(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks, float* d) override {
    CM_ASSERT(ties_);
    drop(unit, tasks);
    const std::vector<TiesTaskTrim> keep_all(tasks.size(), kTiesKeepAll);
    ties_direction(tasks, keep_all, unit.offset, majority_, disjoint_, base.size(), d);
  }
  void merge(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks, float* merged) override {
    if (!ties_) {
      drop(unit, tasks);
      return task_arithmetic(base, tasks, alphas_, merged);
    }
    direction(unit, base, tasks, merged);
    apply_final_scale(base.data(), *final_scale(), merged, merged, base.size());
  }

 private:
  // Drop and rescale: each entry of T_k kept with probability 1 - p by its own counter-based draw.
  void drop(const MergeUnit& unit, TaskVectors& tasks) const {
    const uint64_t name_hash = fnv1a64(unit.name());
    const float one_minus_p = static_cast<float>(1.0 - p_);
    for (size_t k = 0; k < tasks.size(); ++k) {
      std::vector<float>& t = tasks[k];
      for (size_t i = 0; i < t.size(); ++i) {
        const uint64_t index = static_cast<uint64_t>(unit.offset) + i;
        t[i] = dare_value(t[i], dare_keep(name_hash, static_cast<uint32_t>(k), seed_, index, p_), one_minus_p);
      }
    }
  }

  MergeContext ctx_;
  double p_;
  uint32_t seed_;
  bool ties_;
  TiesDisjoint disjoint_ = TiesDisjoint::Mean;
  float majority_ = 1.0f;       // combine: ties: the model's majority sign (prepare())
  std::vector<double> alphas_;  // combine: ties uses the one alpha, stored for every expert
};

}  // namespace

std::unique_ptr<Method> make_dare(Params& params, const MergeContext& ctx) {
  return std::make_unique<Dare>(params, ctx);
}

}  // namespace cm
