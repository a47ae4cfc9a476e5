#pragma once
// Exemplar images (HDF5 GROUP/pixel_values, [N, C, H, W]) and a generic float dataset reader.
#include <cstdint>
#include <string>
#include <vector>

namespace cm {

struct Images {
  int64_t n = 0, channels = 0, height = 0, width = 0;
  std::vector<float> pixels;  // [n, channels, height, width], row-major
};

// The first `count` images of `file`'s dataset GROUP/pixel_values (float32 or float64; "" or "/" is the root).
// Errors are one line naming "<file>:/<group>"; `where` says who asked (e.g. a config key) and is added to
// them when not empty.
Images read_exemplars(const std::string& file, const std::string& group, int64_t count, const std::string& where);

// Any float dataset of `file` (float32, float64, IEEE half, or uint16 marked dtype="bfloat16") as float32;
// its shape goes to `shape` when given. Errors name "<file>:/<dataset>".
std::vector<float> read_h5_f32(const std::string& file, const std::string& dataset, std::vector<int64_t>* shape);

}  // namespace cm
