#include "arch/model_spec.hpp"

#include "common/error.hpp"

namespace cm {

const char* role_name(Role r) {
  switch (r) {
    case Role::Linear: return "linear";
    case Role::NormScale: return "norm_scale";
    case Role::Shift: return "shift";
    case Role::Other: return "other";
  }
  return "?";
}

static int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t TensorSpec::numel() const { return product(shape); }
int64_t MergeUnit::numel() const { return product(shape); }

std::vector<MergeUnit> units_of(const TensorSpec& t) {
  CM_ASSERT(t.parts >= 1 && !t.shape.empty() && t.shape[0] % t.parts == 0);
  std::vector<MergeUnit> units;
  std::vector<int64_t> shape = t.shape;
  shape[0] /= t.parts;
  const int64_t size = product(shape);
  for (int p = 0; p < t.parts; ++p) units.push_back(MergeUnit{&t, p, p * size, shape});
  return units;
}

const TensorSpec* ModelSpec::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const Site* ModelSpec::site(const std::string& name) const {
  for (const auto& s : sites)
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace cm
