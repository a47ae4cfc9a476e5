#pragma once
#include <ostream>
#include <string>

namespace cm {

// `catmerge inspect PATH`: every tensor with dtype, shape and (when the architecture is recognised) role,
// stage and feature site, then a one-line summary.
void inspect_checkpoint(const std::string& path, std::ostream& out);

}  // namespace cm
