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

namespace {

// splitmix64's finaliser: a well-mixed hash of a position.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

std::vector<MergeUnit> sample_runs(const MergeUnit& unit, int64_t stride) {
  CM_ASSERT(stride >= 1);
  if (stride == 1) return {unit};
  const int64_t stretch = stride * kSampleRun, n = unit.numel();
  std::vector<MergeUnit> runs;
  for (int64_t begin = 0; begin < n; begin += stretch) {
    const uint64_t slack = static_cast<uint64_t>(stretch - kSampleRun + 1);
    const int64_t start = begin + static_cast<int64_t>(mix(static_cast<uint64_t>(unit.offset + begin)) % slack);
    if (start + kSampleRun <= n) runs.push_back(MergeUnit{unit.tensor, unit.part, unit.offset + start, {kSampleRun}});
  }
  return runs;
}

const TensorSpec* ModelSpec::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

void ModelSpec::add(const Checkpoint& base, const std::string& name, Role role, int stage, const std::string& site_name) {
  const TensorInfo* t = base.find(name);
  if (!t) fail(base.path(), arch + " tensor '" + name + "' is missing");
  tensors.push_back(TensorSpec{name, role, t->dtype, t->shape, stage, site_name, 1});
}

void ModelSpec::add_undescribed(const Checkpoint& base, const std::string& prefix, int stage, bool bias_is_shift) {
  const std::string bias = ".bias";
  for (const TensorInfo& t : base.tensors()) {
    if (t.name.rfind(prefix, 0) != 0 || find(t.name)) continue;
    const std::string& n = t.name;
    const bool is_bias = n.size() >= bias.size() && n.compare(n.size() - bias.size(), bias.size(), bias) == 0;
    tensors.push_back(TensorSpec{n, bias_is_shift && is_bias ? Role::Shift : Role::Other, t.dtype, t.shape, stage, "", 1});
  }
}

const Site* ModelSpec::site(const std::string& name) const {
  for (const auto& s : sites)
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace cm
