#include "io/hdf5_checkpoint.hpp"

#include <unordered_map>

#include "common/error.hpp"
#include "io/h5.hpp"

namespace cm {

namespace {

class Hdf5Checkpoint final : public Checkpoint {
 public:
  explicit Hdf5Checkpoint(const std::string& path);

  const std::string& path() const override { return path_; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  const TensorInfo* find(const std::string& name) const override;
  void read_into(const std::string& name, int64_t first, int64_t count, float* out) const override;
  std::string file_of(const std::string&) const override { return path_; }
  std::vector<std::string> files() const override { return {path_}; }
  const std::string& config_json() const override { return config_; }
  std::map<std::string, std::string> metadata() const override { return metadata_; }

 private:
  std::string path_, config_;
  std::map<std::string, std::string> metadata_;
  h5::Id file_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

herr_t collect_name(hid_t, const char* name, const H5L_info_t* info, void* data) {
  if (info->type == H5L_TYPE_HARD) static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

// Root links in creation order when the file tracks it (catmerge's writer does), else by name.
std::vector<std::string> root_links(hid_t root, const std::string& path) {
  const h5::Id gcpl = h5::check(H5Gget_create_plist(root), path, "cannot read the root group");
  unsigned order_flags = 0;
  h5::check(H5Pget_link_creation_order(gcpl.get(), &order_flags), path, "cannot read the root group");
  const H5_index_t index = (order_flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  std::vector<std::string> names;
  h5::check(H5Literate(root, index, H5_ITER_INC, nullptr, collect_name, &names), path, "cannot list the root group");
  return names;
}

Hdf5Checkpoint::Hdf5Checkpoint(const std::string& path) : path_(path) {
  h5::silence_errors();
  file_ = h5::check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path, "cannot open as HDF5");
  const h5::Id root = h5::check(H5Gopen2(file_.get(), "/", H5P_DEFAULT), path, "cannot open the root group");
  config_ = h5::string_attr(root.get(), "config_json", path).value_or("");
  for (const char* key : {"catmerge_version", "arch", "method", "hyperparameters"})
    if (const auto v = h5::string_attr(root.get(), key, path)) metadata_[key] = *v;
  for (const std::string& name : root_links(root.get(), path)) {
    const h5::Id obj = h5::check(H5Oopen(root.get(), name.c_str(), H5P_DEFAULT), path, "cannot open '" + name + "'");
    if (H5Iget_type(obj.get()) != H5I_DATASET) continue;
    const std::string where = path + ":/" + name;
    const h5::Storage kind = h5::storage_of(obj.get(), where);
    // Datasets of other types (integer buffers, float64 statistics) are not tensors of the model.
    if (kind == h5::Storage::Other || kind == h5::Storage::F64) continue;
    const DType dtype = kind == h5::Storage::F32 ? DType::F32 : kind == h5::Storage::F16 ? DType::F16 : DType::BF16;
    index_[name] = tensors_.size();
    tensors_.push_back({name, dtype, h5::shape_of(obj.get(), where)});
  }
}

const TensorInfo* Hdf5Checkpoint::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

// The elements as a hyperslab of the dataset viewed flat: HDF5 datasets of any rank are row-major.
void Hdf5Checkpoint::read_into(const std::string& name, int64_t first, int64_t count, float* out) const {
  const TensorInfo* t = find(name);
  if (!t) fail(path_, "no float32, float16 or bfloat16 dataset '" + name + "' at the root");
  CM_ASSERT(first >= 0 && count >= 0 && first + count <= t->numel());
  if (count == 0) return;
  h5::silence_errors();
  const std::string where = path_ + ":/" + name;
  const h5::Id dataset =
      h5::check(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), path_, "cannot open dataset '" + name + "'");
  const h5::Storage kind = t->dtype == DType::F32   ? h5::Storage::F32
                           : t->dtype == DType::F16 ? h5::Storage::F16
                                                    : h5::Storage::BF16;
  if (first == 0 && count == t->numel())
    return h5::read_f32(dataset.get(), kind, H5S_ALL, static_cast<size_t>(count), out, where);
  const hsize_t flat = static_cast<hsize_t>(t->numel()), start = static_cast<hsize_t>(first),
                n = static_cast<hsize_t>(count);
  // Whole rows of the dataset's leading dimension (or a range of a 1-D one), selected in its own dataspace.
  const h5::Id file_space = h5::check(H5Dget_space(dataset.get()), where, "cannot read the dataspace");
  const int rank = H5Sget_simple_extent_ndims(file_space.get());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 1)), 1);
  if (rank > 0) H5Sget_simple_extent_dims(file_space.get(), dims.data(), nullptr);
  const hsize_t row = flat / std::max<hsize_t>(dims[0], 1);
  CM_ASSERT(rank <= 1 || (start % row == 0 && n % row == 0));  // callers read whole rows of N-d tensors
  std::vector<hsize_t> offset(dims.size(), 0), extent = dims;
  offset[0] = rank <= 1 ? start : start / row;
  extent[0] = rank <= 1 ? n : n / row;
  h5::check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, offset.data(), nullptr, extent.data(), nullptr),
            where, "cannot select");
  h5::read_f32(dataset.get(), kind, file_space.get(), static_cast<size_t>(count), out, where);
}

}  // namespace

std::unique_ptr<Checkpoint> open_hdf5_checkpoint(const std::string& path) {
  return std::make_unique<Hdf5Checkpoint>(path);
}

}  // namespace cm
