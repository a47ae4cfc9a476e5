#include "job/eval_heads.hpp"

#include "common/dtype.hpp"
#include "common/error.hpp"

namespace cm {

Head read_head(const SafetensorsFile& heads, const std::string& task, int64_t hidden) {
  Head h;
  const std::string wname = task + ".weight", bname = task + ".bias";
  const TensorInfo* w = heads.find(wname);
  const TensorInfo* b = heads.find(bname);
  if (!w) fail(heads.path(), "no float tensor '" + wname + "' (the head of task '" + task + "')");
  if (!b) fail(heads.path(), "no float tensor '" + bname + "' (the head of task '" + task + "')");
  if (w->shape.size() != 2 || w->shape[1] != hidden || w->shape[0] < 1)
    fail(heads.path(), wname + " has shape " + shape_string(w->shape) + ", expected [classes, " +
                           std::to_string(hidden) + "] (heads sit on the pooled output)");
  if (b->shape != std::vector<int64_t>{w->shape[0]})
    fail(heads.path(), bname + " has shape " + shape_string(b->shape) + ", expected [" + std::to_string(w->shape[0]) + "]");
  h.classes = w->shape[0];
  h.weight = heads.read(wname);
  h.bias = heads.read(bname);
  return h;
}

}  // namespace cm
