#include "job/run_output.hpp"

#include <filesystem>

namespace cm {

RunOutput::RunOutput(const JobConfig& cfg, const JobInputs& in, const ShardPlan& plan, nlohmann::json hyperparameters,
                     Communicator& comm)
    : cfg_(cfg), comm_(comm), hyperparameters_(std::move(hyperparameters)) {
  for (const TensorSpec& t : in.model().tensors)
    stored_bytes_.push_back(static_cast<uint64_t>(t.numel()) * dtype_size(dtype_of(t)));
  if (cfg.output_format == OutputFormat::Safetensors) {
    std::vector<TensorInfo> merged;
    std::vector<int> part;
    for (size_t r = 0; r < plan.ranks.size(); ++r)
      for (int i = plan.ranks[r].first_tensor; i < plan.ranks[r].end_tensor; ++i) {
        const TensorSpec& t = in.model().tensors[i];
        merged.push_back({t.name, dtype_of(t), t.shape});
        part.push_back(static_cast<int>(r));
      }
    hf_ = std::make_unique<HfOutput>(cfg.output_path, output_tensors(merged, part, &in.base(), cfg.output_dtype),
                                     cfg.shard_size,
                                     output_metadata(CATMERGE_VERSION, cfg.arch, cfg.method, hyperparameters_.dump()),
                                     comm);
  } else if (comm.rank() == 0) {
    const std::filesystem::path folder = std::filesystem::path(cfg.output_path).parent_path();
    std::error_code ec;
    if (!folder.empty()) std::filesystem::create_directories(folder, ec);
    h5_ = std::make_unique<Hdf5Writer>(cfg.output_path);
    for (const TensorSpec& t : in.model().tensors) h5_->declare_tensor(t.name, dtype_of(t), t.shape);
  }
}

TensorSink* RunOutput::sink() const { return hf_ ? &hf_->sink() : static_cast<TensorSink*>(h5_.get()); }

void RunOutput::copy_base_tensors(const JobInputs& in) {
  if (hf_) hf_->copy_tensors(in.base(), hf_->tensors().merged, hf_->tensors().stored.size());
}

void RunOutput::commit(const JobInputs& in, const nlohmann::json& inputs, bool used_features) {
  if (hf_) {
    hf_->commit(base_files(cfg_.base, &in.base(), ""),
                {{"config", cfg_.text}, {"inputs", comm_.rank() == 0 ? inputs.dump() : ""}});
  }
  if (h5_) {
    h5_->set_attr("catmerge_version", std::string(CATMERGE_VERSION));
    h5_->set_attr("arch", cfg_.arch);
    h5_->set_attr("method", cfg_.method);
    h5_->set_attr("hyperparameters", hyperparameters_.dump());
    if (used_features)
      h5_->set_attr("features", nlohmann::json{{"exemplars", cfg_.exemplars},
                                               {"model", feature_model_name(cfg_.feature_model)}}
                                    .dump());
    h5_->set_attr("config", cfg_.text);
    h5_->set_attr("config_json", in.base().config_json());
    h5_->set_attr("inputs", inputs.dump());
    h5_->commit();
  }
}

void store_values(TensorGather::Tensor& dest, DType dtype, int64_t first, const float* values, int64_t n,
                  std::vector<unsigned char>& scratch) {
  const size_t esize = dtype_size(dtype);
  scratch.resize(static_cast<size_t>(n) * esize);
  from_f32(dtype, values, scratch.data(), static_cast<size_t>(n));
  dest.store(static_cast<uint64_t>(first) * esize, scratch.data(), scratch.size());
}

}  // namespace cm
