#include "io/exemplars.hpp"

#include <sys/stat.h>

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

// Opens `path` inside `file` as a dataset; the error says which part is missing.
h5::Id open_dataset(hid_t file, const std::string& path, const std::string& where) {
  const std::string what = "'" + path + "'";
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
  const h5::Id obj = h5::check(H5Oopen(file, path.c_str(), H5P_DEFAULT), where, "cannot open " + what);
  if (H5Iget_type(obj.get()) != H5I_DATASET) fail(where, what + " is not a dataset");
  return h5::check(H5Dopen2(file, path.c_str(), H5P_DEFAULT), where, "cannot open " + what);
}

Images read_images(const std::string& file, const std::string& group, int64_t count) {
  const std::string g = trim_slashes(group);
  const std::string at = file + ":/" + g;
  if (count < 1) fail(at, "exemplar count must be at least 1, got " + std::to_string(count));

  const h5::Id f = open_file(file, at);
  const std::string path = g.empty() ? "pixel_values" : g + "/pixel_values";
  const h5::Id dataset = open_dataset(f.get(), path, at);
  const h5::Storage kind = h5::storage_of(dataset.get(), at);
  if (kind != h5::Storage::F32 && kind != h5::Storage::F64) fail(at, "pixel_values is not float32 or float64");
  const std::vector<int64_t> shape = h5::shape_of(dataset.get(), at);
  if (shape.size() != 4) fail(at, "pixel_values has shape " + shape_string(shape) + ", expected [N, C, H, W]");
  if (shape[0] < count)
    fail(at, "pixel_values has " + std::to_string(shape[0]) + " images, " + std::to_string(count) + " are needed");

  Images img{count, shape[1], shape[2], shape[3], {}};
  img.pixels.resize(static_cast<size_t>(count * shape[1] * shape[2] * shape[3]));
  // Select only the leading images, so a large exemplar file is not read whole.
  const h5::Id space = h5::check(H5Dget_space(dataset.get()), at, "cannot read the dataspace");
  const hsize_t start[4] = {0, 0, 0, 0};
  const hsize_t extent[4] = {static_cast<hsize_t>(count), static_cast<hsize_t>(shape[1]),
                             static_cast<hsize_t>(shape[2]), static_cast<hsize_t>(shape[3])};
  h5::check(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr), at,
            "cannot select the images");
  h5::read_f32(dataset.get(), kind, space.get(), img.pixels.size(), img.pixels.data(), at);
  for (size_t i = 0; i < img.pixels.size(); ++i)
    if (!std::isfinite(img.pixels[i]))
      fail(at, "pixel_values element " + std::to_string(i) + " is " + (std::isnan(img.pixels[i]) ? "NaN" : "infinite"));
  return img;
}

}  // namespace

Images read_exemplars(const std::string& file, const std::string& group, int64_t count, const std::string& where) {
  if (where.empty()) return read_images(file, group, count);
  try {
    return read_images(file, group, count);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (" + where + ")");  // say who asked for the images
  }
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
