#pragma once
// The merge-method interface. A method sees the model one merge unit at a time (a tensor, or one row
// block of a fused tensor) with the base values and the ORIGINAL task vectors T_k = theta_k - theta_0,
// and returns the merged float32 values of that unit. Methods that need whole-model statistics compute
// them in prepare(), which may stream over every unit of this process as often as it needs and reduce
// across processes through the Reducer, so the result is the same for any number of ranks.
#include <functional>
#include <memory>
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

// Visits every merge unit of this process (its shard) with base values and task vectors.
class UnitStream {
 public:
  virtual ~UnitStream() = default;
  using Visitor = std::function<void(const MergeUnit&, const std::vector<float>& base, const TaskVectors& tasks)>;
  virtual void for_each(const Visitor& visit) = 0;
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
  // Merged values of one unit. `tasks` holds the original task vectors and may be overwritten.
  virtual std::vector<float> merge(const MergeUnit& unit, const std::vector<float>& base, TaskVectors& tasks) = 0;
};

// Builds the method named `name` reading its hyperparameters from `params` (then params.finish()).
// Throws cm::Error naming params.where() for an unknown method or bad hyperparameter.
// The method keeps a copy of ctx: what its pointers point to must outlive it (features is read in merge()).
std::unique_ptr<Method> make_method(const std::string& name, Params& params, const MergeContext& ctx);

// Every method name, in the order METHODS.md lists them.
const std::vector<std::string>& method_names();

}  // namespace cm
