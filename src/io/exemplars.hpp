#pragma once
// Exemplars: images (HDF5 GROUP/pixel_values or GROUP/images, [N, C, H, W]) or token sequences (GROUP/input_ids int64
// [N, L] with an optional GROUP/attention_mask [N, L], 0 = padding), and a generic float dataset reader.
#include <cstdint>
#include <string>
#include <vector>

namespace cm {

enum class InputKind { Images, Tokens };
const char* input_kind_name(InputKind k);  // "images", "tokens"

struct Exemplars {
  InputKind kind = InputKind::Images;
  int64_t n = 0;  // images or sequences
  // Images: pixels [n, channels, height, width], row-major.
  int64_t channels = 0, height = 0, width = 0;
  std::vector<float> pixels;
  // Tokens: ids and mask [n, length], row-major; mask is all ones when the file has no attention_mask.
  int64_t length = 0;
  std::vector<int64_t> ids;
  std::vector<uint8_t> mask;
  int64_t real_tokens() const;  // tokens whose mask is 1
};

// The first `count` exemplars of `file`'s group GROUP ("" or "/" is the root): pixel_values (float32 or
// float64) or images (uint8, pixel value = x / 127.5 - 1) when the group has them, else input_ids (integers)
// and attention_mask (integers or booleans, 0 or 1). Errors are one line naming "<file>:/<group>"; `where`
// says who asked (e.g. a config key) and is added to them when not empty.
Exemplars read_exemplars(const std::string& file, const std::string& group, int64_t count, const std::string& where);

// Exemplars [first, first + count) of the group (eval reads its sets in batches).
Exemplars read_exemplar_range(const std::string& file, const std::string& group, int64_t first, int64_t count,
                              const std::string& where);

// How many exemplars (images or sequences) the group holds.
int64_t count_exemplars(const std::string& file, const std::string& group, const std::string& where);

// Any float dataset of `file` (float32, float64, IEEE half, or uint16 marked dtype="bfloat16") as float32;
// its shape goes to `shape` when given. Errors name "<file>:/<dataset>".
std::vector<float> read_h5_f32(const std::string& file, const std::string& dataset, std::vector<int64_t>* shape);

}  // namespace cm
