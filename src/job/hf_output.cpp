#include "job/hf_output.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "common/error.hpp"
#include "io/hf_directory.hpp"
#include "io/safetensors.hpp"
#include "io/temp_files.hpp"

namespace cm {

namespace {

namespace fs = std::filesystem;

// Elements per piece when the base's tensors are copied: a few MB of memory whatever their size.
constexpr uint64_t kCopyElements = uint64_t{1} << 22;

StoredTensor stored_tensor(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape) {
  uint64_t elements = 1;
  for (int64_t d : shape) elements *= static_cast<uint64_t>(d);
  return {name, dtype, shape, elements * safetensors_element_size(dtype)};
}

// The float dtype that stores most of the output's elements: what config.json's torch_dtype says.
DType main_dtype(const OutputTensors& t) {
  std::map<DType, uint64_t> elements;
  for (const StoredTensor& s : t.stored)
    if (const auto d = parse_dtype(s.dtype)) elements[*d] += s.bytes / dtype_size(*d);
  DType best = DType::F32;
  uint64_t most = 0;
  for (const auto& [d, n] : elements)
    if (n > most) best = d, most = n;
  return best;
}

}  // namespace

std::map<std::string, std::string> output_metadata(const std::string& version, const std::string& arch,
                                                   const std::string& method, const std::string& hyperparameters) {
  return {{"format", "pt"},
          {"catmerge_version", version},
          {"arch", arch},
          {"method", method},
          {"hyperparameters", hyperparameters}};
}

OutputTensors output_tensors(const std::vector<TensorInfo>& merged, const std::vector<int>& merged_part,
                             const Checkpoint* base, std::optional<DType> dtype) {
  CM_ASSERT(merged.size() == merged_part.size());
  OutputTensors out;
  std::set<std::string> names;
  for (size_t i = 0; i < merged.size(); ++i) {
    out.stored.push_back(stored_tensor(merged[i].name, dtype_name(merged[i].dtype), merged[i].shape));
    out.part.push_back(merged_part[i]);
    names.insert(merged[i].name);
  }
  out.merged = out.stored.size();
  if (!base) return out;
  for (const TensorInfo& t : base->tensors()) {
    if (names.count(t.name)) continue;
    out.stored.push_back(stored_tensor(t.name, dtype_name(dtype.value_or(t.dtype)), t.shape));
    out.part.push_back(0);
  }
  for (const OtherTensorInfo& t : base->other_tensors()) {
    if (names.count(t.name)) continue;
    out.stored.push_back(stored_tensor(t.name, t.dtype, t.shape));
    out.part.push_back(0);
  }
  return out;
}

BaseFiles base_files(const std::string& base_path, const Checkpoint* base, const std::string& fallback_config) {
  BaseFiles f;
  std::error_code ec;
  if (!base_path.empty() && fs::is_directory(base_path, ec)) f.dir = base_path;
  f.config_text = base ? base->config_json() : fallback_config;
  f.config_source = base ? base->path() + " (config)" : "the HDF5 attribute config_json";
  return f;
}

HfOutput::HfOutput(const std::string& final_dir, OutputTensors tensors, uint64_t shard_size,
                   std::map<std::string, std::string> metadata, Communicator& comm)
    : final_dir_(final_dir), tensors_(std::move(tensors)), metadata_(std::move(metadata)), comm_(comm) {
  // Rank 0 names the directory after its process id; the sum hands the name to every rank, after it exists.
  // Rank 0 registers it for the signal handler before creating it: a SIGTERM while the sum waits for a rank
  // that was killed must find it.
  uint64_t id = 0;
  if (comm.rank() == 0) {
    check_hf_output_path(final_dir);
    id = static_cast<uint64_t>(getpid());
    const std::string temp = hf_temp_dir(final_dir, id);
    register_temp_dir(temp);
    std::error_code ec;
    if (const fs::path folder = fs::path(temp).parent_path(); !folder.empty()) fs::create_directories(folder, ec);
    remove_directory(temp);  // a stale one of an earlier process with this id
    if (!fs::create_directory(temp, ec)) {
      unregister_temp_dir(temp);
      fail(final_dir, "cannot create " + temp + ": " + ec.message());
    }
  }
  comm.sum(&id, 1);
  temp_dir_ = hf_temp_dir(final_dir, id);
  if (comm.rank() != 0) register_temp_dir(temp_dir_);
  layout_ = plan_shards(tensors_.stored, tensors_.part, comm.size(), shard_size);
  try {
    writer_ = std::make_unique<SafetensorsWriter>(temp_dir_, layout_, comm.rank(), tensors_.stored, metadata_);
  } catch (const Error&) {
    remove_directory(temp_dir_);
    unregister_temp_dir(temp_dir_);
    throw;
  }
}

HfOutput::~HfOutput() {
  if (committed_) return;
  writer_.reset();
  remove_directory(temp_dir_);
  unregister_temp_dir(temp_dir_);
}

void HfOutput::copy_tensors(const Checkpoint& from, size_t first, size_t end) {
  std::vector<float> values;
  std::vector<unsigned char> stored;
  for (size_t i = first; i < end; ++i) {
    const StoredTensor& t = tensors_.stored[i];
    if (tensors_.part[i] != comm_.rank()) continue;
    const TensorInfo* info = from.find(t.name);
    const auto dtype = parse_dtype(t.dtype);
    const uint64_t esize = safetensors_element_size(t.dtype);
    const uint64_t elements = t.bytes / esize;
    // Whole rows of the leading dimension at a time (what an HDF5 checkpoint reads), a few MB each.
    const uint64_t row = t.shape.empty() || t.shape[0] == 0 ? 1 : std::max<uint64_t>(elements / t.shape[0], 1);
    const uint64_t step = std::max<uint64_t>(kCopyElements / row, 1) * row;
    for (uint64_t at = 0; at < elements; at += step) {
      const uint64_t n = std::min(step, elements - at);
      stored.resize(static_cast<size_t>(n * esize));
      if (dtype && info) {
        values.resize(static_cast<size_t>(n));
        from.read_into(t.name, static_cast<int64_t>(at), static_cast<int64_t>(n), values.data());
        from_f32(*dtype, values.data(), stored.data(), static_cast<size_t>(n));
      } else {
        from.read_stored(t.name, at * esize, n * esize, stored.data());
      }
      writer_->write_stored_bytes(t.name, at * esize, stored.data(), stored.size());
    }
  }
}

void HfOutput::commit(const BaseFiles& base, const std::map<std::string, std::string>& index_metadata) {
  writer_->close();
  comm_.barrier();
  if (comm_.rank() == 0) {
    std::map<std::string, std::string> meta = metadata_;
    meta.insert(index_metadata.begin(), index_metadata.end());
    write_hf_index(layout_, tensors_.stored, meta, temp_dir_);
    if (!base.dir.empty()) copy_base_files(base.dir, temp_dir_);
    if (!base.config_text.empty()) write_hf_config(base.config_text, main_dtype(tensors_), base.config_source, temp_dir_);
    commit_hf_directory(temp_dir_, final_dir_);
  }
  unregister_temp_dir(temp_dir_);
  committed_ = true;
  comm_.barrier();
}

}  // namespace cm
