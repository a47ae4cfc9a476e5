#include "arch/registry.hpp"

#include "common/error.hpp"

namespace cm {

const std::vector<std::string>& arch_names() {
  static const std::vector<std::string> names = {"clip_vit", "llama", "bert"};
  return names;
}

ArchModel describe_model(const std::string& arch, const Checkpoint& base) {
  if (arch == "clip_vit") {
    ClipVisionConfig c = clip_vit_config(base);
    ModelSpec m = clip_vit_model(base, c);
    return ArchModel{std::move(m), std::move(c)};
  }
  if (arch == "llama") {
    LlamaConfig c = llama_config(base);
    ModelSpec m = llama_model(base, c);
    return ArchModel{std::move(m), std::move(c)};
  }
  if (arch == "bert") {
    BertConfig c = bert_config(base);
    ModelSpec m = bert_model(base, c);
    return ArchModel{std::move(m), std::move(c)};
  }
  fail(base.path(), "unknown architecture '" + arch + "'");
}

}  // namespace cm
