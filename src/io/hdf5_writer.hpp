#pragma once
// Writes catmerge's output HDF5 file: one contiguous dataset per tensor at the root group, plus root
// attributes. Everything goes to "<final>.tmp-<pid>" in the same folder, renamed to the final name only by
// commit(), so a failed run never leaves a file that looks complete. Output is byte-identical run to run
// (no chunking, no compression, no object timestamps).
#include <cstdint>
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "io/h5.hpp"

namespace cm {

class Hdf5Writer {
 public:
  explicit Hdf5Writer(std::string final_path);
  // Without commit(): closes and removes the temporary file.
  ~Hdf5Writer();
  Hdf5Writer(const Hdf5Writer&) = delete;
  Hdf5Writer& operator=(const Hdf5Writer&) = delete;

  // Stores `data` (float32, row-major) as `dtype`: F32 -> IEEE f32 LE, F16 -> IEEE f16 LE,
  // BF16 -> uint16 LE with the string attribute dtype="bfloat16". `name` may not contain '/'.
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

  std::string final_path_, temp_path_;
  h5::Id file_, root_;
  bool committed_ = false;
};

}  // namespace cm
