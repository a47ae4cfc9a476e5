#include "io/exemplars.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>

#include "common/dtype.hpp"
#include "common/error.hpp"
#include "io/h5.hpp"

namespace cm {

namespace {

// "a/b", "/a/b" and "a/b/" all name the same object; "" is the root.
std::string trim_slashes(const std::string& path) {
  const size_t first = path.find_first_not_of('/');
  if (first == std::string::npos) return "";
  return path.substr(first, path.find_last_not_of('/') - first + 1);
}

h5::Id open_file(const std::string& file, const std::string& where) {
  h5::silence_errors();
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) fail(where, "no such file");
  return h5::check(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), where, "cannot open as HDF5");
}

// The path of `name` in group g ("" = the root).
std::string member(const std::string& g, const char* name) { return g.empty() ? std::string(name) : g + "/" + name; }

// Fails naming the first missing part of `path` ("a", then "a/b", ...).
void require_path(hid_t file, const std::string& path, const std::string& where) {
  size_t at = 0;
  // H5Lexists must see every parent exist before it is asked about a child.
  while (true) {
    const size_t slash = path.find('/', at);
    const std::string prefix = path.substr(0, slash);
    const htri_t exists = H5Lexists(file, prefix.c_str(), H5P_DEFAULT);
    h5::check(static_cast<herr_t>(exists), where, "cannot look up '" + prefix + "'");
    if (exists <= 0) fail(where, "no '" + prefix + "' in the file");
    if (slash == std::string::npos) break;
    at = slash + 1;
  }
}

// Opens `path` inside `file` as a dataset; the error says which part is missing.
h5::Id open_dataset(hid_t file, const std::string& path, const std::string& where) {
  const std::string what = "'" + path + "'";
  require_path(file, path, where);
  const h5::Id obj = h5::check(H5Oopen(file, path.c_str(), H5P_DEFAULT), where, "cannot open " + what);
  if (H5Iget_type(obj.get()) != H5I_DATASET) fail(where, what + " is not a dataset");
  return h5::check(H5Dopen2(file, path.c_str(), H5P_DEFAULT), where, "cannot open " + what);
}

// Rows [first, first + count) of a dataset: selects them on the first dimension, so a large file is not
// read whole. Fails when the dataset has fewer.
h5::Id select_rows(hid_t dataset, const std::vector<int64_t>& shape, int64_t first, int64_t count, const char* name,
                   const char* what, const std::string& at) {
  if (shape.empty() || shape[0] < first + count)
    fail(at, std::string(name) + " has " + std::to_string(shape.empty() ? 0 : shape[0]) + " " + what + ", " +
                 std::to_string(first + count) + " are needed");
  h5::Id space = h5::check(H5Dget_space(dataset), at, "cannot read the dataspace");
  std::vector<hsize_t> start(shape.size(), 0);
  std::vector<hsize_t> extent(shape.begin(), shape.end());
  start[0] = static_cast<hsize_t>(first);
  extent[0] = static_cast<hsize_t>(count);
  h5::check(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, extent.data(), nullptr), at,
            std::string("cannot select rows of ") + name);
  return space;
}

