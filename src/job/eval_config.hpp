#pragma once
// What `catmerge eval` needs from a run configuration (README "Evaluation"): the `eval` section, the
// experts' names (the tasks, in order), `model.arch`, `model.base` (the base of a PEFT adapter given as
// --model) and `runtime`. Every other section belongs to `run` and is ignored here.
//
//   eval:
//     heads: FILE.safetensors   # per task <name>.weight [classes, hidden] and <name>.bias [classes]
//     data: FILE.h5             # per task and split: /<name>/<split>/images (uint8 [N, C, H, W]; pixel
//                               # values = images / 127.5 - 1), /<name>/<split>/pixel_values (float
//                               # [N, C, H, W]) or /<name>/<split>/input_ids (+ attention_mask) for token
//                               # models, and /<name>/<split>/labels (integer [N])
//     tasks: [NAME, ...]        # optional; default: the experts' names in config order
//     batch: 64                 # optional; images per forward batch (ranks take every size-th batch)
#include <string>
#include <vector>

namespace cm {

struct EvalConfig {
  std::string source;               // the configuration file, as named on the command line
  std::string arch = "clip_vit";    // model.arch
  std::string base;                 // model.base, resolved; "" when absent
  std::string heads;                // resolved path
  std::string data;                 // resolved path
  std::vector<std::string> tasks;
  int batch = 64;
  std::string backend = "auto";     // runtime.backend
  int threads = 0;                  // runtime.threads
};

// Reads `path`, applies each "key.path=value" of `sets` (as `run --set` does), and checks the `eval` and
// `runtime` sections and the experts' names. Relative paths are resolved against the configuration's folder
// (paths given with --set: against the working directory). Throws cm::Error naming the file and key.
EvalConfig load_eval_config(const std::string& path, const std::vector<std::string>& sets);

}  // namespace cm
