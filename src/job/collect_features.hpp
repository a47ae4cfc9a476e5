#pragma once
#include <vector>

#include "backend/backend.hpp"
#include "features/feature_store.hpp"
#include "job/config.hpp"
#include "job/inputs.hpp"

namespace cm {

// Runs each task's exemplars through that task's feature model (METHODS.md "Feature model") and keeps
// the statistics the methods use. `scales` empty: the expert itself; else theta_0 + scales[k] * T_k.
std::vector<FeatureStore> collect_features(const JobConfig& cfg, const JobInputs& in, Backend& backend,
                                           const std::vector<double>& scales);

}  // namespace cm
