#include "job/inspect.hpp"

#include <iomanip>
#include <map>

#include "arch/clip_vit.hpp"
#include "common/error.hpp"
#include "io/checkpoint.hpp"

namespace cm {

void inspect_checkpoint(const std::string& path, std::ostream& out) {
  const auto ck = open_checkpoint(path);
  ModelSpec model;
  std::string arch_note;
  try {
    model = clip_vit_model(*ck, clip_vit_config(*ck));
    arch_note = "clip_vit";
  } catch (const Error& e) {
    arch_note = std::string("unrecognised (") + e.what() + ")";
  }
  size_t width = 4;
  for (const TensorInfo& t : ck->tensors()) width = std::max(width, t.name.size());
  out << std::left << std::setw(static_cast<int>(width)) << "name" << "  " << std::setw(5) << "dtype" << "  "
      << std::setw(20) << "shape" << "  " << std::setw(10) << "role" << "  stage  site\n";
  int64_t elements = 0;
  std::map<std::string, int> per_role;
  for (const TensorInfo& t : ck->tensors()) {
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
