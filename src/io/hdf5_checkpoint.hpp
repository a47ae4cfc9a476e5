#pragma once
// A checkpoint stored as a catmerge HDF5 file: one dataset per tensor at the root group
// (float32 -> F32, IEEE half -> F16, uint16 with the string attribute dtype="bfloat16" -> BF16),
// and the model's config text in the optional root string attribute `config_json`.
#include <memory>
#include <string>

#include "io/checkpoint.hpp"

namespace cm {

std::unique_ptr<Checkpoint> open_hdf5_checkpoint(const std::string& path);

}  // namespace cm
