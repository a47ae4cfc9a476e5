#pragma once
// Writes catmerge's output HDF5 file: one contiguous dataset per tensor at the root group, plus root
// attributes. Everything goes to "<final>.tmp-<pid>" in the same folder, renamed to the final name only by
// commit(), so a failed run never leaves a file that looks complete. Output is byte-identical run to run
// (no chunking, no compression, no object timestamps). A dataset's space is allocated when it is declared,
// so its values are written straight to their place in the file (pwrite), by any thread, in any order and in
// pieces, without going through the HDF5 library, which keeps only the metadata.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "io/h5.hpp"
#include "io/tensor_sink.hpp"

namespace cm {

class Hdf5Writer final : public TensorSink {
 public:
  explicit Hdf5Writer(std::string final_path);
  // Without commit(): closes and removes the temporary file.
  ~Hdf5Writer() override;
  Hdf5Writer(const Hdf5Writer&) = delete;
  Hdf5Writer& operator=(const Hdf5Writer&) = delete;

  // Creates the dataset of a tensor stored as `dtype`: F32 -> IEEE f32 LE, F16 -> IEEE f16 LE,
  // BF16 -> uint16 LE with the string attribute dtype="bfloat16". `name` may not contain '/'. Space is
  // allocated now, so the file's bytes depend on the order of declarations, not of writes: a distributed
  // run declares every tensor in model order, then writes them as they arrive.
  void declare_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape);
  // Writes a declared tensor's values (float32, row-major, converted to its dtype).
  void write_tensor(const std::string& name, const float* data);
  // Writes a declared tensor's values already stored as its dtype (dtype_size bytes each, little-endian).
  void write_stored(const std::string& name, const void* bytes) override;
  // Bytes [offset, offset + n) of that stored form. Any thread, any order; each byte once.
  void write_stored_bytes(const std::string& name, uint64_t offset, const void* bytes, size_t n) override;
  // Both at once.
  void write_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape, const float* data);

  // Root attributes; strings are variable-length UTF-8 (h5py reads them as str).
  void set_attr(const std::string& key, const std::string& value);
  void set_attr(const std::string& key, double value);
  void set_attr(const std::string& key, int64_t value);

  // Flushes, closes and renames the temporary file to the final name.
  void commit();

  const std::string& final_path() const { return final_path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  void write_attr(const std::string& key, hid_t file_type, hid_t mem_type, const void* value);

  struct Declared {
    DType dtype;
    size_t elements;
    uint64_t file_offset;  // of the dataset's first value
  };
  std::string final_path_, temp_path_;
  h5::Id file_, root_;
  int raw_ = -1;  // the temporary file, opened for the values' writes
  std::map<std::string, Declared> declared_;
  bool committed_ = false;
};

}  // namespace cm
