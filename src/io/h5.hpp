#pragma once
// Thin RAII and error helpers over the HDF5 C API, shared by the HDF5 checkpoint reader, the writer
// and the exemplar reader. Every failure becomes a one-line cm::Error naming the file.
#include <hdf5.h>

#include <optional>
#include <string>
#include <vector>

namespace cm::h5 {

// Owns one HDF5 identifier (file, group, dataset, attribute, dataspace, datatype or property list).
class Id {
 public:
  Id() = default;
  explicit Id(hid_t id) : id_(id) {}
  Id(Id&& other) noexcept : id_(other.release()) {}
  Id& operator=(Id&& other) noexcept;
  ~Id() { close(); }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;

  hid_t get() const { return id_; }
  hid_t release();
  // Closes now; a failure is reported (for files, whose close flushes) rather than ignored.
  herr_t close();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// Stops HDF5 printing its error stack to stderr (a per-thread setting); call before any HDF5 work.
void silence_errors();

// `id` if valid, else cm::Error "<where>: <what> (<HDF5's innermost message>)".
Id check(hid_t id, const std::string& where, const std::string& what);
void check(herr_t status, const std::string& where, const std::string& what);

// IEEE binary16, little-endian: HDF5 1.10 has no predefined half type.
Id make_half_type();

// How a dataset stores its numbers, as far as catmerge cares.
enum class Storage { F32, F64, F16, BF16, Other };
Storage storage_of(hid_t dataset, const std::string& where);  // BF16: uint16 with the string attribute dtype="bfloat16"

// Shape of a dataset's dataspace ([] for a scalar).
std::vector<int64_t> shape_of(hid_t dataset, const std::string& where);

// Reads the selection `file_space` (H5S_ALL: everything) of a dataset with storage `kind`
// (anything but Other) as `n` float32 values.
void read_f32(hid_t dataset, Storage kind, hid_t file_space, size_t n, float* out, const std::string& where);

// A string attribute (fixed or variable length) of `obj`; nullopt when absent or not a string.
std::optional<std::string> string_attr(hid_t obj, const char* name, const std::string& where);

}  // namespace cm::h5
