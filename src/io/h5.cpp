#include "io/h5.hpp"

#include <cstring>

#include "common/dtype.hpp"
#include "common/error.hpp"

namespace cm::h5 {

Id& Id::operator=(Id&& other) noexcept {
  if (this != &other) {
    close();
    id_ = other.release();
  }
  return *this;
}

hid_t Id::release() {
  const hid_t id = id_;
  id_ = H5I_INVALID_HID;
  return id;
}

herr_t Id::close() {
  if (id_ < 0) return 0;
  const hid_t id = release();
  switch (H5Iget_type(id)) {
    case H5I_FILE: return H5Fclose(id);
    case H5I_GROUP: return H5Gclose(id);
    case H5I_DATASET: return H5Dclose(id);
    case H5I_ATTR: return H5Aclose(id);
    case H5I_DATASPACE: return H5Sclose(id);
    case H5I_DATATYPE: return H5Tclose(id);
    case H5I_GENPROP_LST: return H5Pclose(id);
    default: return H5Idec_ref(id);
  }
}

void silence_errors() {
  // With a thread-safe HDF5 the error stack, and so this setting, belongs to the calling thread.
  thread_local bool silenced = false;
  if (!silenced) H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  silenced = true;
}

namespace {

herr_t keep_innermost(unsigned n, const H5E_error2_t* err, void* data) {
  if (n == 0 && err->desc) *static_cast<std::string*>(data) = err->desc;
  return 0;
}

// The most specific message on HDF5's error stack, which usually says what actually went wrong.
std::string innermost_error() {
  std::string desc;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, &desc);
  H5Eclear2(H5E_DEFAULT);
  for (char& c : desc)
    if (c == '\n' || c == '\r') c = ' ';
  return desc.empty() ? "" : " (" + desc + ")";
}

}  // namespace

Id check(hid_t id, const std::string& where, const std::string& what) {
  if (id < 0) fail(where, what + innermost_error());
  return Id(id);
}

void check(herr_t status, const std::string& where, const std::string& what) {
  if (status < 0) fail(where, what + innermost_error());
}

Id make_half_type() {
  Id t(H5Tcopy(H5T_IEEE_F32LE));
  const bool ok = t.get() >= 0 && H5Tset_fields(t.get(), 15, 10, 5, 0, 10) >= 0 && H5Tset_size(t.get(), 2) >= 0 &&
                  H5Tset_ebias(t.get(), 15) >= 0 && H5Tset_precision(t.get(), 16) >= 0;
  if (!ok) fail("HDF5", "cannot build the IEEE half datatype" + innermost_error());
  return t;
}

Storage storage_of(hid_t dataset, const std::string& where) {
  const Id type = check(H5Dget_type(dataset), where, "cannot read the datatype");
  const size_t size = H5Tget_size(type.get());
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls == H5T_INTEGER) {
    const bool u16 = size == 2 && H5Tget_sign(type.get()) == H5T_SGN_NONE;
    return u16 && string_attr(dataset, "dtype", where) == "bfloat16" ? Storage::BF16 : Storage::Other;
  }
  if (cls != H5T_FLOAT || H5Tget_offset(type.get()) != 0 || H5Tget_precision(type.get()) != 8 * size)
    return Storage::Other;
  size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
  check(H5Tget_fields(type.get(), &spos, &epos, &esize, &mpos, &msize), where, "cannot read the float layout");
  const size_t ebias = H5Tget_ebias(type.get());
  // IEEE binary32/64/16 are told apart by their full layout, not just their size.
  const auto ieee = [&](size_t bytes, size_t exp_bits, size_t mant_bits) {
    return size == bytes && spos == 8 * bytes - 1 && epos == mant_bits && esize == exp_bits && mpos == 0 &&
           msize == mant_bits && ebias == (size_t{1} << (exp_bits - 1)) - 1;
  };
  if (ieee(4, 8, 23)) return Storage::F32;
  if (ieee(8, 11, 52)) return Storage::F64;
  if (ieee(2, 5, 10)) return Storage::F16;
  return Storage::Other;
}

