#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "comm/communicator.hpp"
#include "features/feature_store.hpp"
#include "features/forward.hpp"
#include "io/exemplars.hpp"
#include "job/config.hpp"
#include "job/inputs.hpp"
#include "plan/shard_plan.hpp"

namespace cm {

// The forward pass of the job's architecture and every task's exemplars, which every rank reads.
struct FeatureInputs {
  std::unique_ptr<Forward> forward;
  std::vector<Exemplars> exemplars;  // per task, in configuration order
};

// Throws cm::Error naming the configuration key and the file when an expert has no exemplars or they do not
// fit the model.
FeatureInputs open_feature_inputs(const JobConfig& cfg, const ArchModel& arch, Backend& backend);

// `model` with each site's rows per exemplar as the forward records them from the first task's exemplars
// (token counts are known only from the exemplars), for the methods' cost models.
ModelSpec with_feature_rows(const ModelSpec& model, const FeatureInputs& fin);

// The sites whose statistics the tensors of `shard` use, each once, in model order: what a rank's FeatureStore
// records (an empty list: every site of the stages it runs).
std::vector<std::string> feature_sites(const ModelSpec& model, const RankShard& shard);

// Runs each task of `tasks` (indices into the experts, ascending) through that task's feature model (METHODS.md
// "Feature model") and keeps the statistics this rank's tensors use; every other task gets an empty store (one
// that records this rank's sites, holding none). `scales` empty: the expert itself; else theta_0 + scales[k] T_k.
// The forward pass is a pipeline over ranks in stage order: every rank reads the exemplars, runs the
// stages its shard touches, takes its input hidden states from the rank before and hands the next rank
// the hidden states at the input of that rank's first stage; tasks follow one another through it.
// Collective: every rank passes the same `tasks`. A task's statistics do not depend on which other tasks run
// with it (the worker count is the one of all tasks). The exemplars are kept: a sweep's next feature model
// runs them again.
std::vector<FeatureStore> collect_features(const FeatureInputs& fin, const JobInputs& in, Backend& backend,
                                           const std::vector<double>& scales,
                                           const ShardPlan& plan, Communicator& comm, const std::vector<int>& tasks);
// Every task.
std::vector<FeatureStore> collect_features(const FeatureInputs& fin, const JobInputs& in, Backend& backend,
                                           const std::vector<double>& scales,
                                           const ShardPlan& plan, Communicator& comm);

}  // namespace cm
