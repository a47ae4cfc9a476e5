#pragma once
#include <vector>

#include "backend/backend.hpp"
#include "comm/communicator.hpp"
#include "features/feature_store.hpp"
#include "job/config.hpp"
#include "job/inputs.hpp"
#include "plan/shard_plan.hpp"

namespace cm {

// Runs each task's exemplars through that task's feature model (METHODS.md "Feature model") and keeps
// the statistics this rank's tensors use. `scales` empty: the expert itself; else theta_0 + scales[k] T_k.
// The forward pass is a pipeline over ranks in stage order: every rank reads the exemplars, runs the
// stages its shard touches, takes its input hidden states from the rank before and hands the next rank
// the hidden states at the input of that rank's first stage; tasks follow one another through it.
std::vector<FeatureStore> collect_features(const JobConfig& cfg, const JobInputs& in, Backend& backend,
                                           const std::vector<double>& scales, const ShardPlan& plan,
                                           Communicator& comm);

}  // namespace cm
