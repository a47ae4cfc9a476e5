#pragma once
// The architectures catmerge knows, by the name `model.arch` gives.
#include <optional>
#include <string>
#include <vector>

#include "arch/clip_vit.hpp"
#include "arch/model_spec.hpp"
#include "io/checkpoint.hpp"

namespace cm {

struct ArchModel {
  ModelSpec model;
  std::optional<ClipVisionConfig> clip;  // set for clip_vit: what its forward pass needs
  bool has_forward() const { return clip.has_value(); }
};

const std::vector<std::string>& arch_names();  // clip_vit, llama

// Throws cm::Error naming the checkpoint when it is not of that architecture.
ArchModel describe_model(const std::string& arch, const Checkpoint& base);

}  // namespace cm
