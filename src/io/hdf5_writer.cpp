#include "io/hdf5_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/error.hpp"
#include "io/temp_files.hpp"

namespace cm {

namespace {

// The string attribute that marks a uint16 dataset as bfloat16 bits. Fixed length, so that any reader
// gets it without variable-length string handling.
void mark_bfloat16(hid_t dataset, const std::string& where) {
  static const char kValue[] = "bfloat16";
  const h5::Id type = h5::check(H5Tcopy(H5T_C_S1), where, "cannot create a string type");
  h5::check(H5Tset_size(type.get(), sizeof kValue), where, "cannot create a string type");
  h5::check(H5Tset_strpad(type.get(), H5T_STR_NULLTERM), where, "cannot create a string type");
  const h5::Id space = h5::check(H5Screate(H5S_SCALAR), where, "cannot create a dataspace");
  const h5::Id attr = h5::check(H5Acreate2(dataset, "dtype", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), where,
                                "cannot create attribute 'dtype'");
  h5::check(H5Awrite(attr.get(), type.get(), kValue), where, "cannot write attribute 'dtype'");
}

}  // namespace

Hdf5Writer::Hdf5Writer(std::string final_path)
    : final_path_(std::move(final_path)), temp_path_(final_path_ + ".tmp-" + std::to_string(getpid())) {
  h5::silence_errors();
  const std::string what = "cannot create " + temp_path_;
  const h5::Id fcpl = h5::check(H5Pcreate(H5P_FILE_CREATE), final_path_, what);
  // Creation order lets readers list the tensors in the order they were written; no timestamps keeps
  // the bytes identical from run to run.
  h5::check(H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), final_path_, what);
  h5::check(H5Pset_obj_track_times(fcpl.get(), false), final_path_, what);
  file_ = h5::check(H5Fcreate(temp_path_.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT), final_path_, what);
  register_temp_file(temp_path_);
  try {
    root_ = h5::check(H5Gopen2(file_.get(), "/", H5P_DEFAULT), final_path_, what);
    raw_ = ::open(temp_path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (raw_ < 0) fail(final_path_, "cannot open " + temp_path_ + " for writing: " + strerror(errno));
  } catch (const Error&) {
    // The destructor does not run for a throwing constructor, so the temp file is removed here.
    if (raw_ >= 0) ::close(raw_);
    file_.close();
    std::remove(temp_path_.c_str());
    unregister_temp_file(temp_path_);
    throw;
  }
}

Hdf5Writer::~Hdf5Writer() {
  if (committed_) return;
  ::close(raw_);
  root_.close();
  file_.close();
  std::remove(temp_path_.c_str());
  unregister_temp_file(temp_path_);
}

void Hdf5Writer::declare_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape) {
  CM_ASSERT(!committed_);
  h5::silence_errors();
  if (name.empty() || name == "." || name.find('/') != std::string::npos)
    fail(final_path_, "tensor name '" + name + "' cannot be an HDF5 dataset name (empty, '.' or contains '/')");
  if (declared_.count(name)) fail(final_path_, "tensor '" + name + "' written twice");
  const std::string what = "cannot write tensor '" + name + "'";

  size_t n = 1;
  std::vector<hsize_t> dims;
  for (int64_t d : shape) {
    CM_ASSERT(d >= 0);
    dims.push_back(static_cast<hsize_t>(d));
    n *= static_cast<size_t>(d);
  }
  const h5::Id space = h5::check(
      shape.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
      final_path_, what);
  const h5::Id dcpl = h5::check(H5Pcreate(H5P_DATASET_CREATE), final_path_, what);
  h5::check(H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS), final_path_, what);
  h5::check(H5Pset_obj_track_times(dcpl.get(), false), final_path_, what);
  h5::check(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY), final_path_, what);
  // Every element is written later, so filling first would only write the data twice.
  h5::check(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), final_path_, what);

  const h5::Id half = dtype == DType::F16 ? h5::make_half_type() : h5::Id();
  const hid_t type = dtype == DType::F32 ? H5T_IEEE_F32LE : dtype == DType::F16 ? half.get() : H5T_STD_U16LE;
  const h5::Id dataset =
      h5::check(H5Dcreate2(root_.get(), name.c_str(), type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                final_path_, what);
  if (dtype == DType::BF16) mark_bfloat16(dataset.get(), final_path_ + ":/" + name);
  const haddr_t offset = n > 0 ? H5Dget_offset(dataset.get()) : 0;
  if (n > 0 && offset == HADDR_UNDEF) fail(final_path_, what + ": no space was allocated");
  declared_[name] = Declared{dtype, n, static_cast<uint64_t>(offset)};
}

