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

}  // namespace cm
