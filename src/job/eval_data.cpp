#include "job/eval_data.hpp"

#include <sys/stat.h>

#include "common/dtype.hpp"
#include "common/error.hpp"
#include "io/h5.hpp"

namespace cm {

EvalSet::EvalSet(const std::string& file, const std::string& task, const std::string& split)
    : file_(file), group_(task + "/" + split), where_(file + ":/" + group_) {
  h5::silence_errors();
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) fail(file, "no such file (eval.data)");
  const h5::Id f = h5::check(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), file, "cannot open as HDF5 (eval.data)");
  // The task and the split are looked up first, so a missing one is named as such.
  for (const std::string& prefix : {task, group_})
    if (H5Lexists(f.get(), prefix.c_str(), H5P_DEFAULT) <= 0)
      fail(where_, "no '" + prefix + "' in the file (task '" + task + "', split '" + split + "')");
  n_ = count_exemplars(file, group_, "");
  const std::string lpath = group_ + "/labels";
  if (H5Lexists(f.get(), lpath.c_str(), H5P_DEFAULT) <= 0) fail(where_, "no '" + lpath + "' in the file");
  const h5::Id labels = h5::check(H5Dopen2(f.get(), lpath.c_str(), H5P_DEFAULT), where_, "cannot open '" + lpath + "'");
  const h5::Id ltype = h5::check(H5Dget_type(labels.get()), where_, "cannot read the labels' datatype");
  if (H5Tget_class(ltype.get()) != H5T_INTEGER) fail(where_, "labels are not integers");
  const std::vector<int64_t> lshape = h5::shape_of(labels.get(), where_);
  if (lshape.size() != 1 || lshape[0] != n_)
    fail(where_, "labels have shape " + shape_string(lshape) + ", expected [" + std::to_string(n_) + "]");
  labels_.resize(static_cast<size_t>(n_));
  if (n_ > 0)
    h5::check(H5Dread(labels.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels_.data()), where_,
              "cannot read the labels");
}

Exemplars EvalSet::batch(int64_t first, int64_t count) const {
  return read_exemplar_range(file_, group_, first, count, "");
}

}  // namespace cm
