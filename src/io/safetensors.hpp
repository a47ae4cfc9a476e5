#pragma once
// One .safetensors file, memory-mapped and validated against the format when opened: an 8-byte
// little-endian header length N, N bytes of JSON header, then the tensor data, every byte of which
// belongs to exactly one tensor. Tensor data is only touched when a tensor is read.
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/dtype.hpp"
#include "io/content_hash.hpp"
#include "io/mapped_file.hpp"

namespace cm {

// Bytes per element of a safetensors dtype ("F32", "I64", "BOOL", ...); 0 for a name the format does not define.
uint64_t safetensors_element_size(const std::string& dtype);

class SafetensorsFile {
 public:
  // Maps and validates `path`; every violation is a cm::Error naming the file (and the tensor).
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }

  // F32, F16 and BF16 tensors, in the order of their data in the file.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  // Every other tensor, in data order.
  const std::vector<OtherTensorInfo>& other_tensors() const { return others_; }
  // The optional "__metadata__" map.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // nullptr when `name` is absent or not a float tensor.
  const TensorInfo* find(const std::string& name) const;
  // True when the header lists `name`, whatever its dtype.
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }

  // The tensor converted to float32; cm::Error if absent or not F32/F16/BF16.
  std::vector<float> read(const std::string& name) const;
  // Elements [first, first + count) of the flattened tensor into out, float32. The file's content-hash leaves
  // that end inside the bytes read are computed on the way (digests()). Any thread may call it.
  void read_into(const std::string& name, int64_t first, int64_t count, float* out) const;
  // Bytes [offset, offset + n) of any tensor (float or not) as stored, hashing the leaves they complete.
  void read_stored(const std::string& name, uint64_t offset, uint64_t n, void* out) const;
  // MappedFile's hints for the tensor's bytes, or for any bytes of the file.
  void will_need(const std::string& name) const;
  void release(const std::string& name) const;
  void release_bytes(uint64_t offset, uint64_t len) const { map_.release(offset, len); }

  // The file's content-hash leaves (io/content_hash.hpp), and what is left to compute them from.
  ChunkDigests& digests() const { return digests_; }
  const unsigned char* bytes() const { return map_.data(); }
  uint64_t size() const { return map_.size(); }
  // The tensor (float or not) whose data holds file byte `offset`; "" in the header.
  const std::string& tensor_at(uint64_t offset) const;

 private:
  struct Entry {
    bool is_float = false;
    size_t index = 0;  // into tensors_ or others_
    uint64_t begin = 0, bytes = 0;
  };
  const Entry& float_entry(const std::string& name) const;  // cm::Error if absent or not a float tensor

  void parse_header(const char* text, size_t size);

  std::string path_;
  MappedFile map_;
  const unsigned char* data_ = nullptr;  // first byte after the header
  std::vector<TensorInfo> tensors_;
  std::vector<OtherTensorInfo> others_;
  std::map<std::string, std::string> metadata_;
  std::unordered_map<std::string, Entry> entries_;
  std::vector<std::pair<uint64_t, std::string>> starts_;  // (file offset of the data, tensor), ascending
  mutable ChunkDigests digests_;
};

}  // namespace cm
