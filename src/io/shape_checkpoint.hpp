#pragma once
// A shape file: the names, dtypes and shapes of a checkpoint's tensors (and its config) without weights,
// so a plan for a model that is not on this machine (LLaMA-2-70B, say) is made from what the headers say.
// JSON: {"catmerge_shapes": 1, "config": {...}, "tensors": [{"name", "dtype", "shape"}, ...]}.
#include <memory>
#include <string>

#include "io/checkpoint.hpp"

namespace cm {

bool is_shape_file(const std::string& path);
std::unique_ptr<Checkpoint> open_shape_file(const std::string& path);

}  // namespace cm
