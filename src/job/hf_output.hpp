#pragma once
// A job's safetensors output (README "Output format"), written by every rank at once, with no gather: each
// rank writes the shards of its own part of the plan straight into a temporary directory beside the final
// name; rank 0 also copies the base's tensors that the merge does not cover (a CLIPModel's text tower,
// integer buffers), so the directory loads with no missing keys. When every rank has closed its shards, rank 0
// writes the index, config.json and the base's other files, and renames the directory. On any failure (an
// exception, or SIGTERM through io/temp_files) the temporary directory is removed on every rank.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "comm/communicator.hpp"
#include "io/checkpoint.hpp"
#include "io/safetensors_writer.hpp"

namespace cm {

// What a shard's and the index's metadata record: the format ("pt") and catmerge's version, architecture,
// method and hyperparameters (a JSON object's text).
std::map<std::string, std::string> output_metadata(const std::string& version, const std::string& arch,
                                                   const std::string& method, const std::string& hyperparameters);

// Every tensor of an output and the rank that writes it: first `merged` (tensors the job computes, each with its
// writer), then every other tensor of `base`, written by rank 0: float ones stored as `dtype` (none: as the base
// stores them), the rest as the base stores them.
struct OutputTensors {
  std::vector<StoredTensor> stored;
  std::vector<int> part;    // the writing rank of each
  size_t merged = 0;        // stored[0, merged): computed by the job; the rest copied from the base
};
OutputTensors output_tensors(const std::vector<TensorInfo>& merged, const std::vector<int>& merged_part,
                             const Checkpoint* base, std::optional<DType> dtype);

// The base's files that go beside the shards: its directory's other files, and its configuration.
struct BaseFiles {
  std::string dir;          // "" when the base is not a directory: nothing is copied
  std::string config_text;  // "" when there is none
  std::string config_source;
};
BaseFiles base_files(const std::string& base_path, const Checkpoint* base, const std::string& fallback_config);

class HfOutput {
 public:
  // Collective: rank 0 checks the final path and creates the temporary directory, and every rank creates its
  // shards in it (headers written).
  HfOutput(const std::string& final_dir, OutputTensors tensors, uint64_t shard_size,
           std::map<std::string, std::string> metadata, Communicator& comm);
  // Uncommitted: removes the temporary directory (every rank that gets here; rank 0's copy covers a rank
  // killed outright).
  ~HfOutput();
  HfOutput(const HfOutput&) = delete;
  HfOutput& operator=(const HfOutput&) = delete;

  // Where this rank writes its merged tensors' stored bytes.
  TensorSink& sink() { return *writer_; }
  const OutputTensors& tensors() const { return tensors_; }

  // Copies this rank's tensors among stored[first, end) from `from`, as they are stored there or converted to
  // their output dtype: the base's other tensors of a run (first = merged), or everything an export writes.
  void copy_tensors(const Checkpoint& from, size_t first, size_t end);

  // Collective: every rank closes its shards; then rank 0 writes the index (its metadata: the shards' and
  // `index_metadata`) and config, copies the base's other files, and renames the directory to the final name.
  // No rank returns before that is done.
  void commit(const BaseFiles& base, const std::map<std::string, std::string>& index_metadata);

  const std::string& temp_dir() const { return temp_dir_; }

 private:
  std::string final_dir_, temp_dir_;
  OutputTensors tensors_;
  ShardLayout layout_;
  std::map<std::string, std::string> metadata_;
  Communicator& comm_;
  std::unique_ptr<SafetensorsWriter> writer_;
  bool committed_ = false;
};

}  // namespace cm