void Hdf5Writer::write_tensor(const std::string& name, const float* data) {
  const auto it = declared_.find(name);
  CM_ASSERT(it != declared_.end());
  if (it->second.dtype == DType::F32) return write_stored(name, data);
  std::vector<uint16_t> narrow(it->second.elements);
  from_f32(it->second.dtype, data, narrow.data(), narrow.size());
  write_stored(name, narrow.data());
}

void Hdf5Writer::write_stored(const std::string& name, const void* bytes) {
  const auto it = declared_.find(name);
  CM_ASSERT(it != declared_.end());
  write_stored_bytes(name, 0, bytes, it->second.elements * dtype_size(it->second.dtype));
}

void Hdf5Writer::write_stored_bytes(const std::string& name, uint64_t offset, const void* bytes, size_t n) {
  CM_ASSERT(!committed_ && raw_ >= 0);
  const auto it = declared_.find(name);
  CM_ASSERT(it != declared_.end() && offset + n <= it->second.elements * dtype_size(it->second.dtype));
  const char* p = static_cast<const char*>(bytes);
  for (size_t done = 0; done < n;) {
    const ssize_t w = ::pwrite(raw_, p + done, n - done, static_cast<off_t>(it->second.file_offset + offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail(final_path_, "cannot write tensor '" + name + "' to " + temp_path_ + ": " + strerror(w < 0 ? errno : EIO));
    done += static_cast<size_t>(w);
  }
}

void Hdf5Writer::write_tensor(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                              const float* data) {
  declare_tensor(name, dtype, shape);
  write_tensor(name, data);
}

void Hdf5Writer::write_attr(const std::string& key, hid_t file_type, hid_t mem_type, const void* value) {
  CM_ASSERT(!committed_);
  h5::silence_errors();
  const std::string what = "cannot write attribute '" + key + "'";
  const htri_t exists = H5Aexists(root_.get(), key.c_str());
  h5::check(static_cast<herr_t>(exists), final_path_, what);
  if (exists > 0) fail(final_path_, "attribute '" + key + "' written twice");
  const h5::Id space = h5::check(H5Screate(H5S_SCALAR), final_path_, what);
  const h5::Id attr = h5::check(H5Acreate2(root_.get(), key.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                                final_path_, what);
  h5::check(H5Awrite(attr.get(), mem_type, value), final_path_, what);
}

void Hdf5Writer::set_attr(const std::string& key, const std::string& value) {
  // Variable-length UTF-8 strings are not limited by the 64 KiB object-header message size.
  const h5::Id type = h5::check(H5Tcopy(H5T_C_S1), final_path_, "cannot create a string type");
  h5::check(H5Tset_size(type.get(), H5T_VARIABLE), final_path_, "cannot create a string type");
  h5::check(H5Tset_cset(type.get(), H5T_CSET_UTF8), final_path_, "cannot create a string type");
  const char* text = value.c_str();
  write_attr(key, type.get(), type.get(), &text);
}

void Hdf5Writer::set_attr(const std::string& key, double value) {
  write_attr(key, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

void Hdf5Writer::set_attr(const std::string& key, int64_t value) {
  write_attr(key, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

void Hdf5Writer::commit() {
  CM_ASSERT(!committed_);
  h5::silence_errors();
  root_.close();
  if (::close(raw_) != 0) fail(final_path_, "cannot write " + temp_path_ + ": " + strerror(errno));
  raw_ = -1;
  h5::check(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), final_path_, "cannot flush " + temp_path_);
  h5::check(file_.close(), final_path_, "cannot close " + temp_path_);
  if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0)
    fail(final_path_, "cannot rename " + temp_path_ + " to it: " + strerror(errno));
  unregister_temp_file(temp_path_);
  committed_ = true;
}

}  // namespace cm
