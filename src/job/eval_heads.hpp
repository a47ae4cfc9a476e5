#pragma once
// The task heads of `catmerge eval` (eval.heads, job/eval_config.hpp): per task a linear map on the
// forward's pooled output, <task>.weight [classes, hidden] and <task>.bias [classes] in one safetensors file.
#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.hpp"

namespace cm {

struct Head {
  int64_t classes = 0;
  std::vector<float> weight, bias;  // [classes, hidden], [classes]
};

// Task `task`'s head for a pooled output of width `hidden`; throws cm::Error naming the file and the tensor
// when either tensor is missing or of the wrong shape.
Head read_head(const SafetensorsFile& heads, const std::string& task, int64_t hidden);

}  // namespace cm
