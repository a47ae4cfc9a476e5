#include "job/inspect.hpp"

#include <iomanip>
#include <map>
#include <string>
#include <vector>

#include "arch/registry.hpp"
#include "common/error.hpp"
#include "io/checkpoint.hpp"

namespace cm {

namespace {

std::string join_arch_names() {
  std::string all;
  for (const auto& a : arch_names()) all += (all.empty() ? "" : ", ") + a;
  return all;
}

}  // namespace

void inspect_checkpoint(const std::string& path, std::ostream& out) {
  const auto ck = open_checkpoint(path);
  // The first architecture that recognises the tensors names their roles.
  ModelSpec model;
  std::string arch_note = "unrecognised (" + join_arch_names() + " do not match)";
  for (const std::string& arch : arch_names()) {
    try {
      model = describe_model(arch, *ck).model;
      arch_note = arch;
      break;
    } catch (const Error&) {
    }
  }
  // The model's order (stages, as the job shards and as TIES's ties are ordered, METHODS.md), then what the
  // architecture does not describe, in the checkpoint's order.
  std::vector<const TensorInfo*> listed;
  std::map<std::string, const TensorInfo*> by_name;
  for (const TensorInfo& t : ck->tensors()) by_name[t.name] = &t;
  for (const TensorSpec& t : model.tensors)
    if (const auto it = by_name.find(t.name); it != by_name.end()) listed.push_back(it->second);
  for (const TensorInfo& t : ck->tensors())
    if (!model.find(t.name)) listed.push_back(&t);
  size_t width = 4;
  for (const TensorInfo* t : listed) width = std::max(width, t->name.size());
  out << std::left << std::setw(static_cast<int>(width)) << "name" << "  " << std::setw(5) << "dtype" << "  "
      << std::setw(20) << "shape" << "  " << std::setw(10) << "role" << "  stage  site\n";
  int64_t elements = 0;
  std::map<std::string, int> per_role;
  for (const TensorInfo* listed_tensor : listed) {
    const TensorInfo& t = *listed_tensor;
    const TensorSpec* spec = model.find(t.name);
    const std::string role = spec ? role_name(spec->role) : "-";
    ++per_role[role];
    elements += t.numel();
    out << std::setw(static_cast<int>(width)) << t.name << "  " << std::setw(5) << dtype_name(t.dtype) << "  "
        << std::setw(20) << shape_string(t.shape) << "  " << std::setw(10) << role << "  " << std::setw(5)
        << (spec ? std::to_string(spec->stage) : "-") << "  " << (spec && !spec->site.empty() ? spec->site : "-")
        << "\n";
  }
  out << ck->tensors().size() << " tensors, " << elements << " elements; architecture: " << arch_note << ";";
  for (const auto& [role, n] : per_role) out << " " << role << " " << n;
  out << "\n";
}

}  // namespace cm
