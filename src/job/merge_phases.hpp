#pragma once
// The phases of a merge (docs/DESIGN.md "Phases"), shared by `run` (job/merge_job) and `sweep` (job/sweep):
// open the inputs; build methods and plan the shards by their cost; collect each feature model's features once;
// prepare a method over this rank's shard; merge this rank's tensors (job/merge_loop). Each phase is collective
// where it says so: every rank calls it in the same order.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "comm/communicator.hpp"
#include "job/collect_features.hpp"
#include "job/config.hpp"
#include "job/inputs.hpp"
#include "methods/conflict_bases.hpp"
#include "methods/method.hpp"
#include "plan/shard_plan.hpp"

namespace cm {

// A method built for this job, and the feature model it needs (METHODS.md "Feature model").
struct BuiltMethod {
  std::unique_ptr<Method> method;
  bool features = false;       // it needs features
  std::vector<double> scales;  // empty: the experts themselves; else theta_0 + scales[k] T_k
};

class MergePhases {
 public:
  // Open: the checkpoints, checked against each other; the backend; and, when `with_features`, the exemplars
  // every rank reads. Throws cm::Error on bad input.
  MergePhases(const JobConfig& cfg, Communicator& comm, bool with_features, bool with_fisher);

  const JobConfig& config() const { return cfg_; }
  const JobInputs& inputs() const { return in_; }
  Backend& backend() { return *backend_; }
  Communicator& comm() { return comm_; }
  ConflictStats& cat_stats() { return cat_stats_; }

  // A method named `name` with hyperparameters `params`, wired to the features of its feature model (collected
  // by features()), on the model whose sites count the exemplars' rows (its cost model needs them). Throws
  // cm::Error naming params.where() for a bad hyperparameter, or a feature model it has no meaning for.
  BuiltMethod build(const std::string& name, Params& params, FeatureModel feature_model);
  // The work of merging each tensor of the model with `method` (what the plan balances).
  std::vector<double> costs(const Method& method) const;

  // Plan: the shards, balanced by `costs` (one per tensor of the model).
  void plan(const std::vector<double>& costs);
  const ShardPlan& shard_plan() const { return plan_; }
  const RankShard& shard() const { return plan_.ranks[static_cast<size_t>(comm_.rank())]; }

  // Features (collective): the statistics `m` needs, collected through the rank pipeline (or features.cache)
  // the first time its feature model is asked for, and kept for every later method of the same model.
  void features(const BuiltMethod& m);
  uint64_t feature_bytes() const;

  // Prepare (collective): the method's whole-model statistics over this rank's shard.
  void prepare(Method& method);

 private:
  const JobConfig& cfg_;
  Communicator& comm_;
  JobInputs in_;
  std::unique_ptr<Backend> backend_;
  FeatureInputs feature_inputs_;
  ModelSpec costed_;  // the model, its sites counting the exemplars' rows
  ShardPlan plan_;
  ConflictStats cat_stats_;
  // Per feature model (its scales): each task's statistics for this rank's shard, and whether collected yet.
  struct Collected {
    std::vector<FeatureStore> stores;
    bool done = false;
  };
  std::map<std::vector<double>, Collected> features_;
};

}  // namespace cm
