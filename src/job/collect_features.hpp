#pragma once
#include <memory>
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

// Runs each task's exemplars through that task's feature model (METHODS.md "Feature model") and keeps
// the statistics this rank's tensors use. `scales` empty: the expert itself; else theta_0 + scales[k] T_k.
// The forward pass is a pipeline over ranks in stage order: every rank reads the exemplars, runs the
// stages its shard touches, takes its input hidden states from the rank before and hands the next rank
// the hidden states at the input of that rank's first stage; tasks follow one another through it.
// The exemplars are dropped as each task finishes.
std::vector<FeatureStore> collect_features(FeatureInputs& fin, const JobInputs& in, Backend& backend,
                                           const std::vector<double>& scales,
                                           const ShardPlan& plan, Communicator& comm);

}  // namespace cm