// pixel_values (float32 or float64, as stored) or images (uint8 x -> x / 127.5 - 1, the zoo's encoding).
void read_images(hid_t f, const std::string& g, bool u8, int64_t first, int64_t count, const std::string& at,
                 Exemplars& x) {
  const char* name = u8 ? "images" : "pixel_values";
  const h5::Id dataset = open_dataset(f, member(g, name), at);
  h5::Storage kind = h5::Storage::F32;
  if (u8) {
    const h5::Id type = h5::check(H5Dget_type(dataset.get()), at, "cannot read the datatype of images");
    if (H5Tget_class(type.get()) != H5T_INTEGER || H5Tget_size(type.get()) != 1 || H5Tget_sign(type.get()) != H5T_SGN_NONE)
      fail(at, "images is not uint8");
  } else {
    kind = h5::storage_of(dataset.get(), at);
    if (kind != h5::Storage::F32 && kind != h5::Storage::F64) fail(at, "pixel_values is not float32 or float64");
  }
  const std::vector<int64_t> shape = h5::shape_of(dataset.get(), at);
  if (shape.size() != 4) fail(at, std::string(name) + " has shape " + shape_string(shape) + ", expected [N, C, H, W]");
  const h5::Id space = select_rows(dataset.get(), shape, first, count, name, "images", at);
  x.kind = InputKind::Images;
  x.n = count, x.channels = shape[1], x.height = shape[2], x.width = shape[3];
  const size_t n = static_cast<size_t>(count * shape[1] * shape[2] * shape[3]);
  x.pixels.resize(n);
  if (u8) {
    std::vector<uint8_t> raw(n);
    const hsize_t total = n;
    const h5::Id mem = h5::check(H5Screate_simple(1, &total, nullptr), at, "cannot create a dataspace");
    h5::check(H5Dread(dataset.get(), H5T_NATIVE_UINT8, mem.get(), space.get(), H5P_DEFAULT, raw.data()), at,
              "cannot read the images");
    for (size_t i = 0; i < n; ++i) x.pixels[i] = static_cast<float>(raw[i]) / 127.5f - 1.0f;
    return;
  }
  h5::read_f32(dataset.get(), kind, space.get(), n, x.pixels.data(), at);
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x.pixels[i]))
      fail(at, "pixel_values element " + std::to_string(i) + " is " + (std::isnan(x.pixels[i]) ? "NaN" : "infinite"));
}

// Rows [first, first + count) of an integer (or boolean, stored as an enum of integers) [N, L] dataset.
std::vector<int64_t> read_int_rows(hid_t f, const std::string& path, const char* name, int64_t first, int64_t count,
                                   const std::string& at, std::vector<int64_t>* shape_out) {
  const h5::Id dataset = open_dataset(f, path, at);
  const h5::Id type = h5::check(H5Dget_type(dataset.get()), at, "cannot read the datatype of " + std::string(name));
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_INTEGER && cls != H5T_ENUM) fail(at, std::string(name) + " is not an integer dataset");
  const std::vector<int64_t> shape = h5::shape_of(dataset.get(), at);
  if (shape.size() != 2) fail(at, std::string(name) + " has shape " + shape_string(shape) + ", expected [N, L]");
  if (shape[1] < 1) fail(at, std::string(name) + " has sequences of length 0");
  const h5::Id space = select_rows(dataset.get(), shape, first, count, name, "sequences", at);
  std::vector<int64_t> out(static_cast<size_t>(count * shape[1]));
  const hsize_t n = out.size();
  const h5::Id mem = h5::check(H5Screate_simple(1, &n, nullptr), at, "cannot create a dataspace");
  h5::check(H5Dread(dataset.get(), H5T_NATIVE_INT64, mem.get(), space.get(), H5P_DEFAULT, out.data()), at,
            "cannot read " + std::string(name));
  *shape_out = shape;
  return out;
}

void read_tokens(hid_t f, const std::string& g, int64_t first, int64_t count, const std::string& at, Exemplars& x) {
  std::vector<int64_t> shape;
  x.kind = InputKind::Tokens;
  x.ids = read_int_rows(f, member(g, "input_ids"), "input_ids", first, count, at, &shape);
  x.n = count, x.length = shape[1];
  for (size_t i = 0; i < x.ids.size(); ++i)
    if (x.ids[i] < 0) fail(at, "input_ids element " + std::to_string(i) + " is negative");
  x.mask.assign(x.ids.size(), 1);
  if (H5Lexists(f, member(g, "attention_mask").c_str(), H5P_DEFAULT) <= 0) return;
  std::vector<int64_t> mshape;
  const std::vector<int64_t> mask =
      read_int_rows(f, member(g, "attention_mask"), "attention_mask", first, count, at, &mshape);
  if (mshape != shape) fail(at, "attention_mask has shape " + shape_string(mshape) + ", input_ids " + shape_string(shape));
  for (size_t i = 0; i < mask.size(); ++i) {
    if (mask[i] != 0 && mask[i] != 1)
      fail(at, "attention_mask element " + std::to_string(i) + " is " + std::to_string(mask[i]) + ", not 0 or 1");
    x.mask[i] = static_cast<uint8_t>(mask[i]);
  }
  for (int64_t s = 0; s < count; ++s)
    if (std::all_of(x.mask.begin() + s * x.length, x.mask.begin() + (s + 1) * x.length, [](uint8_t m) { return m == 0; }))
      fail(at, "sequence " + std::to_string(first + s) + " is all padding (attention_mask is 0 everywhere)");
}

