#pragma once
// Pieces the method files share: the factories the registry calls, hyperparameter range checks,
// per-expert alphas, task arithmetic, and the scope of whole-model statistics.
#include <algorithm>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "merge_math.hpp"
#include "methods/method.hpp"
#include "methods/select.hpp"

namespace cm {

std::unique_ptr<Method> make_weight_average(Params& params, const MergeContext& ctx);
std::unique_ptr<Method> make_task_arithmetic(Params& params, const MergeContext& ctx);
std::unique_ptr<Method> make_ties(Params& params, const MergeContext& ctx);
std::unique_ptr<Method> make_dare(Params& params, const MergeContext& ctx);
std::unique_ptr<Method> make_pcb(Params& params, const MergeContext& ctx);
std::unique_ptr<Method> make_regmean(Params& params, const MergeContext& ctx);
std::unique_ptr<Method> make_fisher(Params& params, const MergeContext& ctx);
std::unique_ptr<Method> make_cat(Params& params, const MergeContext& ctx);

// An interval a hyperparameter must lie in; each end open or closed, or absent (infinite).
struct Interval {
  double lo, hi;
  bool lo_open, hi_open;
};
inline constexpr double kUnbounded = 1e308;
inline constexpr Interval kOpenUnit{0, 1, true, false};    // (0, 1]
inline constexpr Interval kHalfOpen{0, 1, false, true};    // [0, 1)
inline constexpr Interval kUnit{0, 1, false, false};       // [0, 1]
inline constexpr Interval kNonNegative{0, kUnbounded, false, false};

// params.number(key, fallback), failing with "<where>.<key>: must be in (0, 1], got 1.5" outside `range`.
double number_in(Params& params, const std::string& key, double fallback, const Interval& range);
// params.integer(key, fallback), at least `least`.
int integer_at_least(Params& params, const std::string& key, int fallback, int least);
// A uint32 given as a number (DARE's seed).
uint32_t uint32_param(Params& params, const std::string& key, uint32_t fallback);

// alpha_k for every expert: `alphas` (one per expert) or `alpha` (default `fallback`) for all; not both.
std::vector<double> read_alphas(Params& params, int num_tasks, double fallback);

// The combinations below write base.size() values to out.
// theta_0 + (1/K) sum_k T_k (float32, ascending k).
void weight_average(const std::vector<float>& base, const TaskVectors& tasks, float* out);

// theta_0 + sum_k alpha_k T_k (float32 alpha_k, ascending k).
void task_arithmetic(const std::vector<float>& base, const TaskVectors& tasks, const std::vector<double>& alphas,
                     float* out);

// sum_k T_k (float32, ascending k) of n entries: the direction of CAT with one alpha.
void task_sum(const TaskVectors& tasks, size_t n, float* out);

// The TIES steps below work on n entries of one tensor from flat index `offset` on (a unit or a block of one),
// keeping of task k what trims[k] keeps (merge_math.hpp ties_trim; kTiesKeepAll keeps everything: DARE).
inline constexpr TiesTaskTrim kTiesKeepAll{-std::numeric_limits<float>::infinity(), 0};

// TIES steps 1-3, the direction of step 4: per entry the agreeing trimmed values combined as `disjoint` says,
// with `majority` as the elected sign where the trimmed values sum to 0 (merge_math.hpp ties_combine).
void ties_direction(const TaskVectors& tasks, const std::vector<TiesTaskTrim>& trims, int64_t offset, float majority,
                    TiesDisjoint disjoint, size_t n, float* d);

// Step 2's counts over the same entries: how many trimmed sums are > 0 and < 0 (added to *positive, *negative).
void ties_count_signs(const TaskVectors& tasks, const std::vector<TiesTaskTrim>& trims, int64_t offset, size_t n,
                      uint64_t* positive, uint64_t* negative);

// Step 2's majority sign of a scope, sign(sums > 0 - sums < 0) or +1 when they balance, counted block by block from
// up to `workers` threads at once (add() with the block's own worker), then reduced over ranks.
class MajoritySign {
 public:
  explicit MajoritySign(int workers) : counts_(2 * static_cast<size_t>(std::max(workers, 1)), 0) {}
  void add(int worker, const TaskVectors& tasks, const std::vector<TiesTaskTrim>& trims, int64_t offset, size_t n);
  // Collective: every rank calls it once, after its last add().
  float reduce(Reducer& reducer) const;

 private:
  std::vector<uint64_t> counts_;  // [worker][positive, negative]
};

// `disjoint` of TIES (and of DARE with combine: ties): mean (default) or sum.
TiesDisjoint read_disjoint(Params& params);

// Visits the task vectors of every unit (or block) a statistic runs over, from up to `workers` threads at once:
// all units of the model on this rank (scope: model, reduced over ranks) or the unit being merged (scope:
// tensor). Either way a UnitStream that the job gives prepare() or prepare_unit(); sample_stride as there.
using ScopeVisitor = std::function<void(int worker, const MergeUnit& block, const TaskVectors&)>;
struct Scope {
  std::function<void(const ScopeVisitor&, int64_t sample_stride)> visit;
  int workers = 1;
};
Scope stream_scope(UnitStream& stream);

// |T_k| of every entry of the scope as series k (TIES' trim, PCB's clamp), from per-worker buffers.
ValueSource magnitudes_of(const Scope& scope, int num_tasks);

enum class StatScope { Model, Tensor };
StatScope read_scope(Params& params);

// `variant` of CAT (METHODS.md "CAT as released"): the paper's formulas (default) or the authors' released code.
enum class CatVariant { Paper, Released };
CatVariant read_cat_variant(Params& params);

// An element-wise method whose merge needs statistics of its scope (TIES, PCB): over the whole model once,
// reduced over ranks (scope: model), or over each unit before it merges (scope: tensor).
class ScopedStatisticsMethod : public Method {
 public:
  void prepare(UnitStream& stream) override;
  bool elementwise(const TensorSpec&) const override { return true; }
  bool unit_statistics() const override { return scope_ == StatScope::Tensor; }
  void prepare_unit(UnitStream& stream) override;

 protected:
  ScopedStatisticsMethod(Params& params, const MergeContext& ctx) : ctx_(ctx), scope_(read_scope(params)) {}
  // The statistics of one scope, kept for the merge() calls that follow.
  virtual void compute_statistics(const Scope& scope, Reducer& reducer) = 0;

  MergeContext ctx_;
  StatScope scope_;
};

}  // namespace cm
