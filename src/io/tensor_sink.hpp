#pragma once
// Where a process writes the stored bytes of merged tensors: rank 0's HDF5 file (io/hdf5_writer.hpp) or one
// rank's safetensors shards (io/safetensors_writer.hpp). Both place every byte at its final position, so a
// tensor may be written in pieces, by any thread, in any order.
#include <cstddef>
#include <cstdint>
#include <string>

namespace cm {

class TensorSink {
 public:
  virtual ~TensorSink() = default;
  // Bytes [offset, offset + n) of the stored form (output dtype, little-endian) of tensor `name`, declared
  // before. Any thread; disjoint ranges, each byte once.
  virtual void write_stored_bytes(const std::string& name, uint64_t offset, const void* bytes, size_t n) = 0;
  // The whole stored tensor.
  virtual void write_stored(const std::string& name, const void* bytes) = 0;
};

}  // namespace cm