// The group's exemplar dataset: what it holds and how many.
struct GroupLayout {
  enum class Kind { Pixels, Bytes, Tokens } kind;
  int64_t size;
};

GroupLayout layout_of(hid_t f, const std::string& g, const std::string& at) {
  if (!g.empty()) require_path(f, g, at);
  const auto has = [&](const char* name) { return H5Lexists(f, member(g, name).c_str(), H5P_DEFAULT) > 0; };
  GroupLayout::Kind kind;
  const char* name;
  if (has("pixel_values"))
    kind = GroupLayout::Kind::Pixels, name = "pixel_values";
  else if (has("images"))
    kind = GroupLayout::Kind::Bytes, name = "images";
  else if (has("input_ids"))
    kind = GroupLayout::Kind::Tokens, name = "input_ids";
  else
    fail(at, "no '" + member(g, "pixel_values") + "' (images) or '" + member(g, "input_ids") + "' (tokens) in the file");
  const h5::Id d = open_dataset(f, member(g, name), at);
  const std::vector<int64_t> shape = h5::shape_of(d.get(), at);
  return GroupLayout{kind, shape.empty() ? 0 : shape[0]};
}

Exemplars read_group(const std::string& file, const std::string& group, int64_t first, int64_t count) {
  const std::string g = trim_slashes(group);
  const std::string at = file + ":/" + g;
  if (count < 1) fail(at, "exemplar count must be at least 1, got " + std::to_string(count));
  const h5::Id f = open_file(file, at);
  Exemplars x;
  switch (layout_of(f.get(), g, at).kind) {
    case GroupLayout::Kind::Pixels: read_images(f.get(), g, false, first, count, at, x); break;
    case GroupLayout::Kind::Bytes: read_images(f.get(), g, true, first, count, at, x); break;
    case GroupLayout::Kind::Tokens: read_tokens(f.get(), g, first, count, at, x); break;
  }
  return x;
}

// Errors say who asked for the exemplars when `where` is given.
template <class F>
auto asked_by(const std::string& where, F body) {
  if (where.empty()) return body();
  try {
    return body();
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (" + where + ")");
  }
}

}  // namespace

const char* input_kind_name(InputKind k) { return k == InputKind::Images ? "images" : "tokens"; }

int64_t Exemplars::real_tokens() const {
  return static_cast<int64_t>(std::count(mask.begin(), mask.end(), uint8_t{1}));
}

Exemplars read_exemplars(const std::string& file, const std::string& group, int64_t count, const std::string& where) {
  return asked_by(where, [&] { return read_group(file, group, 0, count); });
}

Exemplars read_exemplar_range(const std::string& file, const std::string& group, int64_t first, int64_t count,
                              const std::string& where) {
  return asked_by(where, [&] { return read_group(file, group, first, count); });
}

int64_t count_exemplars(const std::string& file, const std::string& group, const std::string& where) {
  return asked_by(where, [&] {
    const std::string g = trim_slashes(group);
    const std::string at = file + ":/" + g;
    const h5::Id f = open_file(file, at);
    return layout_of(f.get(), g, at).size;
  });
}

std::vector<float> read_h5_f32(const std::string& file, const std::string& dataset, std::vector<int64_t>* shape) {
  const std::string path = trim_slashes(dataset);
  const std::string at = file + ":/" + path;
  if (path.empty()) fail(at, "no dataset name given");
  const h5::Id f = open_file(file, at);
  const h5::Id d = open_dataset(f.get(), path, at);
  const h5::Storage kind = h5::storage_of(d.get(), at);
  if (kind == h5::Storage::Other) fail(at, "dataset is not float32, float64, float16 or bfloat16");
  const std::vector<int64_t> dims = h5::shape_of(d.get(), at);
  int64_t n = 1;
  for (int64_t x : dims) n *= x;
  std::vector<float> out(static_cast<size_t>(n));
  h5::read_f32(d.get(), kind, H5S_ALL, out.size(), out.data(), at);
  if (shape) *shape = dims;
  return out;
}

}  // namespace cm
