#pragma once
// The output of a merge (README "Output format"), opened before the merge and committed after it, on every rank
// of the job: rank 0's HDF5 file, with every dataset declared up front in model order (so the file is the same
// for any number of ranks), with the merged tensors coming to it through the gather; or the safetensors
// directory whose shards each rank writes for its own tensors. Either way under a temporary name, renamed by
// commit() only when complete. `run` and a sweep's chosen point write through it.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "io/hdf5_writer.hpp"
#include "job/config.hpp"
#include "job/gather.hpp"
#include "job/hf_output.hpp"
#include "job/inputs.hpp"
#include "plan/shard_plan.hpp"

namespace cm {

class RunOutput {
 public:
  // Collective. cfg.method names the method; `hyperparameters` is what it used (Params::used()).
  RunOutput(const JobConfig& cfg, const JobInputs& in, const ShardPlan& plan, nlohmann::json hyperparameters,
            Communicator& comm);

  // How merged tensors reach it, and where this rank writes (nullptr: this rank only sends).
  TensorGather::Route route() const { return hf_ ? TensorGather::Route::Local : TensorGather::Route::ToRoot; }
  TensorSink* sink() const;
  // The stored size of every tensor of the model in the output dtype, and that dtype.
  const std::vector<uint64_t>& stored_bytes() const { return stored_bytes_; }
  DType dtype_of(const TensorSpec& t) const { return cfg_.output_dtype.value_or(t.dtype); }

  // After every merged tensor is in: the base's tensors the merge does not cover (safetensors; this rank's).
  void copy_base_tensors(const JobInputs& in);
  // Collective, last: the attributes or the index with `inputs` (provenance, rank 0's), and the rename to the
  // final name.
  void commit(const JobInputs& in, const nlohmann::json& inputs, bool used_features);

 private:
  const JobConfig& cfg_;
  Communicator& comm_;
  nlohmann::json hyperparameters_;
  std::vector<uint64_t> stored_bytes_;
  std::unique_ptr<Hdf5Writer> h5_;
  std::unique_ptr<HfOutput> hf_;
};

// The stored bytes of a tensor's merged values [first, first + n), converted to `dtype`, written into `dest`.
void store_values(TensorGather::Tensor& dest, DType dtype, int64_t first, const float* values, int64_t n,
                  std::vector<unsigned char>& scratch);

}  // namespace cm
