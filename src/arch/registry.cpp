#include "arch/registry.hpp"

#include "arch/llama.hpp"
#include "common/error.hpp"

namespace cm {

const std::vector<std::string>& arch_names() {
  static const std::vector<std::string> names = {"clip_vit", "llama"};
  return names;
}

ArchModel describe_model(const std::string& arch, const Checkpoint& base) {
  ArchModel a;
  if (arch == "clip_vit") {
    a.clip = clip_vit_config(base);
    a.model = clip_vit_model(base, *a.clip);
  } else if (arch == "llama") {
    a.model = llama_model(base);
  } else {
    fail(base.path(), "unknown architecture '" + arch + "'");
  }
  return a;
}

}  // namespace cm
