#pragma once
// The merge-method interface. A method sees the model one merge unit at a time (a tensor, or one row
// block of a fused tensor) with the base values and the ORIGINAL task vectors T_k = theta_k - theta_0,
// and writes the merged float32 values of that unit. Methods that need whole-model statistics compute
// them in prepare(), which may stream over every unit of this process as often as it needs and reduce
// across processes through the Reducer, so the result is the same for any number of ranks. An element-wise
// method (elementwise(t)) is also given row blocks of units, from several threads at once.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arch/model_spec.hpp"
#include "comm/reducer.hpp"
#include "features/feature_store.hpp"
#include "methods/params.hpp"

namespace cm {

using TaskVectors = std::vector<std::vector<float>>;  // [K][unit numel]

class Linalg;          // methods/linalg.hpp
struct ConflictStats;  // methods/conflict_bases.hpp

// Visits every merge unit of this process (its shard), or of one unit, with base values and task vectors:
// each unit whole, or in blocks of rows (MergeUnits with the block's offset and shape), every value once; or,
// with sample_stride > 1, only the runs sample_runs() cuts from each unit (arch/model_spec.hpp).
// Visits may run on several threads at once: `worker` (below workers()) names the calling thread.
class UnitStream {
 public:
  virtual ~UnitStream() = default;
  using Visitor =
      std::function<void(int worker, const MergeUnit&, const std::vector<float>& base, const TaskVectors& tasks)>;
  virtual void for_each(const Visitor& visit, int64_t sample_stride) = 0;
  virtual int workers() const { return 1; }
};

// What a method may use besides the tensors.
struct MergeContext {
  const ModelSpec* model = nullptr;
  int num_tasks = 0;
  // Features per task (index k), filled before merge() when needs_features(); empty otherwise.
  const std::vector<FeatureStore>* features = nullptr;
  // Diagonal Fisher values of expert k for a unit (fisher method only).
  std::function<std::vector<float>(int k, const MergeUnit&)> fisher;
  Reducer* reducer = nullptr;
  // Exemplars per task (features.exemplars), for the cost model of methods that use features.
  int exemplars = 0;
  // The heavy linear algebra (CAT, RegMean): the backend's device; nullptr is the CPU (cpu_linalg()).
  Linalg* linalg = nullptr;
  // When set, CAT adds the times and counts of its linear steps here.
  ConflictStats* cat_stats = nullptr;
};

class Method {
 public:
  virtual ~Method() = default;
  virtual bool needs_features() const { return false; }
  // alpha_k of each task for the `scaled` feature model (theta_0 + alpha_k T_k); empty when the method
  // has no per-task scale, which makes `features.model: scaled` an error.
  virtual std::vector<double> task_scales() const { return {}; }
  // Whole-model statistics; default: none.
  virtual void prepare(UnitStream&) {}
  // Whether merge() needs statistics of the unit it merges (TIES and PCB with scope: tensor): before the
  // merge() calls of each unit, the job gives prepare_unit() a stream over that unit alone.
  virtual bool unit_statistics() const { return false; }
  virtual void prepare_unit(UnitStream&) {}
  // Whether, after prepare(), each merged entry of tensor t depends only on the same entry of base and tasks
  // (and its flat index): merge() may then be given row blocks of its units (a MergeUnit with the block's
  // offset and shape), and calls on disjoint blocks may run at the same time on different threads. Methods
  // that need whole units for some roles (CAT, RegMean) are element-wise on the others, whose units (a
  // LLaMA embedding: 131 M values a checkpoint) then never sit whole in memory.
  virtual bool elementwise(const TensorSpec& t) const = 0;
  // The work of merging tensor t, in flop-like units comparable across tensors and methods: what the shard
  // plan balances. Default: a pass over the base and every task vector of the tensor.
  virtual double cost(const TensorSpec& t) const;
  // Merged values of one unit into merged[0, unit.numel()). `tasks` holds the original task vectors and may
  // be overwritten.
  virtual void merge(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks, float* merged) = 0;

  // When merge() is theta_0 + alpha * D for the method's one alpha, with D computed without alpha (TIES, PCB,
  // DARE with combine: ties, CAT with `alpha`): that alpha. Task arithmetic has none: it rounds
  // sum_k alpha_k T_k as METHODS.md and the reference write it, and it has no alpha-free work worth keeping. D is then what direction() writes, and merge() is
  // apply_final_scale() of it, so a sweep computes D once for every alpha and gets the same bits as one run per
  // alpha (job/sweep.hpp). Features of the `scaled` model depend on alpha too: the job knows that, not this.
  virtual std::optional<float> final_scale() const { return std::nullopt; }
  // D of one unit into d[0, unit.numel()), for a method with a final scale; as merge(), `tasks` may be overwritten.
  virtual void direction(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks, float* d);
};

// out = base + alpha * d, element by element: the last step of every method with a final scale, one function so
// that a run and a sweep round the same way. out may be d.
void apply_final_scale(const float* base, float alpha, const float* d, float* out, size_t n);

// Builds the method named `name` reading its hyperparameters from `params` (then params.finish()).
// Throws cm::Error naming params.where() for an unknown method or bad hyperparameter.
// The method keeps a copy of ctx: what its pointers point to must outlive it (features is read in merge()).
std::unique_ptr<Method> make_method(const std::string& name, Params& params, const MergeContext& ctx);

// Every method name, in the order METHODS.md lists them.
const std::vector<std::string>& method_names();

// Whether method `name` with these hyperparameters takes its features from the scaled model theta_0 + alpha_k T_k
// when the configuration leaves `features.model` out (CAT's `variant: released`). Throws cm::Error naming
// `where` for a bad variant.
bool default_scaled_features(const std::string& name, const std::map<std::string, std::string>& params,
                             const std::string& where);

}  // namespace cm
