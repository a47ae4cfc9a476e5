#pragma once
// `catmerge export MERGED.h5 OUT_DIR [--base DIR] [--shard-size S] [--dtype D]`: an HDF5 output (or any
// checkpoint catmerge reads) turned into a HuggingFace directory by the rules of a run's safetensors output
// (job/hf_output.hpp): its tensors, then, with --base, the base's tensors it lacks and the base's other files;
// config.json from --base or from the HDF5 attribute config_json.
#include <string>
#include <vector>

namespace cm {

// The command line after "export". Prints one summary line; throws cm::Error on bad input (no output then).
int export_command(const std::vector<std::string>& args);

}  // namespace cm
