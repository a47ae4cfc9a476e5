#pragma once
// Read-only access to a model checkpoint, whatever its container:
//   - a HuggingFace directory: config.json + model.safetensors, or shards listed in model.safetensors.index.json
//   - a single .safetensors file
//   - an HDF5 file written by catmerge (datasets at the root, see README.md "Output format")
//   - for an expert, also a PEFT LoRA adapter directory, read as the full model it makes from the base
//     (io/peft_adapter.hpp)
// Tensors are read one at a time, converted to float32; nothing is read before it is asked for.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/dtype.hpp"

namespace cm {

class SafetensorsFile;  // io/safetensors.hpp

class Checkpoint {
 public:
  virtual ~Checkpoint() = default;

  // The path the user gave.
  virtual const std::string& path() const = 0;

  // Every tensor, in the order of the container (file order; shards in index order).
  virtual const std::vector<TensorInfo>& tensors() const = 0;

  // nullptr when absent.
  virtual const TensorInfo* find(const std::string& name) const = 0;

  // Elements [first, first + count) of the tensor, flattened row-major, converted to float32 into out.
  // Throws cm::Error naming the file that holds it and the tensor when it is absent or unreadable. Any
  // thread may call it for safetensors files (each call maps the bytes it needs).
  virtual void read_into(const std::string& name, int64_t first, int64_t count, float* out) const = 0;
  // The whole tensor.
  std::vector<float> read(const std::string& name) const;
  // Every tensor catmerge does not read as float, in container order; only safetensors files hold them.
  virtual const std::vector<OtherTensorInfo>& other_tensors() const;
  // Bytes [offset, offset + n) of one of those as the file stores them.
  virtual void read_stored(const std::string& name, uint64_t offset, uint64_t n, void* out) const;
  // Hints: the tensor's bytes are needed soon; they are no longer needed in this process's memory.
  virtual void will_need(const std::string&) const {}
  virtual void release(const std::string&) const {}
  // The safetensors files of the checkpoint, whose content-hash leaves are computed as they are read.
  virtual std::vector<const SafetensorsFile*> shards() const { return {}; }

  // The file that holds `name` (for error messages and accounting).
  virtual std::string file_of(const std::string& name) const = 0;

  // Every file the checkpoint consists of (config, index, shards), for sizes and hashes.
  virtual std::vector<std::string> files() const = 0;

  // Text of the HuggingFace config.json (or open_clip_config.json) beside the weights; empty if none.
  virtual const std::string& config_json() const = 0;

  // What the writer recorded of how the weights were made: a safetensors file's __metadata__ (the first shard's),
  // or a catmerge HDF5 file's root attributes catmerge_version, arch, method and hyperparameters.
  virtual std::map<std::string, std::string> metadata() const { return {}; }
};

// Opens any of the containers above but an adapter; throws cm::Error naming the path when it is none of them.
std::unique_ptr<Checkpoint> open_checkpoint(const std::string& path);
// The same, and a PEFT adapter directory as the expert it makes from `base` (a null base: no adapter allowed).
std::unique_ptr<Checkpoint> open_expert_checkpoint(const std::string& path, std::shared_ptr<const Checkpoint> base);

}  // namespace cm
