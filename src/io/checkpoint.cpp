#include "io/checkpoint.hpp"

#include "common/error.hpp"

namespace cm {

std::vector<float> Checkpoint::read(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) {
    read_into(name, 0, 0, nullptr);  // the container says why it cannot (absent, or not a float tensor)
    fail(file_of(name), "no tensor '" + name + "'");
  }
  std::vector<float> out(static_cast<size_t>(t->numel()));
  read_into(name, 0, t->numel(), out.data());
  return out;
}

const std::vector<OtherTensorInfo>& Checkpoint::other_tensors() const {
  static const std::vector<OtherTensorInfo> none;
  return none;
}

void Checkpoint::read_stored(const std::string& name, uint64_t, uint64_t, void*) const {
  fail(file_of(name), "no non-float tensor '" + name + "'");
}

}  // namespace cm
