#pragma once
// Writes a sharded safetensors checkpoint (HuggingFace's layout, README "Output format"). The layout comes
// first, from names, dtypes and shapes alone: which tensors each shard holds, its header and every tensor's
// place in it. So each writer knows where every byte goes before a value exists, and the tensors of one
// part (a rank's share of the plan) go straight into that part's own shard files, in any order, in pieces.
//
// The format: an 8-byte little-endian header length N, N bytes of JSON header ("__metadata__" first, then
// each tensor's dtype, shape and data_offsets in data order), then the data, tensors end to end with no gaps.
// N is padded with spaces to a multiple of 8 and tensors are ordered by falling element size, so that every
// tensor starts at a multiple of its element size in the file.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/tensor_sink.hpp"

namespace cm {

struct StoredTensor {
  std::string name;
  std::string dtype;  // safetensors spelling: "F32", "BF16", "I64", ...
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
};

struct ShardLayout {
  struct Shard {
    int part = 0;
    std::string file;             // "model-00001-of-00003.safetensors"
    std::vector<size_t> tensors;  // into the layout's tensor list, in data order
    std::vector<uint64_t> begin;  // each one's data offset, from the end of the header
    uint64_t bytes = 0;           // of tensor data
  };
  std::vector<Shard> shards;
  uint64_t total_bytes = 0;  // every shard's tensor data (the index's total_size)
};

// Shards of at most `shard_size` bytes of tensor data each (a larger tensor alone): the tensors of part 0 in
// list order, then those of part 1, and so on, so no shard mixes parts. Numbered 1..N across all parts.
ShardLayout plan_shards(const std::vector<StoredTensor>& tensors, const std::vector<int>& part_of, int parts,
                        uint64_t shard_size);

// The bytes before a shard's data: length, JSON header, padding. Metadata values are text, as the format has them.
std::string safetensors_header(const ShardLayout::Shard& shard, const std::vector<StoredTensor>& tensors,
                               const std::map<std::string, std::string>& metadata);

// The shards of one part, created in `dir` with their headers written and their data to come.
class SafetensorsWriter final : public TensorSink {
 public:
  SafetensorsWriter(const std::string& dir, const ShardLayout& layout, int part,
                    const std::vector<StoredTensor>& tensors, const std::map<std::string, std::string>& metadata);
  // Without close(): closes and removes this part's files.
  ~SafetensorsWriter() override;
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // Tensors of this part only. Any thread, any order.
  void write_stored_bytes(const std::string& name, uint64_t offset, const void* bytes, size_t n) override;
  void write_stored(const std::string& name, const void* bytes) override;

  // Closes every file: a failed write-back (disk full) is a cm::Error naming the file.
  void close();

 private:
  struct File {
    std::string path;
    int fd = -1;
  };
  struct Place {
    size_t file = 0;
    uint64_t at = 0;  // file offset of the tensor's first byte
    uint64_t bytes = 0;
  };
  std::vector<File> files_;
  std::map<std::string, Place> places_;
};

}  // namespace cm
