#pragma once
// The `inputs` attribute of an output (README "Output format"): every file the run read, with its path, size
// and content hash (io/content_hash.hpp). The checkpoints' safetensors files are hashed by the ranks as they
// read them: a leaf (256 KiB chunk) belongs to the rank that owns the tensor holding the leaf's last byte (rank
// 0 for headers and for tensors outside the model), that rank computes whatever of its leaves no read
// completed, and one all-reduce of the leaves (zero where not owned) gives rank 0 every root. Other files
// (configs, shard indexes, HDF5 checkpoints, exemplars) rank 0 hashes whole.
#include <nlohmann/json.hpp>

#include "comm/communicator.hpp"
#include "job/config.hpp"
#include "job/inputs.hpp"
#include "plan/shard_plan.hpp"

namespace cm {

// Collective. The list on rank 0, null elsewhere.
nlohmann::json describe_inputs(const JobConfig& cfg, const JobInputs& in, const ShardPlan& plan, Communicator& comm,
                               bool used_features);

}  // namespace cm
