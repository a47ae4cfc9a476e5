#pragma once
// The architectures catmerge knows, by the name `model.arch` gives: each one's tensor description
// (ModelSpec) and the settings its forward pass needs (features/forward.hpp: make_forward).
#include <string>
#include <variant>
#include <vector>

#include "arch/bert.hpp"
#include "arch/clip_vit.hpp"
#include "arch/llama.hpp"
#include "arch/model_spec.hpp"
#include "io/checkpoint.hpp"

namespace cm {

struct ArchModel {
  ModelSpec model;
  std::variant<ClipVisionConfig, LlamaConfig, BertConfig> config;
};

const std::vector<std::string>& arch_names();  // clip_vit, llama, bert

// Throws cm::Error naming the checkpoint when it is not of that architecture.
ArchModel describe_model(const std::string& arch, const Checkpoint& base);

}  // namespace cm