std::vector<int64_t> shape_of(hid_t dataset, const std::string& where) {
  const Id space = check(H5Dget_space(dataset), where, "cannot read the dataspace");
  if (H5Sget_simple_extent_type(space.get()) == H5S_NULL) fail(where, "dataset has a null dataspace");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) fail(where, "cannot read the dataspace rank");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  check(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), where, "cannot read the dataspace");
  return std::vector<int64_t>(dims.begin(), dims.end());
}

void read_f32(hid_t dataset, Storage kind, hid_t file_space, size_t n, float* out, const std::string& where) {
  if (n == 0) return;  // HDF5 1.10 refuses a null buffer even for an empty selection
  Id mem_space;
  if (file_space != H5S_ALL) {
    const hsize_t count = n;
    mem_space = check(H5Screate_simple(1, &count, nullptr), where, "cannot create a dataspace");
  }
  const hid_t mem = file_space == H5S_ALL ? H5S_ALL : mem_space.get();
  const std::string what = "cannot read the data";
  switch (kind) {
    case Storage::F32:
      check(H5Dread(dataset, H5T_NATIVE_FLOAT, mem, file_space, H5P_DEFAULT, out), where, what);
      return;
    case Storage::F64: {
      // Converted here rather than by HDF5, so out-of-range values become +-inf as a C++ cast makes them.
      std::vector<double> wide(n);
      check(H5Dread(dataset, H5T_NATIVE_DOUBLE, mem, file_space, H5P_DEFAULT, wide.data()), where, what);
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(wide[i]);
      return;
    }
    case Storage::F16:
    case Storage::BF16: {
      std::vector<uint16_t> bits(n);
      const Id half = kind == Storage::F16 ? make_half_type() : Id();
      const hid_t mem_type = kind == Storage::F16 ? half.get() : H5T_NATIVE_UINT16;
      check(H5Dread(dataset, mem_type, mem, file_space, H5P_DEFAULT, bits.data()), where, what);
      to_f32(kind == Storage::F16 ? DType::F16 : DType::BF16, bits.data(), out, n);
      return;
    }
    case Storage::Other: break;
  }
  fail(where, "dataset is not float32, float64, float16 or bfloat16");
}

std::optional<std::string> string_attr(hid_t obj, const char* name, const std::string& where) {
  const htri_t exists = H5Aexists(obj, name);
  check(static_cast<herr_t>(exists), where, std::string("cannot look up attribute '") + name + "'");
  if (exists == 0) return std::nullopt;
  const std::string what = std::string("cannot read attribute '") + name + "'";
  const Id attr = check(H5Aopen(obj, name, H5P_DEFAULT), where, what);
  const Id type = check(H5Aget_type(attr.get()), where, what);
  const Id space = check(H5Aget_space(attr.get()), where, what);
  if (H5Tget_class(type.get()) != H5T_STRING || H5Sget_simple_extent_npoints(space.get()) != 1) return std::nullopt;
  if (H5Tis_variable_str(type.get()) > 0) {
    const Id mem = check(H5Tcopy(H5T_C_S1), where, what);
    check(H5Tset_size(mem.get(), H5T_VARIABLE), where, what);
    check(H5Tset_cset(mem.get(), H5Tget_cset(type.get())), where, what);
    char* text = nullptr;
    check(H5Aread(attr.get(), mem.get(), &text), where, what);
    const std::string value = text ? text : "";
    H5free_memory(text);
    return value;
  }
  const size_t size = H5Tget_size(type.get());
  std::vector<char> buf(size + 1, '\0');
  check(H5Aread(attr.get(), type.get(), buf.data()), where, what);
  std::string value(buf.data(), strnlen(buf.data(), size));
  if (H5Tget_strpad(type.get()) == H5T_STR_SPACEPAD) value.erase(value.find_last_not_of(' ') + 1);
  return value;
}

}  // namespace cm::h5
